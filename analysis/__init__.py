"""SMS Ledger: how well bulk-SMS platforms really deliver, and what they really cost.

Analysts import from here only::

    from analysis import read_send_log
    log = read_send_log("data/raw/aliyun-2025-05.csv")
"""

from .enrich import enrich
from .events import Inputs, attach_events, load_inputs, read_events
from .excel import ledger_history, read_ledger, styled, write_ledger
from .ledgers import content_ledger, failure_ledger, quality_ledger, weekly_ledgers
from .lint import check_send_windows, check_templates
from .measures import (
    arrival_rates,
    billing_reconciliation,
    effective_cost,
    failure_reasons,
    in_week,
    open_rate_lift,
    open_rates,
    peak_variance,
    peak_windows,
    repeat_failures,
    round_spread,
    wilson_interval,
    with_rounds,
)
from .monitor import drop_alerts
from .normalize import count_segments, infer_attempts, mask_phones, normalize_phones
from .plots import (
    plot_arrival_trend,
    plot_billing,
    plot_carrier_province,
    plot_failure_pareto,
    plot_hour_weekday,
    plot_latency_ecdf,
    plot_open_rate,
    plot_peak_comparison,
    plot_rounds,
    plot_scorecard,
    save_figure,
    use_cjk_font,
)
from .readers import LoadError, LoadResult, load_send_log, read_send_log
from .schema import COLUMNS, FAILURE_REASONS, LABELS, STATUSES, label
from .simulate import simulate, simulate_trial
from .store import read_store, write_store
from .trial import customer_concentration, load_trial, plan_trial, trial_scorecard

__version__ = "0.1.0"

__all__ = [
    "COLUMNS",
    "FAILURE_REASONS",
    "Inputs",
    "LABELS",
    "LoadError",
    "LoadResult",
    "STATUSES",
    "__version__",
    "arrival_rates",
    "attach_events",
    "billing_reconciliation",
    "check_send_windows",
    "check_templates",
    "content_ledger",
    "count_segments",
    "customer_concentration",
    "drop_alerts",
    "effective_cost",
    "enrich",
    "failure_ledger",
    "failure_reasons",
    "in_week",
    "infer_attempts",
    "label",
    "ledger_history",
    "load_inputs",
    "load_send_log",
    "load_trial",
    "mask_phones",
    "normalize_phones",
    "open_rate_lift",
    "open_rates",
    "peak_variance",
    "peak_windows",
    "plan_trial",
    "plot_arrival_trend",
    "plot_billing",
    "plot_carrier_province",
    "plot_failure_pareto",
    "plot_hour_weekday",
    "plot_latency_ecdf",
    "plot_open_rate",
    "plot_peak_comparison",
    "plot_rounds",
    "plot_scorecard",
    "quality_ledger",
    "read_events",
    "read_ledger",
    "read_send_log",
    "read_store",
    "repeat_failures",
    "round_spread",
    "save_figure",
    "simulate",
    "simulate_trial",
    "styled",
    "trial_scorecard",
    "use_cjk_font",
    "weekly_ledgers",
    "wilson_interval",
    "with_rounds",
    "write_ledger",
    "write_store",
]
