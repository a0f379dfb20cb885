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

from assay.store.records import METRICS_FILE, new_events
from assay.web.lttb import lttb


@dataclass
class _Series:
    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class _RunSeries:
    offset: int = 0
    api: dict[str, _Series] = field(default_factory=dict)  # logged through assay.log
    out: dict[str, _Series] = field(default_factory=dict)  # captured from printed lines
    version: int = 0  # bumped on every change; keys the downsampling cache
    sampled: dict[tuple[str, int], tuple[int, dict[str, Any]]] = field(default_factory=dict)

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
            for k, v in m.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    s = dest.get(k)
                    if s is None:
                        s = dest[k] = _Series()
                    s.steps.append(len(s.steps) if step is None else step)
                    s.values.append(float(v))
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

    def series(self, run_dir: Path, keys: list[str] | None, points: int) -> dict[str, dict[str, Any]]:
        """{metric: {steps, values, count, nonfinite}} with at most `points` points per metric.

        Non-finite values (a diverged loss) cannot be drawn or sent as JSON; they are counted in
        `nonfinite` and left out of the line.
        """
        rs = self._load(run_dir)
        out: dict[str, dict[str, Any]] = {}
        for key in keys if keys is not None else rs.keys():
            with self._lock:
                s = rs.metric(key)
                if s is None:
                    continue
                hit = rs.sampled.get((key, points))
                if hit and hit[0] == rs.version:
                    out[key] = hit[1]
                    continue
                steps, values = list(s.steps), list(s.values)
                version = rs.version
            finite = [i for i, v in enumerate(values) if math.isfinite(v)]
            xs = [steps[i] for i in finite]
            ys = [values[i] for i in finite]
            idx = lttb(xs, ys, points)
            item = {"steps": [xs[i] for i in idx], "values": [ys[i] for i in idx], "count": len(values),
                    "nonfinite": len(values) - len(finite), "downsampled": len(idx) < len(xs)}
            with self._lock:
                rs.sampled = {k: v for k, v in rs.sampled.items() if v[0] == rs.version}
                rs.sampled[(key, points)] = (version, item)
            out[key] = item
        return out
