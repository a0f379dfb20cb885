"""Run every benchmark in this folder, one after another, and collect their tables in one file.

    python benchmarks/run_all.py [--quick] [--out benchmarks/out/latest.md]

Every `bench_*.py` present is run (new ones too, with their own defaults). The arguments below
keep the whole set under 15 minutes on 2 cores once MLflow's 10,000-run query database is cached
(building it through MLflow's client takes ~5-15 minutes the first time; --quick uses 2,000
runs). Peers (mlflow, trackio) come from the `bench` extra: pip install -e ".[bench]"; a missing
peer is reported, not fatal. Output: each table printed as it comes, and all of them in --out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402

# Per-script arguments sized for the 15-minute budget; scripts not listed run with their defaults.
ARGS: dict[str, list[str]] = {
    "bench_startup.py": ["--reps", "7"],
    "bench_logging.py": ["--reps", "5", "--cap-log-metric", "500", "--cap-log-batch", "50000", "--cap-trackio", "50000"],
    "bench_run_overhead.py": ["--reps", "7"],
    "bench_queries.py": ["--runs", "10000", "--reps", "5"],
    "bench_concurrency.py": ["--writers", "32", "--points", "1000", "--mlflow-points", "5"],
    "bench_sweep_parallel.py": ["--trials", "8", "--work", "1.0"],
    "bench_loop_decisions.py": ["--sims", "200"],
    "bench_dashboard.py": ["--reps", "5"],
}
QUICK: dict[str, list[str]] = {
    "bench_startup.py": ["--reps", "5"],
    "bench_logging.py": ["--points", "10000", "100000", "--reps", "5", "--cap-log-metric", "200",
                         "--cap-log-batch", "10000", "--cap-trackio", "10000"],
    "bench_run_overhead.py": ["--reps", "5"],
    "bench_queries.py": ["--runs", "2000", "--reps", "5"],
    "bench_concurrency.py": ["--writers", "32", "--points", "200", "--mlflow-points", "2"],
    "bench_sweep_parallel.py": ["--trials", "4", "--work", "0.5"],
    "bench_loop_decisions.py": ["--sims", "50"],
    "bench_dashboard.py": ["--runs", "2000", "--points", "20000", "--reps", "3"],
}
ORDER = ["bench_startup.py", "bench_logging.py", "bench_run_overhead.py", "bench_queries.py", "bench_concurrency.py"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes), for a smoke check")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "latest.md")
    ap.add_argument("--timeout", type=float, default=900, help="seconds allowed to one script")
    ap.add_argument("only", nargs="*", help="run only these scripts (names or stems)")
    args = ap.parse_args()
    found = sorted(p.name for p in HERE.glob("bench_*.py"))
    scripts = [s for s in ORDER if s in found] + [s for s in found if s not in ORDER]
    if args.only:
        scripts = [s for s in scripts if s in args.only or s.removesuffix(".py") in args.only]
    plan = QUICK if args.quick else ARGS
    started = time.perf_counter()
    parts = [f"# assay benchmarks{' (quick)' if args.quick else ''}", "", f"Machine: {machine()}", ""]
    failures = []
    for name in scripts:
        cmd = [sys.executable, str(HERE / name), *plan.get(name, [])]
        print(f"\n## {name}  ({' '.join(cmd[2:]) or 'defaults'})", flush=True)
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            out, ok = proc.stdout, proc.returncode == 0
            err = proc.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            ok, err = False, f"timed out after {args.timeout:.0f} s"
        took = time.perf_counter() - t
        print(out, flush=True)
        parts += [f"## {name}", "", f"`python benchmarks/{name} {' '.join(plan.get(name, []))}` ({took:.0f} s)", "", out]
        if not ok:
            failures.append(name)
            tail = "\n".join(err.strip().splitlines()[-15:])
            print(f"FAILED: {name}\n{tail}", flush=True)
            parts += [f"FAILED: {name}", "", "```", tail, "```", ""]
    total = time.perf_counter() - started
    parts.append(f"Total: {total / 60:.1f} minutes for {len(scripts)} scripts"
                 + (f"; failed: {', '.join(failures)}" if failures else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts) + "\n")
    print(f"\nTotal {total / 60:.1f} min; tables written to {args.out}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
