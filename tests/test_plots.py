"""Every chart renders in both languages with no missing glyph, returns its Axes, and
draws the numbers it is given."""

from __future__ import annotations

import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from analysis import (  # noqa: E402
    arrival_rates,
    billing_reconciliation,
    click_through_lift,
    click_through_rates,
    compute,
    failure_reasons,
    peak_variance,
    plots,  # noqa: E402
    trial_scorecard,
)
from analysis.measures import ALL, with_rounds  # noqa: E402


@pytest.fixture(scope="module")
def charts(demo_inputs):
    log = demo_inputs.log
    q, latency = compute(["quality", "latency"], log).values()
    lift = click_through_lift(log, 15, 20)
    scorecard = trial_scorecard(log)
    return {
        "trend": lambda lang, ax: plots.plot_arrival_trend(q[q["vendor"].ne(ALL) & q["carrier"].eq(ALL)], by="vendor",
                                                           lang=lang, ax=ax),
        "trend_vendor": lambda lang, ax: plots.plot_arrival_trend(
            arrival_rates(log, by=["day", "vendor"]), x="day", by="vendor", lang=lang, ax=ax),
        "heatmap": lambda lang, ax: plots.plot_carrier_province(
            arrival_rates(log, by=["province", "carrier"]).dropna(subset=["province"]), lang=lang, ax=ax),
        "hour_weekday": lambda lang, ax: plots.plot_hour_weekday(arrival_rates(log, by=["weekday", "hour"]), lang=lang, ax=ax),
        "latency_hours": lambda lang, ax: plots.plot_hour_weekday(
            arrival_rates(log, by=["weekday", "hour"]), value="latency_p50_s", lang=lang, ax=ax),
        "peak": lambda lang, ax: plots.plot_peak_comparison(peak_variance(log), lang=lang, ax=ax),
        "rounds": lambda lang, ax: plots.plot_rounds(
            arrival_rates(with_rounds(log[log["submit_time"].dt.day.eq(6)], gap="2h"), by=["vendor", "round"]),
            lang=lang, ax=ax),
        "click_through_rate": lambda lang, ax: plots.plot_click_through(click_through_rates(log), lift, lang=lang, ax=ax),
        "billing": lambda lang, ax: plots.plot_billing(billing_reconciliation(log, demo_inputs.bill), lang=lang, ax=ax),
        "pareto": lambda lang, ax: plots.plot_failure_pareto(failure_reasons(log), lang=lang, ax=ax),
        "ecdf": lambda lang, ax: plots.plot_latency_ecdf(latency, lang=lang, ax=ax),
        "scorecard": lambda lang, ax: plots.plot_scorecard(scorecard, lang=lang, ax=ax),
    }


def test_a_cjk_font_is_found():
    assert plots.find_cjk_font() is not None, "make setup installs one (fonts-wqy-microhei)"


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("name", ["trend", "trend_vendor", "heatmap", "hour_weekday", "latency_hours", "peak",
                                  "rounds", "click_through_rate", "billing", "pareto", "ecdf", "scorecard"])
def test_chart_renders_without_missing_glyphs(charts, name, lang, tmp_path):
    fig, ax = plt.subplots()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = charts[name](lang, ax)
        paths = plots.save_figure(fig, name, tmp_path)
    plt.close(fig)
    assert out is ax
    assert ax.get_lines() or ax.patches or ax.images, "something is drawn"
    if name.startswith("trend"):
        assert sum(len(ln.get_xdata()) > 1 for ln in ax.get_lines()) >= 3
    missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    assert not missing, missing
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)
    text = " ".join(t.get_text() for t in ax.figure.findobj(matplotlib.text.Text))
    if lang == "zh":
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), "Chinese labels"
        assert not re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", text), "no identifiers in a Chinese chart"
    else:
        assert not re.findall(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]", text), "no Chinese in an English chart"


def test_trend_draws_the_rates_and_colours_are_fixed(demo_inputs):
    rates = arrival_rates(demo_inputs.log, by=["week", "carrier"]).dropna(subset=["carrier"])
    fig, ax = plt.subplots()
    plots.plot_arrival_trend(rates, lang="en", ax=ax)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    mobile = rates[rates["carrier"].eq("China Mobile")]
    np.testing.assert_allclose(lines["China Mobile"].get_ydata(), mobile["arrival_rate"])
    assert matplotlib.colors.to_hex(lines["China Mobile"].get_color()) == plots.color_of("China Mobile")
    assert "target 98%" in lines
    plt.close(fig)


def test_pareto_sorts_and_accumulates(demo_inputs):
    f = failure_reasons(demo_inputs.log, by=[])
    fig, ax = plt.subplots()
    plots.plot_failure_pareto(f, lang="en", ax=ax)
    heights = [p.get_height() for p in ax.patches]
    assert heights == sorted(f["failed"], reverse=True)
    plt.close(fig)


def test_heatmap_orders_provinces_like_a_map(demo_inputs):
    rates = arrival_rates(demo_inputs.log, by=["province", "carrier"]).dropna(subset=["province"])
    fig, ax = plt.subplots()
    plots.plot_carrier_province(rates, lang="en", ax=ax)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names == [p for p in plots.PROVINCE_ORDER if p in set(rates["province"])]
    plt.close(fig)
