"""SMS Ledger: how well bulk-SMS platforms really deliver, and what they really cost.

Analysts import from here only::

    from analysis import read_send_log
    log = read_send_log("data/raw/aliyun-2025-05.csv")
"""

from .enrich import enrich
from .normalize import count_segments, infer_attempts, mask_phones, normalize_phones
from .readers import LoadError, LoadResult, load_send_log, read_send_log
from .schema import COLUMNS, FAILURE_REASONS, LABELS, STATUSES, label
from .simulate import simulate
from .store import read_store, write_store

__version__ = "0.1.0"

__all__ = [
    "COLUMNS",
    "FAILURE_REASONS",
    "LABELS",
    "LoadError",
    "LoadResult",
    "STATUSES",
    "__version__",
    "count_segments",
    "enrich",
    "infer_attempts",
    "label",
    "load_send_log",
    "mask_phones",
    "normalize_phones",
    "read_send_log",
    "read_store",
    "simulate",
    "write_store",
]
