"""Logging N metric points until they are persisted: assay vs MLflow (sqlite) and trackio.

Each measurement is a fresh Python process that sets its tracker up (untimed), then times
`log` x N (one point per call, as a training loop does) plus the call that makes the points
durable (assay.finish: fsync; mlflow.end_run; trackio.finish: its sender thread drains to SQLite).
Median of --reps processes.

MLflow's log_metric costs ~5 ms a point on SQLite, so 10,000 points take about a minute a
process: peers are run on at most --cap-* points and scaled linearly to N (marked with *).
Pass --full to run every tracker on every N (slow: hours for MLflow log_metric at 1M).

    python benchmarks/bench_logging.py [--points 10000 1000000] [--reps 5] [--full]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, fresh_json, have, machine, ms, ratio, table  # noqa: E402


def worker(kind: str, n: int, folder: Path) -> dict:
    """Runs in the fresh process: returns {"seconds": ...} for n points of `kind`."""
    if kind == "assay":
        import assay

        assay.init()  # attaches to ASSAY_RUN_DIR, as inside `assay run`
        t = time.perf_counter()
        for i in range(n):
            assay.log({"loss": i * 1e-3}, step=i)
        assay.finish()
        return {"seconds": time.perf_counter() - t}
    if kind in ("mlflow_log_metric", "mlflow_log_batch"):
        import logging

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        import mlflow
        from mlflow.entities import Metric

        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        mlflow.set_experiment("bench")
        run = mlflow.start_run()
        client = mlflow.MlflowClient()
        t = time.perf_counter()
        if kind == "mlflow_log_metric":
            for i in range(n):
                mlflow.log_metric("loss", i * 1e-3, step=i)
        else:
            now = int(time.time() * 1000)
            for start in range(0, n, 1000):  # MLflow's limit: 1,000 metrics per batch
                client.log_batch(run.info.run_id,
                                 metrics=[Metric("loss", i * 1e-3, now, i) for i in range(start, min(n, start + 1000))])
        mlflow.end_run()
        return {"seconds": time.perf_counter() - t}
    if kind == "trackio":
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            import trackio

            trackio.init(project="bench", name="r", auto_log_cpu=False, auto_log_gpu=False)
            t = time.perf_counter()
            for i in range(n):
                trackio.log({"loss": i * 1e-3}, step=i)
            trackio.finish()
            elapsed = time.perf_counter() - t
        return {"seconds": elapsed}
    raise SystemExit(f"unknown worker {kind}")


def measure(kind: str, n: int, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
            run_dir = Path(tmp, "run")
            run_dir.mkdir()
            env = {"ASSAY_RUN_DIR": str(run_dir), "TRACKIO_DIR": str(Path(tmp, "trackio")),
                   "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
            res = fresh_json([PY, __file__, "--worker", kind, "--n", str(n), "--dir", tmp], env=env)
            out.append(res["seconds"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cap-log-metric", type=int, default=1_000, help="most points MLflow log_metric logs per process")
    ap.add_argument("--cap-log-batch", type=int, default=100_000, help="most points MLflow log_batch logs per process")
    ap.add_argument("--cap-trackio", type=int, default=100_000, help="most points trackio logs per process")
    ap.add_argument("--full", action="store_true", help="no caps: every tracker logs every point")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, Path(args.dir))))
        return

    import statistics

    peers = [("MLflow log_metric", "mlflow_log_metric", args.cap_log_metric, "mlflow"),
             ("MLflow log_batch", "mlflow_log_batch", args.cap_log_batch, "mlflow"),
             ("trackio", "trackio", args.cap_trackio, "trackio")]
    rows = []
    notes = [machine(), f"median of {args.reps} fresh processes each; one point per call, "
             "timed from the first log call until the points are durable (assay: fsync at finish)"]
    for n in args.points:
        ours = statistics.median(measure("assay", n, args.reps))
        rows.append([f"{n:,}", "assay.log", ms(ours), f"{n / ours:,.0f}", "1.0x"])
        for label, kind, cap, dist in peers:
            if not have(dist):
                rows.append([f"{n:,}", label, "not installed", "-", "-"])
                continue
            k = n if args.full else min(n, cap)
            t = statistics.median(measure(kind, k, args.reps)) * n / k
            star = "" if k == n else "*"
            rows.append([f"{n:,}", label, ms(t) + star, f"{n / t:,.0f}{star}", ratio(t, ours)])
            if k != n:
                notes.append(f"* {label} at {n:,}: {k:,} points measured, scaled linearly to {n:,}")
    table("Logging points until persisted (lower time is better; ratio = peer time / assay time)",
          ["points", "tracker", "time", "points/s", "assay faster by"], rows, notes)


if __name__ == "__main__":
    main()
