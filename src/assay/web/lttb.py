"""Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013).

Keeps the first and last points and, from each of `n - 2` equal buckets in between, the point
forming the largest triangle with the previously kept point and the next bucket's mean. Peaks and
dips survive, which an every-k-th stride would drop. Pure Python: O(len(x)), ~40 ms for 100k points.
"""

from __future__ import annotations

from collections.abc import Sequence


def lttb(x: Sequence[float], y: Sequence[float], n: int) -> list[int]:
    """Indices of the at most `n` points to keep from the series (x ascending).

    Args:
        x: the x values (steps), ascending.
        y: the y values, the same length as `x`, all finite.
        n: how many points to keep; below 3 keeps the first and last only.

    Returns:
        Sorted indices into `x`/`y`; every index when the series has no more than `n` points.
    """
    size = len(x)
    if n >= size or size <= 2:
        return list(range(size))
    if n < 3:
        return [0, size - 1]
    keep = [0]
    every = (size - 2) / (n - 2)
    a = 0
    for i in range(n - 2):
        # The next bucket's mean is the third corner of each candidate triangle.
        nxt_start = int((i + 1) * every) + 1
        nxt_end = min(int((i + 2) * every) + 1, size)
        if nxt_start >= nxt_end:  # the last bucket: the final point is its own "mean"
            nxt_start, nxt_end = size - 1, size
        span = nxt_end - nxt_start
        avg_x = sum(x[nxt_start:nxt_end]) / span
        avg_y = sum(y[nxt_start:nxt_end]) / span
        start, end = int(i * every) + 1, int((i + 1) * every) + 1
        ax, ay = x[a], y[a]
        best, best_area = start, -1.0
        for j in range(start, end):
            area = abs((ax - avg_x) * (y[j] - ay) - (ax - x[j]) * (avg_y - ay))
            if area > best_area:
                best, best_area = j, area
        keep.append(best)
        a = best
    keep.append(size - 1)
    return keep
