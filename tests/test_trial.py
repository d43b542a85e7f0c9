"""Channel trial: verdicts on a trial built with known outcomes, evidence strength,
sample planning, exact tests, due diligence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import make_log
from scipy import stats

from analysis import customer_concentration, load_trial, plan_trial, simulate_trial, trial_scorecard
from analysis.measures import wilson_interval
from analysis.trial import _exact_homogeneity, messages_needed, trial_stages


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    truth = simulate_trial(tmp_path_factory.mktemp("trial"))
    log = load_trial([truth["file"]])
    return truth, log, trial_scorecard(log)


def test_every_verdict_matches_the_built_trial(trial):
    truth, _, sc = trial
    for vendor, failing in truth["fails"].items():
        rows = sc[sc["vendor"].eq(vendor)].set_index("criterion")
        assert sorted(rows.index[~rows["passed"]]) == sorted(failing), vendor
    assert len(sc) == 3 * 9


def test_stage_and_round_columns_are_kept(trial):
    truth, log, _ = trial
    raw = pd.read_csv(truth["file"])
    assert log["stage"].value_counts().to_dict() == raw["stage"].value_counts().to_dict()
    assert log["round"].dropna().astype(int).value_counts().sort_index().tolist() == \
        raw["round"].dropna().astype(int).value_counts().sort_index().tolist()


def test_evidence_and_needed_sample(trial):
    truth, log, sc = trial
    row = sc[sc["vendor"].eq("alpha") & sc["criterion"].eq("arrival")].iloc[0]
    basic = log[log["vendor"].eq("alpha") & log["stage"].eq("basic")]
    low, _ = wilson_interval(len(basic), len(basic))
    assert row["passed"] and row["evidence"] == "too small"
    assert row["low"] == pytest.approx(float(low))
    assert row["needed"] == truth["too_small"]["alpha"]["arrival"]
    assert "189 messages needed" in row["note"]


def test_named_findings(trial):
    truth, _, sc = trial
    beta = sc[sc["vendor"].eq("beta")].set_index("criterion")
    assert beta.loc["carriers", "note"] == "missing: " + truth["missing_carrier"]["beta"]
    assert beta.loc["homogeneity", "note"].endswith(f"{truth['lagging_category']['beta']} lags")
    assert beta.loc["round_spread", "value"] == pytest.approx(10.0)
    assert beta.loc["latency", "value"] == pytest.approx(4.0)
    gamma = sc[sc["vendor"].eq("gamma")].set_index("criterion")
    assert gamma.loc["resend_gap", "value"] == pytest.approx(0.10)


def test_messages_needed_by_bisection_matches_a_linear_search():
    z = stats.norm.ppf(0.975)
    for threshold, rate in ((0.98, 1.0), (0.98, 0.995), (0.95, 0.99), (0.9, 0.97)):
        n = 1
        while float(wilson_interval(rate * n, n, z=z)[0]) < threshold:
            n += 1
        assert messages_needed(threshold, rate=rate) == n
    assert math.isinf(messages_needed(0.98, rate=0.98))


def test_plan_trial():
    plan = plan_trial(threshold=0.98, expected=0.995)
    assert plan["carrier"].tolist() == ["China Mobile", "China Unicom", "China Telecom", "Virtual"]
    assert (plan["all_arrive_needed"] == 189).all()
    assert (plan["messages_needed"] == messages_needed(0.98, rate=0.995)).all()
    assert plan_trial(expected=0.97)["messages_needed"].isna().all()


def test_exact_test_matches_fisher_on_two_by_two():
    table = np.array([[9, 1], [3, 7]])
    assert _exact_homogeneity(table) == pytest.approx(stats.fisher_exact(table)[1])


def test_small_scenario_uses_the_exact_test():
    rows = [{"category": c, "status": "delivered" if i < ok else "failed", "submit": "2025-05-06 15:00"}
            for c, ok in (("verification", 10), ("notification", 10), ("marketing", 4)) for i in range(10)]
    sc = trial_scorecard(make_log(rows).assign(stage="scenario")).set_index("criterion")
    assert "exact p" in sc.loc["homogeneity", "note"] and not sc.loc["homogeneity", "passed"]
    assert sc.loc["homogeneity", "note"].endswith("marketing lags")


def test_stages_inferred_from_time_and_category():
    log = make_log([
        {"submit": "2025-05-06 09:15", "category": "marketing"},   # weekday peak: stress
        {"submit": "2025-05-06 15:00", "category": "verification"},  # basic
        {"submit": "2025-05-06 15:00", "category": "marketing"},   # scenario
        {"submit": "2025-05-01 15:00", "category": "verification"},  # holiday: stress
    ])
    assert trial_stages(log).tolist() == ["stress", "basic", "scenario", "stress"]


def test_customer_concentration():
    healthy = pd.DataFrame({"vendor": "a", "volume": [30] + [7.78] * 9 + [0] * 10})  # 20 customers, head of 2
    inverted = pd.DataFrame({"vendor": "b", "volume": [900, 50] + [5] * 10})
    out = customer_concentration(pd.concat([healthy, inverted])).set_index("vendor")
    assert out.loc["a", "head_customers"] == 2
    assert out.loc["a", "head_share"] == pytest.approx((30 + 7.78) / (30 + 7.78 * 9))
    assert not out.loc["a", "inverted"]
    assert out.loc["b", "head_share"] == pytest.approx(950 / 1000) and out.loc["b", "inverted"]
    with pytest.raises(ValueError, match="'volume' column"):
        customer_concentration(pd.DataFrame({"x": [1]}))


def test_too_few_numbers_and_rounds_fail():
    # 5 numbers in the basic test, 2 stress rounds: the criteria the built trial always passes
    rows = [{"phone": f"+8613900000{i % 5:03d}", "carrier": "China Mobile", "category": "verification",
             "submit": "2025-06-10 15:00"} for i in range(12)]
    rows += [{"submit": f"2025-06-10 09:{m:02d}", "category": "marketing"} for m in (0, 1, 30, 31)]
    log = make_log(rows)
    log["stage"] = ["basic"] * 12 + ["stress"] * 4
    sc = trial_scorecard(log).set_index("criterion")
    assert sc.loc["numbers", "value"] == 5 and not sc.loc["numbers", "passed"]
    assert sc.loc["rounds", "value"] == 2 and not sc.loc["rounds", "passed"]
    assert sc.loc["carriers", "note"] == "missing: China Unicom, China Telecom, Virtual"
