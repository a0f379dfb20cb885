"""Small statistics shared by the loop's decisions, verdicts and reruns (no scipy needed)."""

from __future__ import annotations

import functools
import math
import statistics
import sys


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile: the t with P(T <= t) = p for `df` degrees of freedom (any real df > 0).

    scipy's value when scipy is already loaded; otherwise the pure-Python inverse below, which
    agrees with scipy to 1e-9 relative. scipy is not imported for this: its import costs
    several hundred milliseconds, more than a whole `assay compare`.

    Raises:
        ValueError: p outside [0, 1] or df not positive.

    Example:
        >>> round(t_quantile(0.975, 3), 4)
        3.1824
    """
    if not 0 <= p <= 1 or not df > 0:
        raise ValueError(f"t_quantile needs 0 <= p <= 1 and df > 0, got p={p!r}, df={df!r}")
    if p in (0, 1):  # stdtrit(df, 0) is +inf
        return math.copysign(math.inf, p - 0.5)
    special = sys.modules.get("scipy.special")
    if special is not None:
        return float(special.stdtrit(df, p))
    return _t_quantile(p, df)


@functools.lru_cache(maxsize=1024)
def _t_quantile(p: float, df: float) -> float:
    if p == 0.5:
        return 0.0
    q = min(p, 1 - p)  # the tail beyond |t|; the sign comes from p
    sign = 1.0 if p > 0.5 else -1.0
    if df == 1:  # Cauchy
        return sign / math.tan(math.pi * q)
    if df == 2:
        return sign * (1 - 2 * q) * math.sqrt(2 / (4 * q * (1 - q)))
    z = -statistics.NormalDist().inv_cdf(q)
    if df > 1e5:  # the expansion in 1/df is exact to double precision here; lgamma of huge df is not
        return sign * (z if df == math.inf else _cornish_fisher(z, df))
    # Newton on the tail S(t) - q from the normal quantile, which lies below the root: S is convex
    # for t > 0, so every step stays below the root and closes in (quadratically once near it).
    t = z
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    for _ in range(400):
        density = math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))
        step = (_t_tail(t, df) - q) / density
        t += step
        if abs(step) <= 1e-14 * t:
            break
    return sign * t


def _cornish_fisher(z: float, df: float) -> float:
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def _t_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0, through the regularized incomplete beta: I_x(df/2, 1/2) / 2, x = df/(df+t^2)."""
    x, y = df / (df + t * t), t * t / (df + t * t)  # both computed directly: 1 - x loses digits near t = 0
    return 0.5 * _betainc(df / 2, 0.5, x, y)


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """Regularized incomplete beta I_x(a, b), y = 1 - x, by Lentz's continued fraction (Numerical Recipes)."""
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return h


def pooled_sigma(groups: list[list[float]]) -> tuple[float | None, int]:
    """Pooled within-group standard deviation and its degrees of freedom.

    Each group is the metric of one piece of code over several seeds, so its spread is pure noise,
    whatever the code: baseline repeats, and candidates that earned more than one run.
    """
    ss = df = 0.0
    for g in groups:
        finite = [x for x in g if math.isfinite(x)]
        if len(finite) >= 2:
            ss += statistics.variance(finite) * (len(finite) - 1)
            df += len(finite) - 1
    return (math.sqrt(ss / df), int(df)) if df else (None, 0)


def difference_interval(a: list[float], b: list[float], confidence: float,
                        pooled: tuple[float | None, int] = (None, 0)) -> tuple[float, float, float, str] | None:
    """mean(a) - mean(b) and its two-sided confidence interval: (difference, lo, hi, noise source).

    Welch's t when both sides have repeats (each its own seed noise; df rounded down); else the
    pooled seed noise `pooled` = (sigma, df) of the other groups. None when neither exists: the
    difference alone says nothing about noise.
    """
    na, nb = len(a), len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if na >= 2 and nb >= 2:
        va, vb = statistics.variance(a) / na, statistics.variance(b) / nb
        se = math.sqrt(va + vb)
        df = int((va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))) if va + vb > 0 else na + nb - 2
        source = "welch"
    elif pooled[0] is not None and pooled[1] >= 1:
        se, df, source = pooled[0] * math.sqrt(1 / na + 1 / nb), pooled[1], "pooled"
    else:
        return None
    half = t_quantile(1 - (1 - confidence) / 2, max(df, 1)) * se
    return diff, diff - half, diff + half, source


BOOTSTRAP_RESAMPLES = 2000


def bootstrap_interval(values: list[float], confidence: float, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): the two-sided percentile bootstrap interval of the mean of `values`.

    Resamples the values with replacement `resamples` times from a fixed seed, so the same values
    always give the same interval. numpy draws the resamples when it is importable (a 10,000-example
    set takes seconds in pure Python); the two generators differ, so the interval's last digits
    depend on which ran.
    """
    n = len(values)
    if n == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    means = _resample_means(values, resamples, seed)
    means.sort()
    alpha = 1 - confidence
    return statistics.fmean(values), _percentile(means, alpha / 2), _percentile(means, 1 - alpha / 2)


def _resample_means(values: list[float], resamples: int, seed: int) -> list[float]:
    n = len(values)
    try:
        import numpy as np
    except ImportError:
        import random

        rng = random.Random(seed)
        return [math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples)]
    gen = np.random.default_rng(seed)
    data = np.asarray(values, dtype=np.float64)
    chunk = max(1, 4_000_000 // n)  # bounds the index matrix at ~32 MB
    out: list[float] = []
    for start in range(0, resamples, chunk):
        idx = gen.integers(0, n, size=(min(chunk, resamples - start), n))
        out.extend(data[idx].mean(axis=1).tolist())
    return out


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    pos = q * (len(ordered) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
