"""Metric series of runs, read incrementally and downsampled for charts.

The metrics file is append-only, so a cached reader keeps its byte offset and parses only what a
running script appended since the last poll: polling a live 100,000-point run costs a stat and a
few lines, not a re-parse. A torn last line is left for the next read, as records.iter_events does.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import ConfigError
from assay.store.records import METRICS_FILE, new_events
from assay.web.lttb import lttb

X_AXES = ("step", "epoch", "time")


@dataclass
class _Series:
    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # wall time of each point (the event's `t`)


@dataclass
class _RunSeries:
    offset: int = 0
    api: dict[str, _Series] = field(default_factory=dict)  # logged through assay.log
    out: dict[str, _Series] = field(default_factory=dict)  # captured from printed lines
    version: int = 0  # bumped on every change; keys the downsampling cache
    sampled: dict[tuple[str, int, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    start: float | None = None  # the first event's wall time: x=time counts seconds from it

    def metric(self, key: str) -> _Series | None:
        # As records.metric_series: a metric logged through the API wins over the same name printed.
        return self.api.get(key) or self.out.get(key)

    def keys(self) -> list[str]:
        return sorted(set(self.api) | set(self.out))

    def feed(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            m = ev.get("m")
            if not isinstance(m, dict):
                continue
            dest = self.out if ev.get("src") == "out" else self.api
            step = ev.get("step")
            t = ev.get("t")
            t = float(t) if isinstance(t, (int, float)) else math.nan
            if self.start is None and math.isfinite(t):
                self.start = t
            for k, v in m.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    s = dest.get(k)
                    if s is None:
                        s = dest[k] = _Series()
                    s.steps.append(len(s.steps) if step is None else step)
                    s.values.append(float(v))
                    s.times.append(t)
        self.version += 1


class SeriesCache:
    """Parsed metric series of the most recently viewed runs (thread-safe; LRU over `size` runs)."""

    def __init__(self, size: int = 64) -> None:
        self._runs: OrderedDict[Path, _RunSeries] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def _load(self, run_dir: Path) -> _RunSeries:
        file = run_dir / METRICS_FILE
        with self._lock:
            rs = self._runs.pop(run_dir, None) or _RunSeries()
            self._runs[run_dir] = rs
            while len(self._runs) > self._size:
                self._runs.popitem(last=False)
            events, offset = new_events(file, rs.offset)  # a torn tail waits for its newline
            if offset != rs.offset:
                rs.feed(events)
                rs.offset = offset
            return rs

    def keys(self, run_dir: Path) -> list[str]:
        return self._load(run_dir).keys()

    def raw(self, run_dir: Path, x: str = "step") -> dict[str, tuple[list[float], list[float]]]:
        """Every metric of a run at full resolution as (xs, ys), finite points only, sorted by x."""
        rs = self._load(run_dir)
        out = {}
        with self._lock:
            for key in rs.keys():
                s = rs.metric(key)
                xs = _x_values(rs, s, x) if s is not None else None
                if xs is None or s is None:
                    continue
                pts = [(a, b) for a, b in zip(xs, s.values) if math.isfinite(a) and math.isfinite(b)]
                if any(pts[i][0] > pts[i + 1][0] for i in range(len(pts) - 1)):
                    pts.sort(key=lambda p: p[0])
                out[key] = ([p[0] for p in pts], [p[1] for p in pts])
        return out

    def series(self, run_dir: Path, keys: list[str] | None, points: int, x: str = "step") -> dict[str, dict[str, Any]]:
        """{metric: {steps, values, count, nonfinite}} with at most `points` points per metric.

        `x` is what `steps` holds: "step", "time" (seconds since the run's first event) or "epoch"
        (the value of the run's `epoch` metric at or before each step; metrics of a run that logs
        no `epoch` are left out). Non-finite values (a diverged loss) cannot be drawn or sent as
        JSON; they are counted in `nonfinite` and left out of the line.
        """
        if x not in X_AXES:
            raise ConfigError(f"Unknown x axis '{x}' (known: {', '.join(X_AXES)})", "Pass x=step, x=epoch or x=time.")
        rs = self._load(run_dir)
        out: dict[str, dict[str, Any]] = {}
        for key in keys if keys is not None else rs.keys():
            with self._lock:
                s = rs.metric(key)
                if s is None:
                    continue
                hit = rs.sampled.get((key, points, x))
                if hit and hit[0] == rs.version:
                    out[key] = hit[1]
                    continue
                steps, values = _x_values(rs, s, x), list(s.values)
                version = rs.version
            if steps is None:
                continue
            finite = [i for i, v in enumerate(values) if math.isfinite(v) and math.isfinite(steps[i])]
            xs = [steps[i] for i in finite]
            ys = [values[i] for i in finite]
            idx = lttb(xs, ys, points)
            item = {"steps": [xs[i] for i in idx], "values": [ys[i] for i in idx], "count": len(values),
                    "nonfinite": len(values) - len(finite), "downsampled": len(idx) < len(xs)}
            with self._lock:
                rs.sampled = {k: v for k, v in rs.sampled.items() if v[0] == rs.version}
                rs.sampled[(key, points, x)] = (version, item)
            out[key] = item
        return out


def _x_values(rs: _RunSeries, s: _Series, x: str) -> list[float] | None:
    """The x of each point of `s` on axis `x`; None when the run cannot be drawn on it (no epoch)."""
    if x == "step":
        return list(s.steps)
    if x == "time":
        start = rs.start if rs.start is not None else 0.0
        return [t - start for t in s.times]
    epoch = rs.metric("epoch")
    if epoch is None:
        return None
    import bisect

    order = sorted(range(len(epoch.steps)), key=lambda i: epoch.steps[i])
    at = [epoch.steps[i] for i in order]
    val = [epoch.values[i] for i in order]
    out = []
    for st in s.steps:
        j = bisect.bisect_right(at, st) - 1
        out.append(val[j] if j >= 0 else math.nan)
    return out
