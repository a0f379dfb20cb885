"""Dashboard response times at scale: a runs table of 10,000 runs and a chart of 100,000 points.

Builds a lab with 10,000 run folders (run.json each, indexed in SQLite) and one run whose metrics
file holds 100,000 points, serves it with `assay ui`'s app on uvicorn (a real HTTP server on
127.0.0.1), and times the requests the pages make: median of --reps after one warm-up request,
except the cold chart request (the first read of the 100k-point file), timed once.

A second experiment, `cmp`, holds 20 configurations x 5 seeds of 10,000 points each, for the
compare view (mean curve and 95% band per configuration on a common grid, plus the compare and
verdict tables); its warm answer must stay under 300 ms.

    python benchmarks/bench_dashboard.py [--runs 10000] [--points 100000] [--reps 7] [--configs 20 --seeds 5 --curve 10000]

Peers are not measured here: MLflow's and trackio's UIs would need the same 10,000 runs logged
through their own trackers first (hours on MLflow's SQLite store, see bench_logging.py).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, ms, table  # noqa: E402


def build(root: Path, n_runs: int, n_points: int) -> tuple[object, str]:
    """A lab with `n_runs` finished runs of experiment `big` and one run of `n_points` points; returns (lab, long run id)."""
    from assay.config import dump_yaml
    from assay.lab import init_lab
    from assay.store import records

    lab, _ = init_lab(root)
    exp_dir = lab.experiment_dir("big")
    exp_dir.mkdir(parents=True)
    (exp_dir / "experiment.yaml").write_text(dump_yaml({"hypothesis": "scale", "metric": {"name": "val_loss", "goal": "min"},
                                                           "success": "val_loss <= 0.5"}))
    rng = random.Random(0)
    rows = []
    t0 = time.time() - n_runs * 60
    for i in range(n_runs):
        path = exp_dir / "runs" / f"2026-01-01T00-00-00-r{i:05d}"
        path.mkdir(parents=True)
        loss = rng.uniform(0.1, 2.0)
        record = {"record_version": 1, "id": records.run_id(path), "experiment": "big", "desc": f"r{i:05d}",
                  "status": "failed" if i % 17 == 0 else "ok", "started": t0 + i * 60, "duration": rng.uniform(10, 600),
                  "seed": i % 5, "primary_metric": "val_loss", "params": {"lr": 10 ** rng.uniform(-4, -1),
                  "batch": rng.choice([32, 64, 128, 256]), "seed": i % 5, "model": rng.choice(["mlp", "cnn", "vit"])},
                  "metrics": {k: {"last": v, "best": v * 0.9, "best_step": 9, "last_step": 10, "count": 11}
                              for k, v in (("val_loss", loss), ("train_loss", loss * 0.8), ("acc", 1 / (1 + loss)))},
                  "tags": {"kind": "sweep"}}
        (path / records.RECORD_FILE).write_text(json.dumps(record))  # no fsync per file: this is set-up, not measured
        rows.append((path, record, False))
    long = exp_dir / "runs" / "2026-01-02T00-00-00-long"
    long.mkdir()
    with (long / records.METRICS_FILE).open("w") as fh:
        for step in range(n_points):
            fh.write(f'{{"t":{t0 + step:.3f},"step":{step},"m":{{"loss":{2 / (1 + step / 1000) + rng.gauss(0, 0.02):.6f}}}}}\n')
    record = {"record_version": 1, "id": records.run_id(long), "experiment": "big", "desc": "long", "status": "ok",
              "started": time.time(), "duration": 3600.0, "params": {"lr": 1e-3, "batch": 64, "seed": 0, "model": "vit"},
              "primary_metric": "val_loss", "metrics": records.summarize(long, lambda k: "min")["metrics"]}
    records.write_record(long, records.RunRecord.from_dict(record))
    rows.append((long, record, False))
    with lab.index() as index:
        index.rebuild(rows)
    return lab, records.run_id(long)


def build_compare(root: Path, configs: int, seeds: int, points: int) -> object:
    """A second lab (so the first one's figures stay comparable) with experiment `cmp`: `configs`
    learning rates x `seeds` seeds, each run a `points`-step loss curve."""
    from assay.config import dump_yaml
    from assay.lab import init_lab
    from assay.store import records

    lab, _ = init_lab(root)
    exp_dir = lab.experiment_dir("cmp")  # type: ignore[attr-defined]
    exp_dir.mkdir(parents=True)
    (exp_dir / "experiment.yaml").write_text(dump_yaml({"hypothesis": "lr matters", "metric": {"name": "loss", "goal": "min"},
                                                        "success": "loss <= 0.5"}))
    rng = random.Random(1)
    rows = []
    for c in range(configs):
        lr = round(10 ** (-4 + 3 * c / max(1, configs - 1)), 6)
        for seed in range(seeds):
            path = exp_dir / "runs" / f"2026-01-03T00-00-00-c{c:02d}-s{seed}"
            path.mkdir(parents=True)
            with (path / records.METRICS_FILE).open("w") as fh:
                for step in range(points):
                    loss = (1 + c / configs) / (1 + step / 500) + rng.gauss(0, 0.02)
                    fh.write(f'{{"t":{step:.3f},"step":{step},"m":{{"loss":{loss:.6f}}}}}\n')
            record = {"record_version": 1, "id": records.run_id(path), "experiment": "cmp", "desc": f"c{c}-s{seed}",
                      "status": "ok", "started": time.time() + c * seeds + seed, "duration": 60.0, "seed": seed,
                      "params": {"lr": lr, "seed": seed}, "primary_metric": "loss",
                      "metrics": records.summarize(path, lambda k: "min")["metrics"]}
            records.write_record(path, records.RunRecord.from_dict(record))
            rows.append((path, record, False))
    with lab.index() as index:
        index.rebuild(rows)
    return lab


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} kB"


def serve(lab: object) -> tuple[str, object]:
    import uvicorn

    from assay.web.app import create_app
    from assay.web.server import LOOPBACK_NAMES

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(lab, allowed_hosts=LOOPBACK_NAMES), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--curve", type=int, default=10_000, help="points per run of the compare view")
    args = ap.parse_args()

    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        lab, long_id = build(Path(tmp) / "lab", args.runs, args.points)
        cmp_lab = build_compare(Path(tmp) / "cmp-lab", args.configs, args.seeds, args.curve)
        print(f"built {args.runs:,} runs + one of {args.points:,} points + {args.configs * args.seeds} of {args.curve:,} "
              f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        base, server = serve(lab)
        client = httpx.Client(base_url=base, timeout=120)
        exp, folder = long_id.split("/")
        series = f"/api/series?runs={long_id}&keys=loss&points=1000"

        def get(url: str) -> tuple[float, int]:
            t = time.perf_counter()
            r = client.get(url)
            elapsed = time.perf_counter() - t
            if r.status_code != 200:
                raise SystemExit(f"GET {url}: {r.status_code} {r.text[:300]}")
            return elapsed, len(r.content)

        cold, cold_size = get(series)
        rows = [[f"chart, {args.points:,} points -> 1,000 (LTTB), first request (parse)", ms(cold), _kb(cold_size)]]
        first, first_size = get("/api/experiments")  # the verdict over every run, then cached until one finishes
        rows.append([f"experiments page, first request (verdict over {args.runs:,} runs)", ms(first), _kb(first_size)])
        cases = [
            ("experiments page", "/api/experiments"),
            (f"runs table page 1 of {args.runs:,} (newest first, 50 rows)", f"/api/experiments/{exp}/runs?limit=50"),
            ("runs table sorted by a metric", f"/api/experiments/{exp}/runs?sort=val_loss&limit=50"),
            ("runs table filtered + sorted by a param", f"/api/experiments/{exp}/runs?where=lr<0.01 and status=ok&sort=params.batch&limit=50"),
            ("runs table, last page", f"/api/experiments/{exp}/runs?offset={args.runs - 50}&limit=50"),
            ("run page (record, log, diff, env)", f"/api/run/{exp}/{folder}"),
            (f"chart, {args.points:,} points -> 1,000, cached", series),
        ]
        for label, url in cases:
            get(url)
            times, size = zip(*(get(url) for _ in range(args.reps)))
            rows.append([label, ms(statistics.median(times)), _kb(size[0])])
        # A live run: 1,000 points appended between polls; only the new bytes are parsed.
        metrics = lab.experiment_dir(exp) / "runs" / folder / "metrics.jsonl"
        polls = []
        step = args.points
        for _ in range(args.reps):
            with metrics.open("a") as fh:
                for _ in range(1000):
                    fh.write(f'{{"t":0,"step":{step},"m":{{"loss":0.5}}}}\n')
                    step += 1
            polls.append(get(series)[0])
        rows.append(["live poll: +1,000 points appended, then the chart", ms(statistics.median(polls)), "-"])
        full = client.get(f"/api/series?runs={long_id}&keys=loss&points=10000")
        server.should_exit = True
        cmp_base, cmp_server = serve(cmp_lab)
        client = httpx.Client(base_url=cmp_base, timeout=120)
        url = "/api/experiments/cmp/compare?value=last"
        cold_cmp, _ = get(url)
        rows.append([f"compare view, first request ({args.configs * args.seeds} runs x {args.curve:,} points parsed)",
                     ms(cold_cmp), "-"])
        times, size = zip(*(get(url) for _ in range(args.reps)))
        rows.append([f"compare view, {args.configs} configurations x {args.seeds} seeds x {args.curve:,} points, warm",
                     ms(statistics.median(times)), _kb(size[0])])
        cmp_server.should_exit = True
        table(f"Dashboard API response times ({args.runs:,} runs; median of {args.reps})", ["request", "time", "response"], rows, [
            "HTTP requests to a real uvicorn server on 127.0.0.1 (httpx client, one connection)",
            f"for scale: the chart at its 10,000-point cap is {len(full.content) / 1024:.0f} kB; the raw "
            f"{args.points:,} points as JSON would be ~{len(json.dumps([[i, 0.123456] for i in range(args.points)])) / 2**20:.1f} MB",
            machine(),
        ])


if __name__ == "__main__":
    main()
