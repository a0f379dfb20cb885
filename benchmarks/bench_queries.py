"""Queries over 10,000 runs x 20 params x 20 metrics: assay's index vs MLflow search_runs (sqlite).

The same seeded data goes into both. assay's index is built with Index.rebuild (what `assay
reindex` does after reading the folders); MLflow's with its client (create_run, log_batch,
set_terminated: ~30 ms a run, so 10,000 runs take ~5 minutes; the database is cached under
~/.cache/assay-bench and reused). Queries are timed in-process, warm, median of --reps; the
`runs` listing is also timed as a fresh CLI process (`assay runs` vs `mlflow runs list`), and so
is the table of every run (`assay runs --limit 0`; `mlflow runs list` prints every run too).

    python benchmarks/bench_queries.py [--runs 10000] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BIN, CACHE, have, machine, ms, ratio, table, timed, timed_within, version, wall  # noqa: E402

N_PARAMS = N_METRICS = 20
LRS = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]


def dataset(n: int) -> list[dict]:
    r = random.Random(0)
    t0 = 1.7e9
    out = []
    for i in range(n):
        params = {"p0": LRS[i % len(LRS)], **{f"p{j}": round(r.random(), 4) for j in range(1, N_PARAMS)}}
        metrics = {f"m{j}": r.random() for j in range(N_METRICS)}
        out.append({"i": i, "started": t0 + i, "params": params, "metrics": metrics})
    return out


def build_assay(root: Path, data: list[dict]):  # noqa: ANN201 - returns a Lab
    from assay.lab import init_lab

    lab, _ = init_lab(root)
    exp = lab.experiment_dir("bench")
    exp.mkdir(parents=True)
    (exp / "train.py").write_text("print('m0: 1')\n")
    (exp / "config.yaml").write_text("".join(f"p{j}: 0.0\n" for j in range(N_PARAMS)))
    (exp / "experiment.yaml").write_text("hypothesis: queries\nmetric: {name: m0, goal: max}\nentry: train.py\n")
    rows = []
    for d in data:
        folder = f"2024-01-01T00-00-00-run{d['i']:05d}"
        rows.append((exp / "runs" / folder, {
            "id": f"bench/{folder}", "experiment": "bench", "desc": f"run{d['i']}", "status": "ok",
            "started": d["started"], "ended": d["started"] + 60, "duration": 60.0, "seed": d["i"],
            "primary_metric": "m0", "params": d["params"],
            "metrics": {k: {"last": v, "best": v, "best_step": 9, "last_step": 9, "count": 10}
                        for k, v in d["metrics"].items()}}, False))
    with lab.index() as index:
        index.rebuild(rows)
    return lab


def build_mlflow(db: Path, data: list[dict]) -> float:
    """Log the data through MLflow's client into `db`; returns the seconds it took."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    tmp = db.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    client = MlflowClient(f"sqlite:///{tmp}")
    eid = client.create_experiment("bench")
    t = time.perf_counter()
    for d in data:
        ms_ = int(d["started"] * 1000)
        run = client.create_run(eid, start_time=ms_, run_name=f"run{d['i']}")
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, ms_, 9) for k, v in d["metrics"].items()],
                         params=[Param(k, str(v)) for k, v in d["params"].items()])
        client.set_terminated(run.info.run_id, end_time=ms_ + 60_000)
        if d["i"] % 1000 == 999:
            print(f"  mlflow: {d['i'] + 1:,} runs logged ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t
    tmp.replace(db)
    return elapsed


def mlflow_compare(client, eid: str) -> dict:  # noqa: ANN001 - what a user does: fetch all, group in Python
    runs, token = [], None
    while True:
        page = client.search_runs([eid], max_results=5000, page_token=token)
        runs += page
        token = page.token
        if not token:
            break
    groups: dict[str, list[float]] = {}
    for r in runs:
        if r.info.status == "FINISHED" and "m0" in r.data.metrics:
            groups.setdefault(r.data.params.get("p0"), []).append(r.data.metrics["m0"])
    return {k: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else None, len(v)) for k, v in groups.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    data = dataset(args.runs)
    notes = [machine(), f"{args.runs:,} runs x {N_PARAMS} params x {N_METRICS} metrics, the same seeded values in both; "
             f"in-process API calls, warm, median of {args.reps} after one warm-up"]
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        t = time.perf_counter()
        lab = build_assay(Path(tmp, "lab"), data)
        notes.append(f"assay index built in {time.perf_counter() - t:.1f} s (Index.rebuild, one transaction)")
        from assay.store.query import compare, list_runs

        page, filt = "runs table (newest 20)", "filter m1>0.5 and m2<0.3 (first 20)"
        ours = {  # the same work as search_runs: a page of runs with params and metrics, no total
            page: lambda: list_runs(lab, "bench", limit=20, count=False),
            filt: lambda: list_runs(lab, "bench", where="m1>0.5 and m2<0.3", limit=20, count=False),
            "top-10 by m0": lambda: list_runs(lab, "bench", sort="m0", limit=10, count=False),
            "compare: mean/std of m0 by p0": lambda: compare(lab, "bench", ["p0"], metric="m0"),
            # what `assay runs` does: also count every match for "N more" (MLflow has no total)
            f"{page} + total": lambda: list_runs(lab, "bench", limit=20),
            f"{filt} + total": lambda: list_runs(lab, "bench", where="m1>0.5 and m2<0.3", limit=20),
        }
        top = [r["metrics"]["m0"]["last"] for r in list_runs(lab, "bench", sort="m0", limit=10)[0]]
        ours_t = {k: timed(f, args.reps) for k, f in ours.items()}
        cli_ours = statistics.median(wall([str(BIN / "assay"), "runs", "bench"], cwd=lab.root) for _ in range(args.reps))
        # every run as a table: the column choice once compared each row with every other (113 s at 10,000)
        cli_all, _ = timed_within(lambda: wall([str(BIN / "assay"), "runs", "bench", "--limit", "0"], cwd=lab.root),
                                  args.reps, budget=90)

        peer_t: dict[str, float] = {}
        cli_peer = None
        if have("mlflow"):
            import logging

            logging.getLogger("mlflow").setLevel(logging.ERROR)
            from mlflow.tracking import MlflowClient

            CACHE.mkdir(parents=True, exist_ok=True)
            db = CACHE / f"mlflow-{args.runs}x{N_PARAMS}x{N_METRICS}-mlflow{version('mlflow')}.db"
            if db.exists():
                notes.append(f"MLflow data: cached {db}")
            else:
                took = build_mlflow(db, data)
                notes.append(f"MLflow data logged through its client in {took:,.0f} s (cached at {db})")
            work = Path(tmp, "mlflow.db")
            shutil.copy(db, work)
            uri = f"sqlite:///{work}"
            client = MlflowClient(uri)
            eid = client.get_experiment_by_name("bench").experiment_id
            peer = {
                "runs table (newest 20)": lambda: client.search_runs([eid], max_results=20),
                "filter m1>0.5 and m2<0.3 (first 20)": lambda: client.search_runs(
                    [eid], "metrics.m1 > 0.5 and metrics.m2 < 0.3", max_results=20),
                "top-10 by m0": lambda: client.search_runs([eid], order_by=["metrics.m0 DESC"], max_results=10),
                "compare: mean/std of m0 by p0": lambda: mlflow_compare(client, eid),
            }
            theirs = [r.data.metrics["m0"] for r in peer["top-10 by m0"]()]
            assert theirs == top, "assay and MLflow disagree on the top-10"
            for k, f in peer.items():
                peer_t[k], done = timed_within(f, args.reps, budget=90)
                if done < args.reps:
                    notes.append(f"MLflow '{k}': {done} calls of {ms(peer_t[k])} each fit the 90 s budget "
                                 f"(median of {done}, not {args.reps})")
            env = {"MLFLOW_TRACKING_URI": uri}
            cli_peer, done = timed_within(lambda: wall([str(BIN / "mlflow"), "runs", "list", "--experiment-id", eid],
                                                       env=env), args.reps, budget=90)
            if done < args.reps:
                notes.append(f"`mlflow runs list`: median of {done} (90 s budget)")
            notes.append("MLflow has no group-by: compare = search_runs over every run (pages of 5,000) and grouping "
                         "in Python, as a user would; `mlflow runs list` prints every run, `assay runs` the newest 20")
            notes.append("'+ total' rows also count every matching run, as `assay runs` does for its 'N more' line; "
                         "search_runs returns no total, so they are set against the same MLflow page")
    for k in (page, filt):
        if k in peer_t:
            peer_t[f"{k} + total"] = peer_t[k]  # compared with MLflow's page, which counts nothing
    rows = [[k, ms(ours_t[k]), ms(peer_t.get(k)), ratio(peer_t.get(k), ours_t[k])] for k in ours]
    rows.append(["CLI listing, fresh process (wall)", ms(cli_ours), ms(cli_peer), ratio(cli_peer, cli_ours)])
    rows.append(["CLI listing of every run (`--limit 0`, table), fresh process (wall)", ms(cli_all), ms(cli_peer),
                 ratio(cli_peer, cli_all)])
    notes.append("targets: `assay runs` over 10,000 runs <= 200 ms; >= 20x MLflow search_runs")
    table(f"Queries over {args.runs:,} runs (lower is better)", ["query", "assay", "MLflow", "assay faster by"], rows,
          notes)


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    main()
