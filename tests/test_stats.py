"""The statistics: intervals and tests against scipy.stats, named results, alpha."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from analysis.stats import binom_cdf, binom_ppf, critical_z, two_proportion_test, wilson_interval


@pytest.mark.parametrize("k,n", [(0, 1), (10, 10), (7, 10), (980, 1000), (1, 3), (50, 51)])
def test_wilson_matches_scipy(k, n):
    low, high = wilson_interval(k, n)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert low == pytest.approx(ci.low, abs=1e-9)
    assert high == pytest.approx(ci.high, abs=1e-9)


def test_wilson_ten_of_ten_cannot_prove_98_percent():
    low, _ = wilson_interval(10, 10)
    assert 0.70 < low < 0.74  # DESIGN: about 72%


@given(st.integers(0, 500), st.integers(0, 500))
def test_wilson_bounds_contain_the_rate(k, extra):
    n = k + extra
    low, high = wilson_interval(k, n)
    if n == 0:
        assert np.isnan(low) and np.isnan(high)
    else:
        assert 0 <= low <= k / n <= high <= 1


def test_two_proportion_test_matches_chi_square():
    k1, n1, k2, n2 = 45, 100, 80, 120
    z, p, h = two_proportion_test(k1, n1, k2, n2)
    chi2, p_chi, _, _ = stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
    assert z**2 == pytest.approx(chi2)
    assert p == pytest.approx(p_chi)
    assert h == pytest.approx(2 * np.arcsin(np.sqrt(0.45)) - 2 * np.arcsin(np.sqrt(80 / 120)))


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.2])
def test_wilson_at_any_alpha_matches_scipy(alpha):
    ci = wilson_interval([7, 980], [10, 1000], alpha=alpha)
    for i, (k, n) in enumerate(((7, 10), (980, 1000))):
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
        assert (ci.low[i], ci.high[i]) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert critical_z(alpha) == pytest.approx(stats.norm.ppf(1 - alpha / 2))


def test_results_are_named_and_still_unpack():
    test = two_proportion_test([6, 5], [10, 0], [18, 5], [20, 10])
    z, p, h = test
    assert test.statistic is z and test.pvalue is p and test.effect is h
    assert np.isnan(test.pvalue[1])  # an empty side: no test
    ci = wilson_interval(3, 5)
    low, high = ci
    assert (ci.low, ci.high) == (low, high)


def test_binomial_tail_and_quantile_match_scipy():
    rng = np.random.default_rng(5)
    n = rng.integers(1, 5000, 300)
    p = rng.uniform(0.5, 0.999, 300)
    k = rng.binomial(n, p)
    np.testing.assert_allclose(binom_cdf(k, n, p), stats.binom.cdf(k, n, p), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(binom_ppf(0.00135, n, p), stats.binom.ppf(0.00135, n, p))


def test_clopper_pearson_matches_scipy_exact():
    from analysis.stats import clopper_pearson_interval

    for k, n in ((0, 10), (10, 10), (1970, 2000), (3, 17)):
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        ci = clopper_pearson_interval(k, n)
        assert (float(ci.low), float(ci.high)) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert np.isnan(clopper_pearson_interval(0, 0).low)


def test_newcombe_matches_the_papers_examples_and_its_definition():
    from analysis.stats import newcombe_interval

    # Newcombe (1998), table II: 56/70 − 48/80 → 0.0524 to 0.3339; 9/10 − 3/10 → 0.1705 to 0.8090
    ci = newcombe_interval([56, 9], [70, 10], [48, 3], [80, 10])
    np.testing.assert_allclose(ci.low, [0.0524, 0.1705], atol=5e-5)
    np.testing.assert_allclose(ci.high, [0.3339, 0.8090], atol=5e-5)
    # built from scipy's Wilson bounds
    a = stats.binomtest(45, 50).proportion_ci(method="wilson")
    b = stats.binomtest(30, 40).proportion_ci(method="wilson")
    d = 45 / 50 - 30 / 40
    low = d - np.sqrt((45 / 50 - a.low) ** 2 + (b.high - 30 / 40) ** 2)
    assert float(newcombe_interval(45, 50, 30, 40).low) == pytest.approx(low)


def test_tost_pvalue_agrees_with_its_interval():
    from analysis.stats import newcombe_interval, tost_two_proportions

    k1, n1, k2, n2 = [990, 950, 20], [1000, 1000, 20], [985, 990, 19], [1000, 1000, 20]
    t = tost_two_proportions(k1, n1, k2, n2, margin=0.03)
    inside = (t.low > -0.03) & (t.high < 0.03)
    assert ((t.pvalue < 0.05) == inside).all()
    assert inside.tolist() == [True, False, False]
    # at its p-value the 1 − 2p interval touches the margin
    edge = newcombe_interval(990, 1000, 985, 1000, alpha=2 * float(t.pvalue[0]))
    assert min(0.03 + edge.low, 0.03 - edge.high) == pytest.approx(0, abs=1e-6)


def test_holm_by_hand():
    from analysis.stats import holm

    # sorted 0.01, 0.03, 0.04 → ×3, ×2, ×1 = 0.03, 0.06, 0.04 → monotone 0.03, 0.06, 0.06
    assert holm([0.04, 0.01, np.nan, 0.03]).tolist()[:2] == pytest.approx([0.06, 0.03])
    assert np.isnan(holm([0.04, 0.01, np.nan, 0.03])[2])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # 0.5 × 2 = 1, and monotone


def test_beta_binomial_cdf_matches_scipy():
    from analysis.stats import betabinom_cdf

    rng = np.random.default_rng(2)
    n = rng.integers(1, 3000, 400).astype(float)
    m, nu = rng.uniform(0.6, 0.995, 400), np.exp(rng.uniform(np.log(5), np.log(1e5), 400))
    a, b = m * nu, (1 - m) * nu
    sd = np.sqrt(n * m * (1 - m) * (nu + n) / (nu + 1))
    k = np.clip(np.floor(n * m - rng.uniform(-3, 6, 400) * sd), 0, n)
    ref = stats.betabinom.cdf(k, n, a, b)
    got = betabinom_cdf(k, n, a, b)
    exact = (sd <= 150) & (ref > 1e-12)  # summed: exact
    np.testing.assert_allclose(got[exact], ref[exact], rtol=1e-4)
    approx = (sd > 150) & (ref > 1e-6)  # the moment-matched beta: within a factor of 1.5
    assert approx.sum() > 10 and (np.abs(np.log(got[approx] / ref[approx])) < np.log(1.5)).all()
    assert betabinom_cdf(5, 5, 2.0, 1.0) == 1.0 and betabinom_cdf(-1, 5, 2.0, 1.0) == 0.0


def test_beta_binomial_test_is_the_binomial_test_without_variance():
    from analysis.stats import beta_binomial_test

    t = beta_binomial_test(70, 100, 0.95, 1e-13)
    assert float(t.pvalue) == pytest.approx(stats.binom.cdf(70, 100, 0.95), rel=1e-4)
    # with variance the same shortfall is less surprising
    assert float(beta_binomial_test(70, 100, 0.95, 0.01 ** 2).pvalue) > float(t.pvalue)


def test_between_day_variance_by_hand_and_by_simulation():
    from analysis.stats import between_day_variance

    # two days of 100: 90 and 100 delivered. μ = 0.95; Σn(r − μ)² = 100·0.05²·2 = 0.5;
    # less (D − 1)·μ(1 − μ) = 0.0475; over Σn − Σn²/Σn = 200 − 100 = 100
    assert float(between_day_variance(np.array([90, 100]), np.array([100, 100]))) == pytest.approx(
        (0.5 - 0.0475) / 100)
    assert float(between_day_variance(np.array([95, 95]), np.array([100, 100]))) == 0.0
    # simulated: true daily rates with sd 1 point around 95%, 60 days of 5,000
    rng = np.random.default_rng(8)
    p = np.clip(rng.normal(0.95, 0.01, (200, 60)), 0, 1)
    k = rng.binomial(5000, p)
    est = between_day_variance(k, np.full(k.shape, 5000), axis=1)
    assert np.sqrt(est.mean()) == pytest.approx(0.01, rel=0.05)
