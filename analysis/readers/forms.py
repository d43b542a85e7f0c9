"""Url-encoded records: a callback's form body (``a=1&b=2``) or the URL a receipt was
pushed to (``http://host/path?a=1&b=2``), one record per line. What Huawei Cloud and
Chuanglan push, and what a web server's access log of receipt callbacks holds."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pandas as pd

from ..schema import STRING

#: A line that is a form body or a URL with a query of at least two fields.
FORM_LINE = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.\-]*://[^?\s]*\?|/[^?\s]*\?)?"
                       r"[A-Za-z_][\w.\-\[\]]*=[^&\s]*(?:&[A-Za-z_][\w.\-\[\]]*=[^&\s]*)+\s*$")


def is_form(lines: list[str]) -> bool:
    """Whether the first non-blank lines of a text file are all form records."""
    lines = [ln for ln in lines if ln.strip()][:20]
    return bool(lines) and all(FORM_LINE.match(ln) for ln in lines)


def form_records(text: pd.Series) -> pd.DataFrame:
    """The fields of each url-encoded record (decoded; the first of a repeated name),
    one column per field name, aligned with ``text``."""
    def fields(line) -> dict:
        if not isinstance(line, str):
            return {}
        query = line.strip().split("?", 1)[1] if re.match(r"^\s*(?:\w[\w+.\-]*://|/)[^?\s]*\?", line) else line.strip()
        out: dict = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            out.setdefault(name, value)
        return out

    frame = pd.DataFrame.from_records([fields(t) for t in text], index=text.index)
    return frame.astype(STRING).replace("", pd.NA) if len(frame.columns) else pd.DataFrame(index=text.index)
