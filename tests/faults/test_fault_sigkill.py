"""SIGKILL `assay run` at random points (seeded): afterwards the store tells the truth.

For each seed a real `assay run` subprocess is killed after a random delay drawn over its whole life
(start-up, folder and record creation, the script logging, the final record). Then:
- `assay status` reports the run lost, or it finished and its record is complete;
- no run stays 'running', and no half-written temp file is left;
- the finished runs made before are byte-for-byte unchanged;
- the metrics a killed run kept are a clean prefix of what the script logged;
- `assay reindex` from scratch rebuilds an index equal to the one left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assay.runner import RunSpec, run_experiment
from assay.store import records
from tests.conftest import ASSAY, run_cli

SCRIPT = """
import time
import assay
for i in range(40):
    assay.log({"val_bpb": 2 - i / 100, "loss": i}, step=i)
    if i % 10 == 0:
        print(f"loss: {i}", flush=True)
        assay.init().flush()  # reach the file mid-run, as a long run does every second
    time.sleep(0.01)
print("val_bpb:", 2 - 39 / 100)
"""
TABLES = ("runs", "params", "metrics", "tags")
SEEDS = [int(s) for s in os.environ.get("ASSAY_FAULT_SEEDS", "1,2,3,4,5,6,7,8").split(",")]


def _tables(lab) -> dict[str, list[tuple]]:
    with lab.index() as index:
        return {t: sorted(index.db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def _drop_index(lab) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(lab.index_path) + suffix).unlink(missing_ok=True)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def killable(lab, make_experiment):
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.1})
    done = run_experiment(lab, RunSpec("exp", "before", ["lr=0.2"], repeat=2))
    assert [r.status for r in done] == ["ok", "ok"]
    return {r.path: _snapshot(r.path) for r in done}


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_a_random_point_leaves_a_truthful_store(lab, killable, seed):
    rng = random.Random(seed)
    delay = rng.uniform(0.0, 1.2)  # the whole life of the run on a loaded 2-core machine is ~0.6-1 s
    proc = subprocess.Popen([*ASSAY, "run", "exp", f"kill{seed}"], cwd=lab.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=delay)  # the random kill point (it may finish first: that is a valid outcome)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed = proc.returncode == -signal.SIGKILL
    assert killed or proc.returncode == 0, proc.stderr.read()

    status = run_cli("status", "--json", cwd=lab.root)
    assert status.returncode == 0, status.stderr
    reported = json.loads(status.stdout)
    assert reported["running"] == []

    runs_dir = lab.experiment_dir("exp") / "runs"
    mine = [p for p in records.run_folders(runs_dir) if p.name.endswith(f"kill{seed}")]
    assert len(mine) <= 1
    lost_ids = {r["id"] for r in reported["lost"]}
    for folder in mine:
        assert not list(folder.glob(".*.tmp")), "a half-written record was left behind"
        assert (folder / "run.json").exists(), "a run folder appeared without its record"
        rec = json.loads((folder / "run.json").read_text())
        assert rec["status"] in ("ok", "lost"), rec["status"]
        assert (rec["status"] == "lost") == (rec["id"] in lost_ids)
        if rec["status"] == "ok":
            assert not killed or rec.get("ended"), "a killed run claims success without a final record"
            assert rec["metrics"]["val_bpb"]["count"] == 40 and rec["metrics"]["loss"]["last"] == 39
        series = rec.get("metrics", {}).get("val_bpb")
        if series:  # what survived is a clean prefix: step i holds 2 - i/100
            assert series["last"] == pytest.approx(2 - series["last_step"] / 100)
            assert series["count"] == series["last_step"] + 1

    for path, files in killable.items():
        assert _snapshot(path) == files, f"finished run {path.name} changed"

    before = _tables(lab)
    _drop_index(lab)
    res = run_cli("reindex", "--json", cwd=lab.root)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["problems"] == []
    assert _tables(lab) == before


def test_many_kills_in_a_row_then_one_reindex(lab, killable):
    """Several killed runs accumulate; one status + reindex sorts all of them out."""
    rng = random.Random(99)
    for i in range(4):
        proc = subprocess.Popen([*ASSAY, "run", "exp", f"burst{i}"], cwd=lab.root, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        folder = None
        while folder is None:  # kill only once the script is logging, so each run has something to keep
            assert time.monotonic() < deadline and proc.poll() is None
            hits = [p for p in (lab.experiment_dir("exp") / "runs").glob(f"*burst{i}") if (p / "metrics.jsonl").exists()
                    and (p / "metrics.jsonl").stat().st_size > 0]
            folder = hits[0] if hits else None
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.2))
        proc.kill()
        proc.wait(timeout=30)
    reported = json.loads(run_cli("status", "--json", cwd=lab.root).stdout)
    assert reported["running"] == []
    assert len({r["id"] for r in reported["lost"]}) == 4
    before = _tables(lab)
    _drop_index(lab)
    assert run_cli("reindex", cwd=lab.root).returncode == 0
    assert _tables(lab) == before
    for path, files in killable.items():
        assert _snapshot(path) == files
