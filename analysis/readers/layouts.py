"""The built-in layouts: the declarations in ``analysis/layouts/*.toml``, one file per
vendor, read by the same :func:`~analysis.readers.language.load_layouts` as a user's
``--mapping``. Adding a vendor is a file there and a fixture; no Python."""

from __future__ import annotations

import functools
from pathlib import Path

from ._layout import Layout
from .language import load_layouts

#: Where the built-in declarations are.
LAYOUT_DIR = Path(__file__).resolve().parent.parent / "layouts"


@functools.cache
def builtin() -> tuple[Layout, ...]:
    """Every built-in layout, file by file in name order."""
    out: list[Layout] = []
    for path in sorted(LAYOUT_DIR.glob("*.toml")):
        out += load_layouts(path)
    names = [lay.name for lay in out]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two built-in layouts are named {next(n for n in names if names.count(n) > 1)!r}")
    return tuple(out)


def by_name(name: str) -> Layout | None:
    return next((lay for lay in builtin() if lay.name == name), None)


def reasons_of(vendor: str) -> dict[str, str]:
    """A vendor's error codes -> failure reasons, as its layouts declare them."""
    out: dict[str, str] = {}
    for lay in builtin():
        if lay.vendor == vendor:
            out.update(lay.declaration.reasons)
    return out


@functools.cache
def line_pattern() -> str:
    """One pattern any line of a built-in line layout's kinds matches (how a text file
    is told to be a log)."""
    import re

    kinds = [re.sub(r"\(\?P<\w+>", "(?:", k.match.pattern) for lay in builtin()
             if lay.declaration.format == "lines" for k in lay.declaration.lines]
    return "|".join(f"(?:{k})" for k in kinds)
