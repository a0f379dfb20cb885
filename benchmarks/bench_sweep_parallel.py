"""Speed-up of a sweep on N local slots vs one slot, with CPU-bound trials (goal: >= 0.9 x N).

Each trial is a real run (subprocess, run folder, record, SQLite index) of a script that spins a
pure-Python loop for about `--work` seconds. The same grid is swept with 1 slot, then with each
slot count up to the CPU count; the table gives wall time, speed-up and efficiency (speed-up / N).
Other load on the machine lowers the figures: run it on an idle machine.

    python benchmarks/bench_sweep_parallel.py [--trials 8] [--work 1.5] [--slots 1,2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from assay.config import dump_yaml  # noqa: E402
from assay.lab import init_lab  # noqa: E402
from assay.sweep.driver import SweepConfig, run_sweep, start_sweep  # noqa: E402
from assay.sweep.space import space_from_args  # noqa: E402

SCRIPT = """
import time, assay
p = assay.params()
end = time.process_time() + p["work"]  # CPU time, not wall time: contention shows as slower trials
x = 0
while time.process_time() < end:
    for i in range(10_000):
        x += i * i
assay.log({"score": p["trial"]}, step=0)
"""


def sweep_wall(root: Path, slots: int, trials: int, work: float) -> float:
    lab, _ = init_lab(root / f"lab{slots}")
    exp = lab.experiment_dir("cpu")
    exp.mkdir(parents=True)
    (exp / "train.py").write_text(SCRIPT)
    (exp / "config.yaml").write_text(dump_yaml({"seed": 0, "trial": 0, "work": work}))
    (exp / "experiment.yaml").write_text(dump_yaml({"hypothesis": "bench", "metric": {"name": "score", "goal": "max"},
                                                    "entry": "train.py", "timeout": "10m"}))
    cfg = SweepConfig("cpu", space_from_args([f"trial=range(0,{trials})"]), parallel=slots)
    sf = start_sweep(lab, cfg)
    t0 = time.perf_counter()
    outcome = run_sweep(lab, sf, cfg)
    wall = time.perf_counter() - t0
    bad = [t for t in outcome.trials if t.status != "ok"]
    if bad:
        raise SystemExit(f"{len(bad)} trials did not finish ok: {bad[0]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ncpu = os.cpu_count() or 1
    ap.add_argument("--trials", type=int, default=4 * ncpu)
    ap.add_argument("--work", type=float, default=1.5, help="CPU seconds per trial")
    ap.add_argument("--slots", default=",".join(str(n) for n in range(1, ncpu + 1)))
    args = ap.parse_args()
    slot_counts = sorted({1, *(int(s) for s in args.slots.split(","))})
    with tempfile.TemporaryDirectory() as tmp:
        walls = {n: sweep_wall(Path(tmp), n, args.trials, args.work) for n in slot_counts}
    ideal = args.trials * args.work
    print(f"{args.trials} CPU-bound trials of {args.work}s CPU each, {ncpu} CPU cores")
    print(f"{'slots':>5}  {'wall':>7}  {'per trial':>9}  {'speed-up':>8}  {'efficiency':>10}  goal")
    for n in slot_counts:
        speed = walls[1] / walls[n]
        eff = speed / n
        print(f"{n:>5}  {walls[n]:>6.1f}s  {walls[n] / args.trials * n:>8.2f}s  {speed:>7.2f}x  {eff:>9.0%}  "
              f"{'ok' if eff >= 0.9 else 'below 0.9'}")
    print(f"(sequential overhead per trial: {walls[1] / args.trials - args.work:.2f}s over {ideal / args.trials:.2f}s of work)")


if __name__ == "__main__":
    main()
