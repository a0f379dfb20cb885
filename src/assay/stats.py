"""Small statistics shared by the loop's decisions, verdicts and reruns (no scipy needed)."""

from __future__ import annotations

import math
import statistics


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile: exact for df 1 and 2, a Cornish-Fisher expansion (within 1%) above."""
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))
    z = statistics.NormalDist().inv_cdf(p)
    if not df or df == math.inf:
        return z
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


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
