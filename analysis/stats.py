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
    from scipy import special

    z = critical_z(alpha) if np.ndim(alpha) == 0 else special.ndtri(1 - np.asarray(alpha) / 2)  # or one per value
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


class Equivalence(NamedTuple):
    """Two one-sided tests (TOST) of a difference: ``pvalue`` (the larger of the two
    one-sided p-values: equivalent at ``alpha`` when below it) and the ``1 - 2·alpha``
    interval of the difference, ``low`` and ``high``, whose lying within the margin is
    the same decision."""

    pvalue: np.ndarray
    low: np.ndarray
    high: np.ndarray


def clopper_pearson_interval(k, n, *, alpha: float = ALPHA) -> Interval:
    """Exact (Clopper-Pearson) interval of ``k`` successes in ``n`` trials: each bound
    misses with at most ``alpha / 2``; NaN where ``n`` is 0.

    Examples
    --------
    >>> ci = clopper_pearson_interval(10, 10)
    >>> round(float(ci.low), 4), float(ci.high)
    (0.6915, 1.0)
    """
    from scipy import special

    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, special.betaincinv(np.maximum(k, 1e-300), n - k + 1, alpha / 2), 0.0)
        high = np.where(k < n, special.betaincinv(k + 1, np.maximum(n - k, 1e-300), 1 - alpha / 2), 1.0)
    bad = ~(n > 0)
    return Interval(np.where(bad, np.nan, low), np.where(bad, np.nan, high))


def newcombe_interval(k1, n1, k2, n2, *, alpha: float = ALPHA) -> Interval:
    """Newcombe's hybrid score interval of the difference ``k1/n1 − k2/n2`` (method 10 of
    Newcombe 1998: the two Wilson intervals combined), which keeps its coverage near 0%
    and 100% where the Wald interval collapses; NaN where either ``n`` is 0.

    Examples
    --------
    >>> ci = newcombe_interval(56, 70, 48, 80)   # Newcombe's own example: 0.0524 to 0.3339
    >>> round(float(ci.low), 4), round(float(ci.high), 4)
    (0.0524, 0.3339)
    """
    k1, n1, k2, n2 = (np.asarray(x, dtype=float) for x in (k1, n1, k2, n2))
    l1, u1 = wilson_interval(k1, n1, alpha=alpha)
    l2, u2 = wilson_interval(k2, n2, alpha=alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
        d = p1 - p2
        low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Interval(low, high)


def tost_two_proportions(k1, n1, k2, n2, *, margin: float, alpha: float = ALPHA) -> Equivalence:
    """Two one-sided tests that ``k1/n1 − k2/n2`` lies within ``±margin``, on Newcombe's
    interval: equivalent at ``alpha`` when the ``1 − 2·alpha`` interval lies within the
    margin. ``pvalue`` is the smallest ``alpha`` at which it would (the interval inverted
    by bisection), so ``pvalue < alpha`` is the same decision.

    Examples
    --------
    >>> t = tost_two_proportions(990, 1000, 985, 1000, margin=0.03)
    >>> bool(t.pvalue < 0.05), round(float(t.low), 4), round(float(t.high), 4)
    (True, -0.0034, 0.0137)
    """
    k1, n1, k2, n2 = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (k1, n1, k2, n2)))
    low, high = newcombe_interval(k1, n1, k2, n2, alpha=2 * alpha)
    # the p-value: the level at which the interval's nearer bound touches the margin
    lo, hi = np.full(k1.shape, 1e-12), np.full(k1.shape, 0.5)
    for _ in range(60):  # bisection on log(alpha): the interval narrows as alpha grows
        mid = np.sqrt(lo * hi)
        a, b = newcombe_interval(k1, n1, k2, n2, alpha=2 * mid)
        inside = (a > -margin) & (b < margin)
        hi = np.where(inside, mid, hi)
        lo = np.where(inside, lo, mid)
    pvalue = np.where((n1 > 0) & (n2 > 0), hi, np.nan)
    pvalue = np.where(np.isfinite(pvalue) & (hi >= 0.5), 1.0, pvalue)
    return Equivalence(pvalue, low, high)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error at the level compared with):
    the ``i``-th smallest times ``m − i + 1``, made monotone, at most 1; NaN stays NaN
    and is not counted.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


def betabinom_cdf(k, n, a, b, *, exact_above: float = 1.0) -> np.ndarray:
    """P(X ≤ k) for X ~ BetaBinomial(n, a, b) (``scipy.stats.betabinom.cdf``, vectorised
    and fast for large ``n``): the probability mass summed over the ten standard
    deviations on the smaller side of ``k`` (the tail beyond bounded geometrically), within
    a relative 1e-4 of the exact value. Where the distribution's standard deviation
    exceeds 150 counts, and where a beta of the same mean and variance puts the
    probability above ``exact_above`` (a test that only needs small p-values exactly),
    that beta's (within a factor of about 1.5 of the exact tail down to 1e-6).
    """
    from scipy import special

    k, n, a, b = (np.asarray(x, dtype=float) for x in np.broadcast_arrays(k, n, a, b))
    shape = k.shape
    k, n, a, b = (x.ravel() for x in (k, n, a, b))
    out = np.full(len(k), np.nan)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = n * a / (a + b)
        sd = np.sqrt(n * a * b * (a + b + n) / ((a + b) ** 2 * (a + b + 1)))
    ok = (n >= 0) & (a > 0) & (b > 0) & np.isfinite(k)
    out[ok & (k < 0)] = 0.0
    out[ok & (k >= n)] = 1.0
    todo = ok & (k >= 0) & (k < n)
    # first a beta of the same mean and variance (the count with half a unit of continuity) ...
    with np.errstate(invalid="ignore", divide="ignore"):
        m, v = mean / n, (sd / n) ** 2
        s = m * (1 - m) / v - 1
        out[todo] = special.betainc(m[todo] * s[todo], (1 - m[todo]) * s[todo], np.clip((k[todo] + 0.5) / n[todo], 0, 1))
    # ... then the exact sum where the tail is small, the only p-values a test's decision can turn on
    exact = np.flatnonzero(todo & (sd <= 150) & ~(out > exact_above))
    if len(exact):
        kk, nn, aa, bb = k[exact], n[exact], a[exact], b[exact]
        span = np.ceil(10 * sd[exact] + 10)
        lower = kk <= mean[exact]  # sum the side of k away from the mean, then complement if needed
        start = np.where(lower, np.maximum(0, kk - span), kk + 1)
        stop = np.where(lower, kk, np.minimum(nn, kk + 1 + span))
        count = (stop - start + 1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(count)[:-1]])
        row = np.repeat(np.arange(len(exact)), count)
        x = start[row] + (np.arange(count.sum()) - offsets[row])
        logpmf = (special.gammaln(nn[row] + 1) - special.gammaln(x + 1) - special.gammaln(nn[row] - x + 1)
                  + special.betaln(x + aa[row], nn[row] - x + bb[row]) - special.betaln(aa[row], bb[row]))
        pmf = np.exp(logpmf)
        total = np.add.reduceat(pmf, offsets)
        # the tail beyond the summed span, bounded by a geometric series of its last ratio
        cut = np.where(lower, start > 0, stop < nn)
        edge = np.where(lower, offsets, offsets + count - 1)
        inner = np.where(lower, np.minimum(edge + 1, offsets + count - 1), np.maximum(edge - 1, offsets))
        ratio = np.where(count > 1, pmf[edge] / np.where(pmf[inner] > 0, pmf[inner], 1), 0.0)
        total = total + np.where(cut & (ratio < 1), pmf[edge] * ratio / np.maximum(1 - ratio, 1e-12), 0.0)
        out[exact] = np.where(lower, np.minimum(total, 1.0), np.maximum(1.0 - total, 0.0))
    return out.reshape(shape)


def between_day_variance(k, n, *, axis: int = -1) -> np.ndarray:
    """Method-of-moments estimate of the variance τ² of a group's true daily rate
    around its mean (the overdispersion beyond binomial noise), from each day's ``k``
    successes in ``n``; days with ``n = 0`` are ignored, and fewer than two days give 0.

    With the pooled rate μ = Σk/Σn and D days: τ² = max(0, [Σ n(k/n − μ)² − (D − 1)·μ(1 − μ)]
    / [Σn − Σn²/Σn]) (the weighted between-day sum of squares less its binomial
    expectation, as in DerSimonian and Laird's estimator).
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    return variance_from_sums(*day_sums(k, n, axis=axis))


def day_sums(k, n, *, axis: int = -1):
    """Σn, Σk, Σk²/n, Σn² and the number of days with messages (the sums
    :func:`between_day_variance` needs, which add up across windows)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        k2n = np.where(n > 0, k * k / np.where(n > 0, n, 1), 0.0)
    return n.sum(axis), k.sum(axis), k2n.sum(axis), (n * n).sum(axis), (n > 0).sum(axis)


def variance_from_sums(sn, sk, sk2n, sn2, days) -> np.ndarray:
    """:func:`between_day_variance` from :func:`day_sums` (summed over any windows):
    the method-of-moments τ², 0 where fewer than two days have messages."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = sk / sn
        between = sk2n - mu * sk  # Σ n (k/n − μ)²
        denom = sn - sn2 / sn
        tau2 = (between - (days - 1) * mu * (1 - mu)) / denom
    return np.where((days >= 2) & (denom > 0), np.maximum(np.nan_to_num(tau2), 0.0), 0.0)


def beta_binomial_test(k, n, mean, var, *, exact_above: float = 1.0) -> TestResult:
    """One-sided test that ``k`` successes in ``n`` fell short of a rate known only as
    a distribution: the day's true rate has ``mean`` and variance ``var`` (the
    baseline's own uncertainty plus the day-to-day variation), so k ~ BetaBinomial(n,
    a, b) with a beta of that mean and variance; with ``var`` → 0 it is the exact
    binomial test. ``exact_above``: p-values the beta approximation puts above it are
    left approximate (see :func:`betabinom_cdf`).

    Returns a :class:`TestResult`: ``statistic`` the shortfall in standard deviations of
    that distribution (positive when below), ``pvalue`` P(X ≤ k), ``effect`` k/n − mean;
    NaN where ``n`` is 0.
    """
    k, n, mean, var = (np.asarray(x, dtype=float) for x in np.broadcast_arrays(k, n, mean, var))
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.clip(mean, 1e-9, 1 - 1e-9)
        v = np.clip(var, 1e-15, m * (1 - m) * (1 - 1e-9))
        s = m * (1 - m) / v - 1  # a + b
        sd = np.sqrt(n * m * (1 - m) * (s + n) / (s + 1))
        z = np.where(sd > 0, (n * m - k) / sd, 0.0)
        p = betabinom_cdf(k, n, m * s, (1 - m) * s, exact_above=exact_above)
        effect = k / n - mean
    bad = ~(n > 0) | ~np.isfinite(mean)
    return TestResult(np.where(bad, np.nan, z), np.where(bad, np.nan, p), np.where(bad, np.nan, effect))
