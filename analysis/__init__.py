"""SMS Ledger: how well bulk-SMS platforms really deliver, and what they really cost.

Analysts import from here only::

    from analysis import read_send_log
    log = read_send_log("data/raw/aliyun-2025-05.csv")
"""

from __future__ import annotations

import importlib
from importlib import metadata

try:  # the one version: pyproject.toml's, as installed
    __version__ = metadata.version("sms-ledger")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: Where each public name lives; imported on first use (PEP 562), so ``import analysis``
#: and the console command load matplotlib, openpyxl or papermill only when needed.
_MODULES = {
    "engine": ["compute", "ledger_source"],
    "enrichment": ["enrich"],
    "events": ["Inputs", "attach_events", "load_inputs", "read_events"],
    "kernel": ["peak_windows"],
    "excel": ["ledger_history", "read_ledger", "styled", "write_ledger"],
    "ledgers": ["LEDGER_MEASURES", "weekly_ledgers"],
    "compliance": ["check_send_windows", "check_templates"],
    "measures": [
        "arrival_rates",
        "billing_reconciliation",
        "click_through_lift",
        "click_through_rates",
        "effective_cost",
        "failure_reasons",
        "in_week",
        "peak_variance",
        "repeat_failures",
        "resend_honesty",
        "round_spread",
        "with_rounds",
    ],
    "alerts": ["drop_alerts"],
    "normalize": ["count_segments", "infer_attempts", "mask_phones", "normalize_phones"],
    "plots": [
        "plot_arrival_trend",
        "plot_billing",
        "plot_carrier_province",
        "plot_click_through",
        "plot_failure_pareto",
        "plot_hour_weekday",
        "plot_latency_ecdf",
        "plot_peak_comparison",
        "plot_peak_days",
        "plot_rounds",
        "plot_scorecard",
        "save_figure",
        "use_cjk_font",
    ],
    "readers": ["LoadError", "LoadResult", "load_send_log", "read_send_log"],
    "report": ["cannot_show", "heading", "say"],
    "schema": ["COLUMNS", "FAILURE_REASONS", "LABELS", "STATUSES", "label"],
    "simulation": ["simulate", "simulate_trial"],
    "stats": ["two_proportion_test", "wilson_interval"],
    "store": ["read_store", "write_store"],
    "trial": ["customer_concentration", "load_trial", "plan_trial", "trial_scorecard"],
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted([*_WHERE, "__version__"])


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
