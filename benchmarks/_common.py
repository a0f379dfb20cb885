"""Shared helpers for the benchmark scripts: fresh-process timing, medians, tables, versions.

Benchmarks are scripts, not tests: each prints a Markdown table (assay, the peer, the ratio)
measured in one invocation on one machine. Nothing here imports assay, mlflow or trackio, so the
start-up figures are not disturbed by the harness.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PY = sys.executable
CACHE = Path(os.environ.get("ASSAY_BENCH_CACHE", Path.home() / ".cache" / "assay-bench"))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object], reps: int = 5, warmup: int = 1) -> float:
    """Median wall seconds of fn() over `reps` calls (after `warmup` untimed calls)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return median(out)


def timed_within(fn: Callable[[], object], reps: int = 5, budget: float = 60.0) -> tuple[float, int]:
    """Like timed(), for calls that may be slow: a first call over 1 s counts as a rep (no separate
    warm-up), and reps stop once `budget` seconds are spent. Returns (median, reps done)."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    out = [first] if first > 1.0 else []
    spent = first
    while len(out) < reps and (spent < budget or not out):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        spent += out[-1]
    return median(out), len(out)


def wall(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> float:
    """Wall seconds of one fresh process (it must exit 0)."""
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def fresh_json(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 900) -> dict:
    """Run a fresh process that prints one JSON object as its last stdout line; return it."""
    proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds:,.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def ratio(peer: float | None, ours: float | None) -> str:
    """How many times faster assay is (peer time / assay time)."""
    if not peer or not ours:
        return "-"
    r = peer / ours
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x"


def table(title: str, headers: list[str], rows: list[list[str]], notes: Sequence[str] = ()) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [f"### {title}", "", line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    out += [""] + [f"- {n}" for n in notes] if notes else []
    text = "\n".join(out) + "\n"
    print(text, flush=True)
    return text


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def have(dist: str) -> bool:
    return version(dist) != "not installed"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; Python {platform.python_version()}; "
            f"assay {commit or '?'}; mlflow {version('mlflow')}; trackio {version('trackio')}; "
            f"{time.strftime('%Y-%m-%d %H:%M')}")
