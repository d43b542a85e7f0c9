"""Charts for review meetings, in Chinese or English, and the CJK font they need.

Every plot function takes the tidy frame a measure returns (or the log) and an optional
``ax``, draws, and returns the Axes; saving is the caller's (:func:`save_figure`). Colours
are fixed per carrier and vendor (:func:`color_of`) so a carrier looks the same in every
chart. matplotlib never falls back to a CJK font by itself: :func:`use_cjk_font` (called
by every plot function) finds one, registers it and puts it first in the font list.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.dates import DateFormatter
from matplotlib.ticker import NullFormatter, PercentFormatter

from .measures import ALL, TARGET
from .schema import label

#: CJK fonts looked for, best first (family names as matplotlib reports them).
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "SimHei", "Heiti SC",
    "Sarasa Gothic SC", "Droid Sans Fallback", "AR PL UMing CN",
)
#: Where font files are looked for when matplotlib's cache predates their install.
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts",
             "/System/Library/Fonts", "/Library/Fonts", "C:/Windows/Fonts")
_FONT_FILE_HINTS = ("wqy", "notosanscjk", "notosanssc", "sourcehansans", "pingfang", "msyh", "simhei",
                    "droidsansfallback", "sarasa", "uming")

CARRIER_COLORS = {
    "China Mobile": "#1f6fb4", "China Unicom": "#d62728", "China Telecom": "#ff8c1a", "China Broadnet": "#8c564b",
    "Virtual (China Mobile)": "#8fb8de", "Virtual (China Unicom)": "#f0a0a0", "Virtual (China Telecom)": "#ffc58a",
    "Satellite": "#7f7f7f", ALL: "#222222",
}
VENDOR_COLORS = {
    "aliyun": "#ff6a00", "tencent": "#0052d9", "gateway": "#6b6b6b", "twilio": "#f22f46", "vonage": "#871fff",
    "aws_sns": "#232f3e", "huawei": "#c7000b",
}
_FALLBACK = matplotlib.colormaps["tab20"].colors

#: Provinces in map-like order: north, northeast, east, south-central, southwest, northwest.
PROVINCE_ORDER = (
    "Beijing", "Tianjin", "Hebei", "Shanxi", "Inner Mongolia", "Liaoning", "Jilin", "Heilongjiang",
    "Shanghai", "Jiangsu", "Zhejiang", "Anhui", "Fujian", "Jiangxi", "Shandong", "Henan", "Hubei", "Hunan",
    "Guangdong", "Guangxi", "Hainan", "Chongqing", "Sichuan", "Guizhou", "Yunnan", "Tibet", "Shaanxi",
    "Gansu", "Qinghai", "Ningxia", "Xinjiang", "Hong Kong", "Macau", "Taiwan",
)
WEEKDAYS = {"zh": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
            "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]}

_font_checked: str | None | bool = False


def color_of(key) -> str:
    """The colour of a carrier or vendor, the same in every chart."""
    key = str(key)
    if key in CARRIER_COLORS:
        return CARRIER_COLORS[key]
    if key.lower() in VENDOR_COLORS:
        return VENDOR_COLORS[key.lower()]
    digest = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16)
    return matplotlib.colors.to_hex(_FALLBACK[digest % len(_FALLBACK)])


def find_cjk_font() -> str | None:
    """Family name of an installed CJK font, registering its file with matplotlib when
    the font cache does not know it yet; None when there is none."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in known:
            return name
    for folder in FONT_DIRS:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            stem = path.name.lower().replace("-", "").replace("_", "")
            if path.suffix.lower() in {".ttf", ".ttc", ".otf"} and any(h in stem for h in _FONT_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(str(path))
                    name = font_manager.FontProperties(fname=str(path)).get_name()
                except (OSError, RuntimeError, ValueError):
                    continue
                if name:
                    return name
    return None


def use_cjk_font() -> str | None:
    """Put a CJK font first in matplotlib's sans-serif list (once per process).

    Returns the font's name, or None after warning how to install one.
    """
    global _font_checked
    if _font_checked is False:
        name = find_cjk_font()
        if name is None:
            warnings.warn(
                "no CJK font found: Chinese labels will show as boxes. Install one, e.g. "
                "`sudo apt-get install fonts-noto-cjk` (or fonts-wqy-microhei), or Noto Sans CJK SC "
                "from your OS, then restart Python.",
                stacklevel=2,
            )
        _font_checked = name
    if _font_checked:
        sans = [f for f in plt.rcParams["font.sans-serif"] if f != _font_checked]
        plt.rcParams["font.sans-serif"] = [_font_checked, *sans]
        plt.rcParams["font.family"] = ["sans-serif"]
        plt.rcParams["axes.unicode_minus"] = False
    return _font_checked or None


def save_figure(fig, name: str, folder: str | Path | None, *, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``folder/name.png`` and ``.svg``; returns the paths (none when
    ``folder`` is empty, so a notebook can call it whether or not it was asked to save)."""
    if not folder:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def _ax(ax, size=(9, 4.5)):
    use_cjk_font()
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _pct(ax, axis="y"):
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def _title(key: str, lang: str) -> str:
    return TITLES[key][0 if lang == "zh" else 1]


#: Latency axis ticks: seconds, zh and en labels.
LATENCY_TICKS = [(1, "1秒", "1 s"), (10, "10秒", "10 s"), (60, "1分钟", "1 min"), (600, "10分钟", "10 min"),
                 (3600, "1小时", "1 h"), (86400, "1天", "1 day")]

TITLES = {
    "trend": ("到达率趋势", "Arrival rate over time"),
    "trend_carrier": ("各运营商每周到达率（全部平台）", "Weekly arrival by carrier, all vendors"),
    "trend_vendor": ("各平台每周到达率（虚线为各自控制下限）", "Weekly arrival by vendor, dotted: each one's control limit"),
    "peak_days": ("工作日高峰（09:00–10:30）各日到达率（当日不足 {n} 条的平台不画）",
                  "Weekday-peak (09:00–10:30) arrival by day (vendors with fewer than {n} that day left out)"),
    "heatmap": ("运营商 × 省份到达率", "Arrival by carrier and province"),
    "hour_weekday": ("发送时段 × 星期", "Send hour × weekday"),
    "peak": ("各平台高峰时段与非高峰的到达率（误差线为 95% 区间）", "Arrival in peak windows against off-peak (bars: 95% interval)"),
    "rounds": ("压力测试各轮到达率", "Arrival per stress round"),
    "click_through": ("各发送小时的点击率（有点击的成功消息 / 成功消息）",
                      "Click-through by send hour (delivered with a click / delivered)"),
    "billing": ("计费条数：按提交、按成功、按合同与账单", "Segments: on submission, on delivery, under the contract, on the bill"),
    "pareto": ("失败原因帕累托", "Failure reasons (Pareto)"),
    "ecdf": ("时延分布（成功短信，提交到回执）", "Latency of delivered messages, submission to receipt"),
    "scorecard": ("通道测试评分卡", "Channel trial scorecard"),
    "target": ("目标", "target"),
    "limits": ("控制限", "control limits"),
    "cumulative": ("累计占比", "cumulative share"),
    "ten_min": ("10分钟", "10 minutes"),
    "lift": ("提升", "lift"),
    "latency_axis": ("提交到回执的时延（对数刻度）", "Submission to receipt (log scale)"),
    "contract_billed": ("按合同应计条数", "Billed under the contract"),
}


# --------------------------------------------------------------------------- charts


def plot_arrival_trend(
    rates: pd.DataFrame,
    *,
    x: str = "week",
    by: str = "carrier",
    target: float = TARGET,
    lang: str = "zh",
    ax=None,
):
    """Arrival over time per ``by`` group, with 95% bands, the target line and, when
    ``rates`` has them (:func:`analysis.quality_ledger`), the groups' control limits.

    ``rates``: :func:`analysis.arrival_rates` with ``by=[x, by]`` (or the quality ledger
    filtered to one vendor level).
    """
    ax = _ax(ax)
    for key, part in rates.sort_values(x).groupby(by, observed=True, sort=True):
        c = color_of(key)
        xs = part[x].astype(str)
        ax.plot(xs, part["arrival_rate"], marker="o", color=c, label=label(key, lang))
        ax.fill_between(xs, part["arrival_low"], part["arrival_high"], color=c, alpha=0.15, linewidth=0)
        if "control_low" in part and part["control_low"].notna().any():
            ax.plot(xs, part["control_low"], color=c, linestyle=":", linewidth=1)
    ax.axhline(target, color="#2ca02c", linestyle="--", linewidth=1.2, label=f"{_title('target', lang)} {target:.0%}")
    if "control_low" in rates:
        ax.plot([], [], color="#555555", linestyle=":", label=_title("limits", lang))
    _pct(ax)
    low = np.nanmin([rates["arrival_low"].min(), target]) if len(rates) else 0.9
    ax.set_ylim(max(0.0, low - 0.02), 1.005)
    ax.set_xlabel(label(x, lang))
    ax.set_ylabel(label("arrival_rate", lang))
    ax.set_title(_title(f"trend_{by}", lang) if f"trend_{by}" in TITLES else _title("trend", lang))
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_carrier_province(rates: pd.DataFrame, *, value: str = "arrival_rate", lang: str = "zh", ax=None):
    """Heat map of ``value`` by province (rows, in map-like order) and carrier (columns).

    ``rates``: :func:`analysis.arrival_rates` with ``by=["province", "carrier"]``.
    """
    ax = _ax(ax, size=(7, 9))
    wide = rates.pivot_table(index="province", columns="carrier", values=value, aggfunc="first", observed=True)
    order = [p for p in PROVINCE_ORDER if p in wide.index] + sorted(p for p in wide.index if p not in PROVINCE_ORDER)
    wide = wide.reindex(order)
    im = ax.imshow(wide.to_numpy(dtype=float), aspect="auto", cmap="RdYlGn", vmin=np.nanmin([wide.min().min(), 0.9]),
                   vmax=1.0)
    ax.set_yticks(range(len(wide.index)), [label(p, lang) for p in wide.index], fontsize=8)
    ax.set_xticks(range(len(wide.columns)), [label(c, lang) for c in wide.columns], rotation=30, ha="right",
                  fontsize=8)
    for (i, j), v in np.ndenumerate(wide.to_numpy(dtype=float)):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=6)
    ax.figure.colorbar(im, ax=ax, format=PercentFormatter(1.0, decimals=0), label=label(value, lang))
    ax.set_title(_title("heatmap", lang))
    return ax


def plot_hour_weekday(rates: pd.DataFrame, *, value: str = "arrival_rate", lang: str = "zh", ax=None):
    """Heat map of ``value`` by send hour (columns) and weekday (rows).

    ``rates``: :func:`analysis.arrival_rates` with ``by=["weekday", "hour"]`` (``value``
    may be ``latency_p50_s`` …).
    """
    ax = _ax(ax, size=(10, 3.6))
    wide = rates.pivot_table(index="weekday", columns="hour", values=value, aggfunc="first").reindex(
        index=range(7), columns=range(24))
    percent = value.endswith("_rate")
    im = ax.imshow(wide.to_numpy(dtype=float), aspect="auto", cmap="RdYlGn" if percent else "viridis_r")
    ax.set_yticks(range(7), WEEKDAYS[lang])
    ax.set_xticks(range(24), [str(h) for h in range(24)], fontsize=8)
    ax.set_xlabel(label("hour", lang))
    fmt = PercentFormatter(1.0, decimals=0) if percent else None
    ax.figure.colorbar(im, ax=ax, format=fmt, label=label(value, lang))
    ax.set_title(f"{_title('hour_weekday', lang)}: {label(value, lang)}")
    return ax


def plot_peak_comparison(variance: pd.DataFrame, *, by: str = "vendor", lang: str = "zh", ax=None):
    """Arrival with 95% intervals in each peak window against off-peak, per ``by``.

    ``variance``: :func:`analysis.peak_variance`.
    """
    ax = _ax(ax)
    windows = [w for w in ("weekday_peak", "holiday", "adjusted_workday", "off_peak") if w in set(variance["window"])]
    groups = list(dict.fromkeys(variance[by].astype(str))) if by in variance else [ALL]
    width = 0.8 / max(len(windows), 1)
    shades = {"weekday_peak": "#d62728", "holiday": "#9467bd", "adjusted_workday": "#bcbd22", "off_peak": "#7f7f7f"}
    for k, w in enumerate(windows):
        part = variance[variance["window"].astype(str).eq(w)]
        if by in part:
            part = part.set_index(part[by].astype(str)).reindex(groups)
        xs = np.arange(len(groups)) + (k - (len(windows) - 1) / 2) * width
        err = np.vstack([part["arrival_rate"] - part["arrival_low"], part["arrival_high"] - part["arrival_rate"]])
        ax.bar(xs, part["arrival_rate"], width, yerr=err, capsize=2, color=shades[w], label=label(w, lang))
    ax.set_xticks(range(len(groups)), [label(g, lang) for g in groups])
    ax.set_ylim(0.0, 1.05)  # bars compared by their height start at zero
    _pct(ax)
    ax.set_ylabel(label("arrival_rate", lang))
    ax.set_title(_title("peak", lang))
    ax.legend(fontsize=8)
    return ax


def plot_peak_days(per_day: pd.DataFrame, *, by: str = "vendor", min_messages: int = 30, lang: str = "zh",
                   ax=None):
    """Production traffic's arrival in the weekday peak window, day by day, per ``by``
    (not stress-test rounds: those are a trial's), with 95% bands. Days on which a group
    sent fewer than ``min_messages`` are left out (a day of 2 messages is 0% or 100%).

    ``per_day``: :func:`analysis.arrival_rates` of the peak-window messages with
    ``by=[by, "day"]``.
    """
    ax = _ax(ax)
    shown = per_day[per_day["submitted"].ge(min_messages)]
    for key, part in shown.sort_values("day").groupby(by, observed=True):
        c = color_of(key)
        xs = pd.to_datetime(part["day"]).to_numpy()
        ax.plot(xs, part["arrival_rate"], marker="o", color=c, label=label(key, lang))
        ax.fill_between(xs, part["arrival_low"], part["arrival_high"], color=c, alpha=0.15, linewidth=0)
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.set_ylim(0.0, 1.05)
    _pct(ax)
    ax.set_xlabel(label("day", lang))
    ax.set_ylabel(label("arrival_rate", lang))
    ax.set_title(_title("peak_days", lang).format(n=min_messages))
    if len(shown):
        ax.legend(fontsize=8, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_rounds(per_round: pd.DataFrame, *, by: str = "vendor", lang: str = "zh", ax=None):
    """Arrival per stress-test round and group, with 95% bands: the round-to-round spread.

    ``per_round``: :func:`analysis.arrival_rates` with ``by=[by, "round"]`` (rounds from
    :func:`analysis.measures.with_rounds`).
    """
    ax = _ax(ax)
    for key, part in per_round.groupby(by, observed=True):
        c = color_of(key)
        spread = 100 * (part["arrival_rate"].max() - part["arrival_rate"].min())
        ax.errorbar(part["round"], part["arrival_rate"], yerr=[part["arrival_rate"] - part["arrival_low"],
                    part["arrival_high"] - part["arrival_rate"]], marker="o", capsize=3, color=c,
                    label=f"{label(key, lang)} ({spread:.1f} pp)")
    ax.set_xlabel(label("round", lang))
    ax.set_ylabel(label("arrival_rate", lang))
    _pct(ax)
    ax.set_title(_title("rounds", lang))
    ax.legend(fontsize=8)
    return ax


def plot_click_through(rates: pd.DataFrame, lift: pd.DataFrame | None = None, *, lang: str = "zh", ax=None):
    """Click-through by send hour (delivered messages with a click / delivered) with its
    95% band; the first row of ``lift`` (:func:`analysis.click_through_lift`) is marked on
    the two hours it compares and labelled at the first.

    ``rates``: :func:`analysis.click_through_rates` with ``by=["hour"]``.
    """
    ax = _ax(ax)
    r = rates.sort_values("hour")
    ax.plot(r["hour"], r["click_through_rate"], marker="o", color="#1f6fb4")
    ax.fill_between(r["hour"], r["click_through_low"], r["click_through_high"], color="#1f6fb4", alpha=0.2,
                    linewidth=0)
    at = dict(zip(r["hour"], r["click_through_rate"], strict=True))
    if lift is not None and len(lift):
        row = lift.iloc[0]
        a, b = (int(str(row[c]).split(":")[0]) for c in ("hour_a", "hour_b"))
        if np.isfinite(at.get(a, np.nan)) and np.isfinite(at.get(b, np.nan)):  # both hours have a rate
            ax.scatter([a, b], [at[a], at[b]], s=90, facecolors="none", edgecolors="#d62728", linewidths=1.5, zorder=3)
            ax.annotate(f"{a}:00 vs {b}:00 {_title('lift', lang)} {row['lift']:+.0%}\n"
                        f"95%: [{row['lift_low']:+.0%}, {row['lift_high']:+.0%}]",
                        xy=(a, at[a]), xytext=(0, 28), textcoords="offset points", ha="center", va="bottom",
                        color="#d62728", fontsize=9, arrowprops={"arrowstyle": "->", "color": "#d62728"})
            ax.set_ylim(top=max(ax.get_ylim()[1], at[a] * 1.35))
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlim(-0.5, 23.5)
    ax.set_xlabel(label("hour", lang))
    ax.set_ylabel(label("click_through_rate", lang))
    ax.set_ylim(bottom=0)
    _pct(ax)
    ax.set_title(_title("click_through", lang))
    ax.grid(alpha=0.3)
    return ax


def plot_billing(reconciliation: pd.DataFrame, *, lang: str = "zh", ax=None):
    """Segments submitted, delivered, billed under the contract mode and invoiced, per
    vendor and month, with the money difference labelled.

    ``reconciliation``: :func:`analysis.billing_reconciliation`.
    """
    ax = _ax(ax)
    r = reconciliation.reset_index(drop=True)
    names = [f"{label(v, lang)}\n{m}" for v, m in zip(r["vendor"], r["month"], strict=True)]
    contract = np.where(r["contract_mode"].eq("delivery"), r["segments_delivered"],
                        np.where(r["contract_mode"].eq("submission"), r["segments_submitted"], np.nan))
    series = [("segments_submitted", r["segments_submitted"], "#9ecae1"),
              ("segments_delivered", r["segments_delivered"], "#3182bd"),
              ("contract_billed", contract, "#fdae6b"),
              ("billed_count", r["billed_count"].astype(float), "#e6550d")]
    width = 0.2
    for k, (key, values, colour) in enumerate(series):
        name = _title(key, lang) if key in TITLES else label(key, lang)
        ax.bar(np.arange(len(r)) + (k - 1.5) * width, values, width, color=colour, label=name)
    for i, row in r.iterrows():
        money = row["gap_amount"]
        if pd.notna(money):
            top = np.nanmax([row["segments_submitted"], row["billed_count"] if pd.notna(row["billed_count"]) else 0])
            ax.text(i, top * 1.02, f"{label('gap_amount', lang)} {money:,.2f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(r)), names, fontsize=8)
    ax.set_ylabel(label("segments", lang))
    ax.set_title(_title("billing", lang))
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_failure_pareto(failures: pd.DataFrame, *, lang: str = "zh", ax=None):
    """Failure reasons, largest first, with the cumulative share.

    ``failures``: :func:`analysis.failure_reasons` (any grouping; summed by reason).
    """
    ax = _ax(ax)
    counts = failures.groupby("failure_reason", observed=True)["failed"].sum().sort_values(ascending=False)
    names = [label(k, lang) for k in counts.index]
    ax.bar(names, counts.to_numpy(), color="#d62728")
    ax.set_ylabel(label("failed", lang))
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    twin = ax.twinx()
    twin.plot(names, counts.cumsum().to_numpy() / max(counts.sum(), 1), color="#222222", marker="o")
    twin.set_ylim(0, 1.05)
    twin.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    twin.set_ylabel(_title("cumulative", lang))
    ax.set_title(_title("pareto", lang))
    return ax


def plot_latency_ecdf(latency: pd.DataFrame, *, by: str = "vendor", kind: str = "attempt", lang: str = "zh",
                      ax=None):
    """Cumulative share of delivered messages by latency per group, log scale, with the
    10-minute line.

    ``latency``: the ``latency`` measure (``compute(["latency"], source)["latency"]``,
    one week of it for a week's view); ``kind``: ``attempt`` (each attempt's
    submission to receipt) or ``recipient`` (what the recipient waited, across resends).
    """
    ax = _ax(ax)
    rows = latency[latency["kind"].eq(kind)]
    counts = rows.groupby([rows[by].astype(object), "seconds"], sort=True)["messages"].sum()
    for key, n in counts.groupby(level=0, sort=True):
        if n.sum():
            seconds = np.clip(n.index.get_level_values("seconds").to_numpy(dtype=float), 0.5, None)
            ax.step(seconds, n.cumsum().to_numpy() / n.sum(), where="post", color=color_of(key), label=label(key, lang))
    ax.axvline(600, color="#d62728", linestyle="--", linewidth=1, label=_title("ten_min", lang))
    ax.set_xscale("log")
    ticks = [t for t in LATENCY_TICKS if t[0] <= max(ax.get_xlim()[1], 600)]
    ax.set_xticks([t[0] for t in ticks], [t[1 if lang == "zh" else 2] for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(_title("latency_axis", lang))
    _pct(ax)
    ax.set_ylabel(_title("cumulative", lang))
    ax.set_title(_title("ecdf", lang))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_scorecard(scorecard: pd.DataFrame, *, lang: str = "zh", ax=None):
    """Vendors side by side: one column per vendor, one row per criterion, green where
    it passed, red where it failed, amber where the sample cannot tell.

    ``scorecard``: :func:`analysis.trial_scorecard`.
    """
    vendors = list(dict.fromkeys(scorecard["vendor"].astype(str)))
    criteria = list(dict.fromkeys(scorecard["criterion"].astype(str)))
    ax = _ax(ax, size=(2.2 + 1.8 * len(vendors), 0.9 + 0.42 * len(criteria)))
    table = scorecard.assign(vendor=scorecard["vendor"].astype(str)).set_index(["criterion", "vendor"])
    colours = {"pass": "#b7e1a1", "insufficient": "#ffe08a", "fail": "#f4a6a6", "none": "#eeeeee"}
    for i, crit in enumerate(criteria):
        for j, vendor in enumerate(vendors):
            if (crit, vendor) not in table.index:
                state, text = "none", "—"
            else:
                row = table.loc[(crit, vendor)]
                state = row["verdict"]
                text = _cell_text(row, lang)
            ax.add_patch(matplotlib.patches.Rectangle((j, i), 1, 1, facecolor=colours[state], edgecolor="white"))
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=8)
    ax.set_xlim(0, len(vendors))
    ax.set_ylim(len(criteria), 0)
    ax.set_xticks(np.arange(len(vendors)) + 0.5, [label(v, lang) for v in vendors])
    ax.set_yticks(np.arange(len(criteria)) + 0.5, [label(c, lang) for c in criteria], fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    handles = [matplotlib.patches.Patch(facecolor=colours[v], label=label(v, lang)) for v in ("pass", "insufficient", "fail")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=8, frameon=False)
    ax.set_title(_title("scorecard", lang), pad=24)
    return ax


def _cell_text(row, lang: str) -> str:
    """A scorecard cell: the value in its unit, and a rate's 95% lower bound."""
    v = row["value"]
    if pd.isna(v):
        return label("insufficient", lang) if row["verdict"] == "insufficient" else "—"
    unit = row["unit"]
    if unit == "rate":
        return f"{v:.1%}" + (f"\n≥{row['low']:.1%}" if pd.notna(row["low"]) else "")
    if unit == "points":
        return f"{v:.1f} pp"
    if unit == "factor":
        return f"×{v:.1f}"
    return f"{v:.0f}"
