"""The compare view: configurations of an experiment, each a mean curve with a 95% band over seeds.

The table is `assay compare --json` and `assay verdict --json` for the same `value`, so the page
shows the CLI's numbers; the curves are this module's: every run of a configuration is read at
the points of one step grid shared by all configurations (linear between logged points, nothing
outside a run's own range), and at each grid point the mean over the runs that reach it and the
95% t interval of that mean are drawn.
"""

from __future__ import annotations

import bisect
import math
import statistics
import threading
from pathlib import Path
from typing import Any

from assay.lab import Lab
from assay.store.records import METRICS_FILE
from assay.web.series import SeriesCache

GRID = 300  # points of the common grid: about a chart's width in pixels, halved
_CACHE: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
_LOCK = threading.Lock()


def _stamp(paths: list[Path]) -> tuple[Any, ...]:
    """What changes when a run appends a point: each metrics file's size and mtime."""
    out: list[tuple[int, int] | None] = []
    for p in paths:
        try:
            st = (p / METRICS_FILE).stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def grid(lo: float, hi: float, points: int, integer: bool) -> list[float]:
    """`points` evenly spaced x from lo to hi; whole numbers (every one when they fit) for steps."""
    if hi <= lo:
        return [lo]
    if integer and hi - lo + 1 <= points:
        return [float(s) for s in range(int(lo), int(hi) + 1)]
    xs = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
    return sorted({float(round(x)) for x in xs}) if integer else xs


def at_grid(xs: list[float], ys: list[float], g: list[float]) -> list[float | None]:
    """The series (xs sorted) read at each x of `g`: linear between points, None outside its range."""
    out: list[float | None] = []
    if not xs:
        return [None] * len(g)
    lo, hi = xs[0], xs[-1]
    for x in g:
        if x < lo or x > hi:
            out.append(None)
            continue
        j = bisect.bisect_left(xs, x)
        if xs[j] == x:
            out.append(ys[j])
        else:
            x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
            out.append(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    return out


def band(columns: list[list[float | None]]) -> tuple[list[float | None], list[float | None], list[float | None], list[int]]:
    """Mean, 95% interval (t over seeds) and n at each grid point of runs' values `columns[run][i]`."""
    from assay.stats import t_quantile

    means: list[float | None] = []
    lo: list[float | None] = []
    hi: list[float | None] = []
    ns: list[int] = []
    tq: dict[int, float] = {}
    for i in range(len(columns[0]) if columns else 0):
        vals = [v for c in columns if (v := c[i]) is not None]
        n = len(vals)
        ns.append(n)
        if not n:
            means.append(None)
            lo.append(None)
            hi.append(None)
            continue
        m = math.fsum(vals) / n
        means.append(m)
        if n < 2:
            lo.append(None)
            hi.append(None)
            continue
        if n not in tq:
            tq[n] = t_quantile(0.975, n - 1)
        half = tq[n] * statistics.stdev(vals) / math.sqrt(n)
        lo.append(m - half)
        hi.append(m + half)
    return means, lo, hi, ns


def _pick_curve(primary: str, counts: dict[str, int]) -> str:
    """A metric logged over steps to stand in for a primary metric printed once per run: one whose
    name the primary's holds (`loss` for `val_loss`), else the first; counters like `epoch` never."""
    many = sorted(k for k, n in counts.items() if n > 1 and k not in ("epoch", "step", "lr"))
    related = [k for k in many if k in primary or primary in k]
    return (related or many or [primary])[0]


def compare_view(lab: Lab, name: str, cache: SeriesCache, *, value: str = "last", by: list[str] | None = None,
                 curve: str | None = None, x: str = "step", points: int = GRID, pool_code: bool = False,
                 runs: list[str] | None = None) -> dict[str, Any]:
    """The compare page of experiment `name`.

    Args:
        value: each run's `last` or `best` value, as `assay compare/verdict --value`.
        by: params that make a configuration (default: those that vary, as `assay compare`).
        curve: the metric drawn over steps (default: the primary metric when a run logs it at
            more than one step, else the first such metric).
        x: "step", "epoch" or "time" (see SeriesCache.series).
        runs: when given, only the configurations holding one of these runs.

    Returns:
        {"compare": assay compare --json, "verdict": assay verdict --json, "curve", "x", "grid",
        "curves": [{"row": index in compare rows, "mean", "lo", "hi", "n", "runs"}]}.
    """
    from assay.report.verdict import verdict
    from assay.store.query import compare
    from assay.web.data import experiment, run_dir

    exp = experiment(lab, name)
    table = compare(lab, name, by=by, value=value, pool_code=pool_code)
    rows = list(enumerate(table["rows"]))
    if runs:
        wanted = set(runs)
        rows = [(i, r) for i, r in rows if wanted & set(r["runs"])]
    paths = {rid: run_dir(lab, rid) for _, r in rows for rid in r["runs"]}
    key = (str(lab.root), name, value, tuple(by or ()), curve, x, points, pool_code, tuple(runs or ()))
    stamp = (_stamp(list(paths.values())), repr(table["rows"]), exp.file.stat().st_mtime_ns)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit and hit[0] == stamp:
        return hit[1]
    raw = {rid: cache.raw(p, x) for rid, p in paths.items()}
    if curve is None:
        counts: dict[str, int] = {}
        for series in raw.values():
            for k, (xs, _) in series.items():
                if not k.startswith("sys/"):
                    counts[k] = max(counts.get(k, 0), len(xs))
        curve = exp.metric if counts.get(exp.metric, 0) > 1 else _pick_curve(exp.metric, counts)
    picked = {rid: s.get(curve, ([], [])) for rid, s in raw.items()}
    firsts = [xs[0] for xs, _ in picked.values() if xs]
    lasts = [xs[-1] for xs, _ in picked.values() if xs]
    integer = x == "step" or all(float(v).is_integer() for v in firsts + lasts)
    g = grid(min(firsts), max(lasts), points, integer) if firsts else []
    curves = []
    for i, r in rows:
        cols = [at_grid(*picked[rid], g) for rid in r["runs"]]
        mean, lo, hi, n = band(cols)
        curves.append({"row": i, "mean": mean, "lo": lo, "hi": hi, "n": n, "runs": r["runs"]})
    out = {"compare": table, "verdict": verdict(lab, name, value=value).to_dict(), "curve": curve,
           "units": exp.units(curve), "metric_units": exp.units(table["metric"]), "x": x, "grid": g,
           "curves": curves, "shown": [i for i, _ in rows]}
    with _LOCK:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = (stamp, out)
    return out
