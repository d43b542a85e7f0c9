"""The review report: the notebooks executed with a week's parameters, rendered to HTML
without code, their figures saved as PNG and SVG, beside the week's workbook."""

from __future__ import annotations

import contextlib
import html
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import config


def notebooks(folder: str | Path | None = None) -> list[Path]:
    """The report's notebooks, in order (``1.0-…``, ``2.0-…``)."""
    folder = Path(folder) if folder else config.NOTEBOOKS
    found = sorted(folder.glob("[0-9]*.ipynb"))
    if not found:
        raise FileNotFoundError(f"{folder}: no notebooks to run")
    return found


def run_report(
    week: str,
    *,
    inputs: Sequence[str | Path] = (),
    trial: Sequence[str | Path] = (),
    vendors: Sequence[str] = (),
    lang: str = "zh",
    out: str | Path | None = None,
    folder: str | Path | None = None,
    timeout: int = 600,
    progress: bool = False,
) -> Path:
    """Execute every notebook for ``week`` and write the report.

    Writes, under ``out`` (default ``reports/``): ``notebooks/<name>-<week>.ipynb`` (executed),
    ``html/<name>-<week>.html`` (outputs only, no code), ``figures/<week>/*.png|svg`` and
    ``report-<week>.html`` linking them. ``trial`` (trial send logs) goes to the notebooks
    that take a ``trial`` parameter. A notebook that fails stops the report with its
    error; nothing is left half-written in ``html/``.

    Returns
    -------
    Path of ``report-<week>.html``.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out = Path(out) if out else config.REPORTS
    figures = out / "figures" / week
    for sub in ("notebooks", "html"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    params = {"week": week, "vendors": list(vendors), "inputs": [str(Path(p).resolve()) for p in inputs],
              "lang": lang, "figures": str(figures.resolve())}
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    pages = []
    books = notebooks(folder)
    if progress:
        from tqdm import tqdm

        books = tqdm(books, unit="notebook", disable=not sys.stderr.isatty())
    for nb in books:
        executed = out / "notebooks" / f"{nb.stem}-{week}.ipynb"
        own = dict(params)
        if "trial" in papermill.inspect_notebook(str(nb)):
            own["trial"] = [str(Path(p).resolve()) for p in trial]
        with _quiet_kernel() as chatter:
            try:
                papermill.execute_notebook(str(nb), str(executed), parameters=own, kernel_name="python3",
                                           cwd=str(config.PROJECT_ROOT), progress_bar=False,
                                           execution_timeout=timeout, log_output=False)
            except papermill.PapermillExecutionError as exc:
                raise RuntimeError(f"{nb.name}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}") from None
            except Exception as exc:
                raise RuntimeError(f"{nb.name}: {exc}; kernel said: {chatter.read()[-500:].strip()}") from None
        body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
        page = out / "html" / f"{nb.stem}-{week}.html"
        tmp = page.with_suffix(".html.tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(page)
        pages.append(page)
    index = out / f"report-{week}.html"
    links = "\n".join(f'<li><a href="html/{html.escape(p.name)}">{html.escape(p.stem)}</a></li>' for p in pages)
    ledger = out / "ledgers" / f"ledger-{week}.xlsx"
    extra = f'<li><a href="ledgers/{ledger.name}">{ledger.name}</a></li>' if ledger.exists() else ""
    index.write_text(
        f"<!doctype html><meta charset='utf-8'><title>SMS Ledger {week}</title>"
        f"<h1>SMS Ledger · {week}</h1><ul>{links}{extra}</ul>"
        f"<p>Figures: <code>{html.escape(str(figures))}</code></p>",
        encoding="utf-8",
    )
    return index


#: Why a section of the report shows nothing: ``key: (zh, en)``.
CANNOT_SHOW = {
    "no_clicks": ("本节无法显示：输入中没有点击记录（点击/转化文件）。",
                  "Not shown: the input has no click events (a click or conversion file)."),
    "no_trial": ("本节无法显示：未提供通道测试数据（sms-ledger report --trial 测试日志）。",
                 "Not shown: no channel-trial log was given (sms-ledger report --trial TRIAL)."),
    "no_peak": ("本节无法显示：本期没有工作日高峰时段的发送。",
                "Not shown: nothing was sent in the weekday peak window."),
}


def cannot_show(what: str, lang: str = "zh") -> None:
    """Say, in the report's language, why a section shows nothing (:data:`CANNOT_SHOW`)."""
    text = CANNOT_SHOW[what][0 if lang == "zh" else 1]
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"*{text}*"))
    except ImportError:  # outside a notebook
        print(text)


@contextlib.contextmanager
def _quiet_kernel():
    """Keep the kernels' start-up chatter (which they write straight to file descriptor 2)
    off the terminal; yields the captured text for error messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield _Captured(sink)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _Captured:
    def __init__(self, sink):
        self._sink = sink

    def read(self) -> str:
        self._sink.flush()
        self._sink.seek(0)
        return self._sink.read()
