"""The review report: a front page with the week on one page, the notebooks executed with
the week's parameters and rendered to HTML without code, their figures saved as PNG and
SVG, beside the week's workbook. One language per report: every heading, sentence, table
and chart label in it; file names carry the language so both can sit side by side."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import config
from .atomic import write_atomic

#: Each notebook's title and what it shows, by its number.
SECTIONS = {
    "1.0": (("质量监测", "每周到达量、到达率及其 95% 区间、首发与补发后到达率、时延和投诉率，对照 98% 目标和各组自己的控制限。"),
            ("Quality monitoring", "Weekly volume, arrival with its 95% interval, first-attempt against after-resend "
             "arrival, latency and complaint rates, against the 98% target and each group's own control limits.")),
    "2.0": (("问题溯源", "按运营商、省份和原因归类的失败及其原始错误码，各组低于自身基线的下降，以及反复失败的号码。"),
            ("Failure tracing", "Failed messages by carrier, province and reason with the raw codes behind them, the "
             "drops each group made below its own baseline, and the numbers that keep failing.")),
    "3.0": (("内容与发送时段", "每个模板的到达、拦截、点击率和转化，各发送小时的点击率，以及高峰时段和节假日对到达的影响。"),
            ("Content and send hours", "Arrival, blocking, click-through and conversion of each template, "
             "click-through by send hour, and how peak windows and holidays change arrival.")),
    "4.0": (("计费对账", "按提交与按成功计费的条数和金额差，平台账单与两者的对照，以及每条成功短信的真实成本。"),
            ("Billing reconciliation", "Segments and money billed on submission against on delivery, the vendor's "
             "bill against both, and what one delivered message really costs.")),
    "5.0": (("通道测试", "三阶段通道测试的逐项结论及其证据，得出结论所需的样本量，模板文案和发送时段检查，以及生产流量中的补发诚信。"),
            ("Channel trial", "The three-stage trial scored vendor by vendor with the evidence behind each verdict, "
             "the sample a conclusive trial needs, template wording and send windows, and resend honesty in "
             "production traffic.")),
}

#: Sub-headings of the notebooks: ``key: (zh, en)``.
HEADINGS = {
    "this_week": ("本周各平台与运营商", "This week by vendor and carrier"),
    "trend": ("到达率趋势", "Arrival over the weeks"),
    "regions": ("运营商 × 省份（本周）", "Carrier by province this week"),
    "latency": ("时延（本周）", "Latency this week"),
    "reasons": ("本周失败原因", "This week's failure reasons"),
    "alerts": ("预警：低于各组自身基线的下降", "Alerts: drops below each group's own baseline"),
    "repeat": ("反复失败的号码（已脱敏）", "Numbers that failed repeatedly (masked)"),
    "templates": ("本周模板", "Templates this week"),
    "hours": ("各发送小时的点击率（全部周）", "Click-through by send hour (all weeks)"),
    "peak": ("高峰时段与非高峰对比", "Peak windows against off-peak"),
    "bills": ("账单与发送记录对照", "Bills against the send log"),
    "cost": ("本周每条成功短信和每次点击的成本", "Cost per delivered message and per click this week"),
    "scorecard": ("评分卡：各平台并列", "Scorecard, vendors side by side"),
    "plan": ("得出结论所需的样本量", "Messages a conclusive trial needs"),
    "wording": ("模板文案检查（附实际拦截率）", "Template wording, beside the observed blocking"),
    "windows": ("发送时段检查", "Send windows"),
    "resend": ("生产流量中的补发诚信", "Resend honesty in production traffic"),
    "peak_days": ("工作日高峰各日到达率（生产流量）", "Weekday-peak arrival by day (production traffic)"),
}

#: Sentences of the notebooks: ``key: (zh, en)`` format strings.
SENTENCES = {
    "read": ("{week}：本周 {n:,} 条，共读取 {total:,} 条。", "{week}: {n:,} messages this week, {total:,} read in all."),
}

#: Why a section of the report shows nothing: ``key: (zh, en)``.
CANNOT_SHOW = {
    "no_clicks": ("本节无法显示：输入中没有点击记录（点击/转化文件）。",
                  "Not shown: the input has no click events (a click or conversion file)."),
    "no_trial": ("本节无法显示：未提供通道测试数据（sms-ledger report --trial 测试日志）。",
                 "Not shown: no channel-trial log was given (sms-ledger report --trial TRIAL)."),
    "no_peak": ("本节无法显示：本期没有工作日高峰时段的发送。",
                "Not shown: nothing was sent in the weekday peak window."),
    "no_rows": ("本周没有需要列出的记录。", "Nothing to list this week."),
}

_PAGE = {"zh": ("短信周报", "本周要点", "各部分", "台账工作簿", "图表文件夹", "生成于"),
         "en": ("SMS weekly review", "Key points", "Sections", "Ledger workbook", "Figures folder", "Generated")}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0 if lang == "zh" else 1]


def _show_markdown(text: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None:
            display(Markdown(text))
            return
    except ImportError:
        pass
    print(text)


def heading(key: str, lang: str = "zh") -> None:
    """Show a notebook's title and introduction (``"1.0"`` …) or a sub-heading
    (:data:`HEADINGS`) in ``lang``."""
    if key in SECTIONS:
        title, intro = SECTIONS[key][0 if lang == "zh" else 1]
        _show_markdown(f"# {title}\n\n{intro}")
    else:
        _show_markdown(f"## {_pick(HEADINGS[key], lang)}")


def say(key: str, lang: str = "zh", **values) -> None:
    """Show one of the notebooks' sentences (:data:`SENTENCES`) in ``lang``."""
    _show_markdown(_pick(SENTENCES[key], lang).format(**values))


def cannot_show(what: str, lang: str = "zh") -> None:
    """Say, in the report's language, why a section shows nothing (:data:`CANNOT_SHOW`)."""
    _show_markdown(f"*{_pick(CANNOT_SHOW[what], lang)}*")


def notebooks(folder: str | Path | None = None) -> list[Path]:
    """The report's notebooks, in order (``1.0-…``, ``2.0-…``)."""
    folder = Path(folder) if folder else config.notebooks()
    found = sorted(folder.glob("[0-9]*.ipynb"))
    if not found:
        raise FileNotFoundError(f"{folder}: no notebooks to run")
    return found


def section_title(notebook: Path, lang: str) -> str:
    """A notebook's title in ``lang`` (its number picks it)."""
    number = notebook.stem.split("-", 1)[0]
    return SECTIONS[number][0 if lang == "zh" else 1][0] if number in SECTIONS else notebook.stem


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
    ledgers: dict | None = None,
    industry: str = "",
) -> Path:
    """Execute every notebook for ``week`` and write the report.

    Writes, under ``out`` (default ``reports/``), with ``-en`` in every name for English:
    ``notebooks/<name>-<week>.ipynb`` (executed), ``html/<name>-<week>.html`` (outputs
    only, no code, titled), ``figures/<week>/*.png|svg`` and ``report-<week>.html``, the
    front page: the week's key points and each vendor's headline (from ``ledgers``, the
    week's :func:`analysis.ledgers_of` sheets) and links to every section and to the
    workbook. ``trial`` (trial send logs) goes to the notebooks that take it. A notebook
    that fails stops the report with its error; nothing is left half-written in ``html/``.

    Returns
    -------
    Path of ``report-<week>.html`` (``report-<week>-en.html``).
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out = Path(out) if out else config.reports()
    suffix = config.lang_suffix(lang)
    figures = out / "figures" / f"{week}{suffix}"
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
        executed = out / "notebooks" / f"{nb.stem}-{week}{suffix}.ipynb"
        own = dict(params)
        declared = papermill.inspect_notebook(str(nb))
        if "trial" in declared:
            own["trial"] = [str(Path(p).resolve()) for p in trial]
        if "industry" in declared:
            own["industry"] = industry
        with _quiet_kernel() as chatter:
            try:
                papermill.execute_notebook(str(nb), str(executed), parameters=own, kernel_name="python3",
                                           cwd=str(config.project_root()), progress_bar=False,
                                           execution_timeout=timeout, log_output=False)
            except papermill.PapermillExecutionError as exc:
                raise RuntimeError(f"{nb.name}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}") from None
            except Exception as exc:
                raise RuntimeError(f"{nb.name}: {exc}; kernel said: {chatter.read()[-500:].strip()}") from None
        title = f"{section_title(nb, lang)} · {week}"
        body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4),
                                              resources={"metadata": {"name": title}})
        page = out / "html" / f"{nb.stem}-{week}{suffix}.html"
        write_atomic(page, body)
        pages.append((page, section_title(nb, lang)))
    index = out / f"report-{week}{suffix}.html"
    workbook = out / "ledgers" / f"ledger-{week}{suffix}.xlsx"
    write_atomic(index, front_page(week, lang=lang, ledgers=ledgers, pages=pages, out=out,
                                  workbook=workbook if workbook.exists() else None, figures=figures))
    return index


def front_page(week: str, *, lang: str, ledgers: dict | None, pages: list[tuple[Path, str]], out: Path,
               workbook: Path | None, figures: Path) -> str:
    """The report's first page, HTML: the week's key points, each vendor's headline and
    links to every section. Every value is escaped."""
    from jinja2 import Environment

    from .excel import styled
    from .summary import headline, key_points

    title, points_title, sections_title, workbook_title, figures_title, generated_title = _PAGE[lang]
    points = key_points(ledgers, lang) if ledgers else []
    table = styled(headline(ledgers), lang=lang).to_html() if ledgers else ""
    generated = ledgers["summary"].attrs.get("generated", "") if ledgers else ""
    env = Environment(autoescape=True)
    template = env.from_string(_FRONT)
    return template.render(
        lang=lang, title=f"{title} · {week}", points_title=points_title, points=points, table=table,
        sections_title=sections_title, sections=[(p.relative_to(out).as_posix(), name) for p, name in pages],
        workbook=workbook.relative_to(out).as_posix() if workbook else None, workbook_title=workbook_title,
        figures=os.path.relpath(figures, out), figures_title=figures_title, generated=generated,
        generated_title=generated_title)


_FRONT = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.6; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
ul.points li { margin: .35em 0; }
table { border-collapse: collapse; font-size: .9em; margin-top: .5em; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .3em .7em; text-align: right; white-space: nowrap; }
th { background: #ddebf7; text-align: center; } td:first-child { text-align: left; }
.meta { color: #777; font-size: .85em; } .wide { overflow-x: auto; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="meta">{{ generated_title }} {{ generated }}</p>
{% if points %}<h2>{{ points_title }}</h2>
<ul class="points">{% for p in points %}<li>{{ p }}</li>{% endfor %}</ul>
<div class="wide">{{ table | safe }}</div>{% endif %}
<h2>{{ sections_title }}</h2>
<ol>{% for href, name in sections %}<li><a href="{{ href }}">{{ name }}</a></li>{% endfor %}</ol>
<p>{% if workbook %}<a href="{{ workbook }}">{{ workbook_title }}</a> · {% endif %}{{ figures_title }}: <code>{{ figures }}</code></p>
</body></html>
"""




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
