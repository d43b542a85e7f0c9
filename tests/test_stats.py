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
