"""Concurrent writers on one store: 32 processes at once, zero lock errors. assay vs MLflow (sqlite).

assay: 32 `assay run` processes start together on one lab, each logging --points points through
assay.log; every one must exit 0 with its run indexed, every point in its metrics file, and
no 'locked' in any output. MLflow: 32 Python processes start together on one sqlite store, each
start_run + log_metric x --mlflow-points + end_run; failures (MLflow's "database is locked") are
counted. Wall time is from the first start to the last exit.

    python benchmarks/bench_concurrency.py [--writers 32] [--points 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BIN, PY, have, machine, ms, table, wall  # noqa: E402

ASSAY_SCRIPT = """\
import assay
n = assay.params()["points"]
for i in range(n):
    assay.log({"loss": 1 / (i + 1), "val_bpb": 2 - i / n}, step=i)
"""
MLFLOW_SCRIPT = """\
import logging, sys
logging.getLogger("mlflow").setLevel(logging.ERROR)
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("bench")
with mlflow.start_run():
    for i in range(int(sys.argv[2])):
        mlflow.log_metric("loss", 1 / (i + 1), step=i)
"""


def launch_all(argvs: list[list[str]], cwd: Path) -> tuple[float, list[tuple[int, str]]]:
    t = time.perf_counter()
    procs = [subprocess.Popen(a, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for a in argvs]
    outs = [(p.wait(timeout=1800), p.stdout.read() if p.stdout else "") for p in procs]
    return time.perf_counter() - t, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=32)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--mlflow-points", type=int, default=20, help="log_metric calls per MLflow writer (~5 ms each)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        root = Path(tmp, "lab")
        wall([str(BIN / "assay"), "init", str(root)])
        exp = root / "experiments" / "conc"
        exp.mkdir(parents=True)
        (exp / "train.py").write_text(ASSAY_SCRIPT)
        (exp / "config.yaml").write_text(f"seed: 0\npoints: {args.points}\n")
        (exp / "experiment.yaml").write_text("hypothesis: many writers\nmetric: {name: val_bpb, goal: min}\n"
                                             "entry: train.py\ntimeout: 10m\n")
        took, outs = launch_all([[str(BIN / "assay"), "run", "conc", f"w{i}", f"seed={i}"]
                                 for i in range(args.writers)], root)
        failed = sum(rc != 0 for rc, _ in outs)
        locked = sum("locked" in out.lower() for _, out in outs)
        listing = json.loads(subprocess.run([str(BIN / "assay"), "runs", "conc", "--json", "--limit", "0"], cwd=root,
                                            capture_output=True, text=True, check=True).stdout)
        complete = sum(r["status"] == "ok" and r["metrics"]["loss"]["count"] == args.points for r in listing["runs"])
        rows.append(["assay run", args.writers, f"{args.points:,} (assay.log)", ms(took), failed, locked,
                     f"{complete}/{args.writers}"])
        if have("mlflow"):
            script = Path(tmp, "mlflow_writer.py")
            script.write_text(MLFLOW_SCRIPT)
            uri = f"sqlite:///{tmp}/mlflow.db"
            wall([PY, str(script), uri, "1"])  # create the schema first: concurrent creation is a known failure
            took, outs = launch_all([[PY, str(script), uri, str(args.mlflow_points)] for _ in range(args.writers)],
                                    Path(tmp))
            failed = sum(rc != 0 for rc, _ in outs)
            locked = sum("locked" in out.lower() for _, out in outs)
            rows.append(["MLflow sqlite", args.writers, f"{args.mlflow_points:,} (log_metric)", ms(took), failed, locked,
                         f"{args.writers - failed}/{args.writers}"])
    table(f"{args.writers} concurrent writers on one store", ["writer", "processes", "points each", "wall (all)",
                                                              "failed", "'locked' errors", "complete runs"], rows,
          [machine(), "all processes started at once; wall = first start to last exit; "
           "target: zero lock errors and every run complete"])


if __name__ == "__main__":
    main()
