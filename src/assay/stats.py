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
