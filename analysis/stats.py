"""The statistics behind the figures: intervals and tests for proportions, and the
binomial tail and limit of the alerts.

Every function is vectorised (array-likes in, float arrays out) and returns a named
result, as statsmodels and ``scipy.stats`` do: ``interval.low``, ``test.statistic``,
``test.pvalue``; a result still unpacks as a tuple. ``alpha`` is the significance level:
a two-sided ``1 - alpha`` interval.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: The significance level of the intervals shown everywhere (95% intervals).
ALPHA = 0.05


class Interval(NamedTuple):
    """A confidence interval: ``low`` and ``high`` bounds."""

    low: np.ndarray
    high: np.ndarray


class TestResult(NamedTuple):
    """A test's ``statistic`` (z), its two-sided ``pvalue`` and an ``effect`` size."""

    statistic: np.ndarray
    pvalue: np.ndarray
    effect: np.ndarray


def critical_z(alpha: float = ALPHA) -> float:
    """The standard normal quantile of a two-sided ``1 - alpha`` interval (1.96 at 0.05).

    >>> round(critical_z(0.05), 3)
    1.96
    """
    from scipy import special

    return float(special.ndtri(1 - alpha / 2))


def wilson_interval(k, n, *, alpha: float = ALPHA) -> Interval:
    """Wilson score interval of ``k`` successes in ``n`` trials.

    Returns an :class:`Interval`, NaN where ``n`` is 0; at ``k = 0`` the low bound is
    exactly 0 and at ``k = n`` the high bound exactly 1.

    Examples
    --------
    >>> ci = wilson_interval(10, 10)
    >>> round(float(ci.low), 3), float(ci.high)
    (0.722, 1.0)
    """
    z = critical_z(alpha)
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    low = np.where(n > 0, np.where(k <= 0, 0.0, np.clip(centre - half, 0, 1)), np.nan)
    high = np.where(n > 0, np.where(k >= n, 1.0, np.clip(centre + half, 0, 1)), np.nan)
    return Interval(low, high)


def two_proportion_test(k1, n1, k2, n2) -> TestResult:
    """Pooled two-proportion z-test of ``k1/n1`` against ``k2/n2``.

    Returns a :class:`TestResult`: ``statistic`` z (positive when the first proportion
    is higher), the two-sided ``pvalue``, and ``effect`` Cohen's h = 2·asin√p1 −
    2·asin√p2 (0.2 small, 0.5 medium, 0.8 large); NaN where either ``n`` is 0.
    """
    from scipy import special

    k1, n1, k2, n2 = (np.asarray(x, dtype=float) for x in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
        pooled = (k1 + k2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.where(se > 0, (p1 - p2) / se, 0.0)
        pvalue = 2 * special.ndtr(-np.abs(z))
        h = 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p2))
    bad = (n1 == 0) | (n2 == 0)
    return TestResult(np.where(bad, np.nan, z), np.where(bad, np.nan, pvalue), np.where(bad, np.nan, h))


# scipy.stats.binom's cdf and ppf from scipy.special (scipy.stats takes half a second to import)
def binom_cdf(k, n, p) -> np.ndarray:
    """P(X ≤ k) for X ~ Binomial(n, p): ``scipy.stats.binom.cdf``."""
    from scipy import special

    return special.bdtr(np.asarray(k).astype(np.int64), np.asarray(n).astype(np.int64), p)


def binom_ppf(q: float, n, p) -> np.ndarray:
    """The smallest k with P(X ≤ k) ≥ ``q`` for X ~ Binomial(n, p):
    ``scipy.stats.binom.ppf``."""
    from scipy import special

    n = np.asarray(n).astype(np.int64)
    k = np.ceil(special.bdtrik(q, n, p))
    below = np.maximum(k - 1, 0)
    return np.where(special.bdtr(below.astype(np.int64), n, p) >= q, below, k)
