"""Output with no newline: `assay run` on a script that writes N MB as one line, vs the same
script with its output sent to a file by the shell.

Every byte goes to the run's log; a line is parsed for metrics only up to 1 MiB, so reading stays
linear in the output's size (before, 32 MB on one line took 22 s). The time per MB should stay
flat as the size grows.

    python benchmarks/bench_long_output.py [--sizes 1,8,32] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BIN, PY, machine, ms, table, wall  # noqa: E402

SCRIPT = """\
import os, sys
size = int(os.environ["BENCH_MB"]) << 20
block = b"x" * (1 << 20)
for _ in range(size >> 20):
    sys.stdout.buffer.write(block)
sys.stdout.buffer.write(b"\\nval_bpb: 1.0\\n")
"""


def make_lab(root: Path) -> Path:
    wall([str(BIN / "assay"), "init", str(root)])
    exp = root / "experiments" / "bench"
    exp.mkdir(parents=True)
    (exp / "train.py").write_text(SCRIPT)
    (exp / "config.yaml").write_text("seed: 0\n")
    (exp / "experiment.yaml").write_text("hypothesis: long lines\nmetric: {name: val_bpb, goal: min}\n"
                                         "entry: train.py\ntimeout: 600s\n")
    return exp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,8,32", help="MB written on one line, comma-separated")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        root = Path(tmp, "lab")
        exp = make_lab(root)
        for mb in (int(s) for s in args.sizes.split(",")):
            env = {"BENCH_MB": str(mb)}
            bare = statistics.median(wall(["sh", "-c", f"{PY} train.py > {tmp}/out.log"], cwd=exp, env=env)
                                     for _ in range(args.reps))
            ours = statistics.median(wall([str(BIN / "assay"), "run", "bench", f"mb{mb}"], cwd=root, env=env)
                                     for _ in range(args.reps))
            rows.append([f"{mb} MB", ms(bare), ms(ours), ms(ours - bare), ms((ours - bare) / mb)])
    table("One line of N MB (no newline) through `assay run` vs the shell's redirect to a file",
          ["output", "python train.py > file", "assay run", "assay's cost", "cost per MB"], rows,
          [machine(), f"median of {args.reps} fresh processes; assay's cost includes its fixed start-up "
           "(about 135 ms, see bench_run_overhead.py)",
           "the log keeps every byte; the metric after the long line is captured"])


if __name__ == "__main__":
    main()
