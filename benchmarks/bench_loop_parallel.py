"""Candidates decided per hour by `assay loop run --parallel N` vs one at a time (goal: >= 0.8 x N).

A real loop in a fresh git repository: the params proposer edits config.yaml, each candidate is
committed in its own worktree and measured by real runs (subprocess, run folder, record, SQLite
index) of a script that spins a pure-Python loop for about `--work` CPU seconds. Its score never
changes, so every candidate is a discard after one run and both loops do the same work per
candidate; the figure is the throughput of decisions, worktrees and git included. Each run is one
single-threaded process, so N slots want N idle cores. Two more columns tell the loop's own
overhead from the machine's: "slots busy" is the share of slot-time that runs occupied (their wall
time over slots x the loop's wall; the rest is the loop's proposing, git, decisions and process
starts), "cores busy" how many cores the runs' processes used (their CPU seconds over the loop's
wall). Slots busy but cores idle means other load on the machine (see the load average). The knob is a float (`interval`): proposing costs what it
costs a user, not what a huge categorical would cost Optuna.

    python benchmarks/bench_loop_parallel.py [--candidates 8] [--work 2] [--parallel 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from assay.config import dump_yaml  # noqa: E402
from assay.lab import init_lab  # noqa: E402

SCRIPT = """
import time, assay
p = assay.params()
end = time.process_time() + p["work"]  # CPU time, not wall time: contention shows as slower candidates
x = 0
while time.process_time() < end:
    for i in range(10_000):
        x += i * i
print("score:", 1.0)
"""
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@b"}


def loop_wall(root: Path, parallel: int, candidates: int, work: float) -> tuple[float, int, float, float]:
    """(wall seconds of `loop run`, candidates decided, wall and CPU seconds of its runs) in a fresh lab."""
    from assay import loop

    lab, _ = init_lab(root / f"lab{parallel}")
    exp = lab.experiment_dir("cpu")
    exp.mkdir(parents=True)
    (exp / "train.py").write_text(SCRIPT)
    (exp / "config.yaml").write_text(dump_yaml({"seed": 0, "knob": 0, "work": work}))
    (exp / "experiment.yaml").write_text(dump_yaml({"hypothesis": "bench", "metric": {"name": "score", "goal": "max"},
                                                    "entry": "train.py", "timeout": "10m"}))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "baseline"]):
        subprocess.run(["git", *args], cwd=lab.root, check=True, env=GIT_ENV)
    loop.start("cpu", tag="bench", edit=["config.yaml"], protect=["train.py"], decision="greedy", lab=lab)
    since, t0 = time.time(), time.perf_counter()
    out = loop.run("bench", parallel=parallel, propose="params", space=["knob=interval(0,1)"],
                   max_iterations=candidates, plateau=None, lab=lab)
    wall = time.perf_counter() - t0
    decided = len(out.lines)
    if decided != candidates:
        raise SystemExit(f"parallel={parallel}: {decided} of {candidates} candidates decided ({out.stopped}): {out.lines[-1:]}")
    return (wall, decided, *_run_seconds(exp / "runs", since))


def _run_seconds(runs: Path, since: float) -> tuple[float, float]:
    """(wall, CPU) seconds of the runs started after `since` (the loop's; not `loop start`'s baseline)."""
    from assay.store.records import read_record

    recs = [r for p in runs.iterdir() if (p / "run.json").is_file() and (r := read_record(p)).get("started", 0) >= since]
    return (sum(r.get("duration") or 0.0 for r in recs),
            sum((r.get("cost") or {}).get("cpu_hours", 0.0) * 3600 for r in recs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ncpu = os.cpu_count() or 1
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--work", type=float, default=2.0, help="CPU seconds per run")
    ap.add_argument("--parallel", type=int, default=min(2, ncpu))
    args = ap.parse_args()
    n = args.parallel
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        one = loop_wall(Path(tmp), 1, args.candidates, args.work)
        load.append(os.getloadavg()[0])
        many = loop_wall(Path(tmp), n, args.candidates, args.work)
        load.append(os.getloadavg()[0])
    per_hour = {1: one[1] / one[0] * 3600, n: many[1] / many[0] * 3600}
    ratio = per_hour[n] / per_hour[1]
    print(f"{args.candidates} CPU-bound candidates of {args.work}s CPU each (one run each), {ncpu} CPU cores")
    print(f"load average (1 min) before, between, after: {', '.join(f'{x:.2f}' for x in load)}")
    print(f"{'slots':>5}  {'wall':>7}  {'per candidate':>13}  {'decided/hour':>12}  {'slots busy':>10}  {'cores busy':>10}")
    for k, (w, d, run_wall, cpu) in ((1, one), (n, many)):
        print(f"{k:>5}  {w:>6.1f}s  {w / d:>12.2f}s  {per_hour[k]:>12.0f}  {run_wall / (k * w):>10.0%}  {cpu / w:>10.2f}")
    print(f"ratio {n} slots / 1 slot: {ratio:.2f}x (target >= {0.8 * n:.1f}x = 0.8 x {n}): "
          f"{'ok' if ratio >= 0.8 * n else 'below target'}")


if __name__ == "__main__":
    main()
