"""The index against real processes: concurrent writers, SIGKILL, reindex, versions, ignore."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.errors import StoreError
from assay.runner import RunSpec, run_experiment
from assay.store.query import compare, list_runs, reindex, running_and_lost, show_run
from tests.conftest import ASSAY, run_cli


def _table(lab, name):
    with lab.index() as index:
        return sorted(index.db.execute(f"SELECT * FROM {name}").fetchall(), key=repr)


def test_eight_concurrent_runs_share_one_lab_without_lock_errors(lab, make_experiment):
    make_experiment("import os\nprint('val_bpb:', os.environ['ASSAY_SEED'])\n", config={"seed": 0})
    procs = [subprocess.Popen([*ASSAY, "run", "exp", f"w{i}", f"seed={i}"], cwd=lab.root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert not any("locked" in o + e for o, e in outs)
    rows, total = list_runs(lab, "exp", limit=None)
    assert total == 8
    assert sorted(r["metrics"]["val_bpb"]["last"] for r in rows) == list(range(8))


def test_sigkill_of_assay_run_leaves_a_lost_run_that_status_reports(lab, make_experiment, tmp_path):
    started = tmp_path / "started"
    make_experiment(f"""
        import time
        print("loss: 1.0", flush=True)
        open({str(started)!r}, "w").close()
        time.sleep(600)
        """)
    proc = subprocess.Popen([*ASSAY, "run", "exp", "killed"], cwd=lab.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60

    def captured() -> bool:  # the script is up, and assay has recorded its pid and its first metric
        runs = list((lab.experiment_dir("exp") / "runs").glob("*/run.json"))
        metrics = runs[0].parent / "metrics.jsonl" if runs else None
        return bool(started.exists() and metrics and metrics.exists() and "loss" in metrics.read_text()
                    and "child_pid" in json.loads(runs[0].read_text()))

    while not captured():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    rows, _ = list_runs(lab, "exp")
    assert rows[0]["status"] == "lost"  # a listing already tells the truth
    res = running_and_lost(lab)
    assert [r["status"] for r in res["lost"]] == ["lost"] and not res["running"]
    rec = show_run(lab, "killed")
    assert rec["status"] == "lost"
    assert rec["metrics"]["loss"]["last"] == 1.0  # what was logged before the kill is kept
    assert "loss: 1.0" in rec["log_tail"]
    child = rec["child_pid"]  # the script died with its launcher (no orphaned training job)
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{child}/stat") as fh:
            if fh.read().split()[2] == "Z":
                break
        assert time.monotonic() < deadline, "the script outlived a SIGKILLed assay run"
        time.sleep(0.05)


def test_reindex_rebuilds_an_identical_index(lab, make_experiment):
    make_experiment("import assay\nfor i in range(5): assay.log({'val_bpb': 2 - i / 10, 'loss': i}, step=i)\n",
                    config={"seed": 0, "lr": 0.1})
    run_experiment(lab, RunSpec("exp", "a", ["lr=0.2"]))
    run_experiment(lab, RunSpec("exp", "b", ["lr=0.3"], repeat=2))
    before = {t: _table(lab, t) for t in ("runs", "params", "metrics", "tags")}
    lab.index_path.unlink()
    for suffix in ("-wal", "-shm"):
        p = lab.index_path.with_name(lab.index_path.name + suffix)
        if p.exists():
            p.unlink()
    assert reindex(lab)["runs"] == 3
    after = {t: _table(lab, t) for t in ("runs", "params", "metrics", "tags")}
    assert after == before


def test_reindex_reports_a_corrupt_record_and_keeps_the_rest(lab, make_experiment):
    make_experiment("print('val_bpb: 1')\n")
    (good,) = run_experiment(lab, RunSpec("exp", "good"))
    (bad,) = run_experiment(lab, RunSpec("exp", "bad"))
    (bad.path / "run.json").write_text('{"id": "exp/x", "status": ')
    res = reindex(lab)
    assert res["runs"] == 1 and res["problems"][0]["path"] == str(bad.path)
    assert [r["id"] for r in list_runs(lab)[0]] == [good.record["id"]]


def test_reindex_clears_the_staging_folder_of_a_launch_killed_before_its_script(lab, make_experiment):
    make_experiment("print('val_bpb: 1')\n")
    (good,) = run_experiment(lab, RunSpec("exp", "good"))
    staging = good.path.parent / ".new-killed"  # what a launch killed mid-creation leaves
    (staging / "logs").mkdir(parents=True)
    (staging / "run.json").write_text(json.dumps({**good.record, "id": "exp/never", "status": "running"}))
    os.utime(staging, (time.time() - 600, time.time() - 600))
    res = reindex(lab)
    assert res["runs"] == 1 and res["problems"] == []
    assert "removed 1 unfinished run folder" in res["warnings"][0]["warning"]
    assert not staging.exists() and good.path.exists()


def test_index_from_a_newer_assay_is_refused_then_rebuilt_with_force(lab, make_experiment):
    make_experiment("print('val_bpb: 1')\n")
    run_experiment(lab, RunSpec("exp", "a"))
    db = sqlite3.connect(lab.index_path)
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer assay"):
        list_runs(lab)
    assert reindex(lab, force=True)["runs"] == 1
    assert list_runs(lab)[1] == 1


def test_garbage_index_file_is_a_clear_error(lab):
    lab.index_path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        p = lab.index_path.with_name(lab.index_path.name + suffix)
        if p.exists():
            p.unlink()
    with pytest.raises(StoreError, match="reindex --force"):
        list_runs(lab)


def test_where_sort_and_ignore(lab, make_experiment):
    make_experiment("import assay\np = assay.params()\nassay.log({'val_bpb': p['lr'] * 10, 'acc': 1 - p['lr']})\n",
                    config={"seed": 0, "lr": 0.1, "opt": "sgd"})
    for lr, opt in [(0.1, "sgd"), (0.2, "adam"), (0.05, "adam")]:
        run_experiment(lab, RunSpec("exp", f"lr{lr}", [f"lr={lr}", f"opt={opt}"]))
    rows, total = list_runs(lab, "exp", where="val_bpb<1.5 and opt=adam")
    assert total == 1 and rows[0]["params"]["lr"] == 0.05
    rows, _ = list_runs(lab, "exp", sort="val_bpb")  # goal min: best (smallest) first
    assert [r["params"]["lr"] for r in rows] == [0.05, 0.1, 0.2]
    rows, _ = list_runs(lab, "exp", sort="acc")  # guessed goal max
    assert [r["params"]["lr"] for r in rows] == [0.05, 0.1, 0.2]
    rows, _ = list_runs(lab, "exp", sort="lr:desc", limit=2)
    assert [r["params"]["lr"] for r in rows] == [0.2, 0.1]
    assert [r["params"]["lr"] for r in list_runs(lab, "exp", sort="lr:desc", limit=2, offset=1)[0]] == [0.1, 0.05]
    from assay.journal import ignore_run

    ignore_run(Path(rows[0]["path"]), "bad loader")
    reindex(lab)
    assert list_runs(lab, "exp")[1] == 2 and list_runs(lab, "exp", include_ignored=True)[1] == 3


def test_compare_groups_repeats_into_mean_and_std(lab, make_experiment):
    make_experiment("""
        import assay
        p = assay.params()
        for epoch in range(4):
            assay.log({"val_f1": p["lr"] * epoch / 3 + p["seed"] / 100}, step=epoch)
        """, metric="val_f1", goal="max", config={"seed": 0, "lr": 0.1, "batch": 32})
    for lr in (0.1, 0.5):
        run_experiment(lab, RunSpec("exp", f"lr{lr}", [f"lr={lr}"], repeat=2))
    res = compare(lab, "exp", ["lr", "batch"])
    assert [(r["lr"], r["n"]) for r in res["rows"]] == [(0.1, 2), (0.5, 2)]
    best = res["rows"][res["best"]]
    assert best["lr"] == 0.5 and best["best_step"] is None and res["value"] == "last"  # the step only with value=best
    assert compare(lab, "exp", ["lr", "batch"], value="best")["rows"][1]["best_step"] == 3
    assert best["mean"] == pytest.approx(0.5 + 0.005) and best["std"] == pytest.approx(0.00707, rel=1e-2)
    # The gap to the best, with its interval: Welch's t over the two rows' seeds (df 2, t = 4.303).
    other = res["rows"][0]["vs_best"]
    assert best["vs_best"] is None and other["delta"] == pytest.approx(0.1 - 0.5)
    half = 4.303 * (0.01 / 2 ** 0.5) * (2 / 2) ** 0.5  # each row's std is 0.00707: se = sqrt(2 * 0.00707**2 / 2)
    assert other["ci"] == pytest.approx([-0.4 - half, -0.4 + half], rel=1e-3) and other["within_noise"] is False
    run_experiment(lab, RunSpec("exp", "lr0.49", ["lr=0.49"]))  # one run, a hair below the best: within noise
    near = next(r for r in compare(lab, "exp", ["lr"])["rows"] if r["lr"] == 0.49)["vs_best"]
    assert near["within_noise"] is True and near["ci"][0] < near["delta"] < 0 < near["ci"][1]


def test_cli_json_outputs_are_strict_json(lab, make_experiment, cli):
    make_experiment("print('val_bpb: nan')\n")
    assert cli("run", "exp", "nanrun").returncode == 1  # a NaN run ends the command with 1 (README, "Exit codes")
    out = cli("runs", "exp", "--json")
    data = json.loads(out.stdout)
    assert data["total"] == 1 and data["runs"][0]["status"] == "nan"
    shown = json.loads(cli("show", "nanrun", "--json").stdout)
    assert shown["metrics"]["val_bpb"]["last"] == "nan"
    assert sys.executable


def test_ctrl_c_stops_the_script_records_interrupted_and_exits_130(lab, make_experiment, tmp_path):
    started = tmp_path / "started"
    make_experiment(f"""
        import time
        print("val_bpb: 3.0", flush=True)
        open({str(started)!r}, "w").close()
        try:
            time.sleep(600)
        except KeyboardInterrupt:
            print("caught ctrl-c, saving", flush=True)
            raise
        """)
    proc = subprocess.Popen([*ASSAY, "run", "exp", "stopme", "--repeat", "3"], cwd=lab.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    rows, total = list_runs(lab, "exp")
    assert total == 1  # the remaining repeats were not started
    rec = show_run(lab, rows[0]["id"])
    assert rec["status"] == "interrupted"
    assert "caught ctrl-c, saving" in rec["log_tail"]  # the script saw a Ctrl-C and could clean up


def test_follow_streams_output_and_still_logs_it(lab, make_experiment, cli):
    make_experiment("print('hello from the script')\nprint('val_bpb: 1.5')\n")
    out = cli("run", "exp", "loud", "--follow")
    assert "hello from the script" in out.stdout
    quiet = cli("run", "exp", "quiet")
    assert "hello from the script" not in quiet.stdout and len(quiet.stdout.splitlines()) == 1
    rows, _ = list_runs(lab, "exp")
    for r in rows:
        assert "hello from the script" in Path(r["path"], "logs", "output.log").read_text()


def test_the_kept_connection_follows_a_replaced_index_and_stays_in_its_thread(lab, make_experiment):
    import threading

    from assay.store.index import shared_index

    make_experiment("print('val_bpb: 1')\n")
    (a,) = run_experiment(lab, RunSpec("exp", "a"))
    with shared_index(lab.index_path, experiments_dir=lab.experiments_dir) as first:
        pass
    with shared_index(lab.index_path, experiments_dir=lab.experiments_dir) as again:
        assert again is first  # kept between calls
    other: list = []
    t = threading.Thread(target=lambda: other.append(list_runs(lab)[0]))
    t.start()
    t.join()
    assert [r["id"] for r in other[0]] == [a.record["id"]]  # another thread opened its own
    with shared_index(lab.index_path, experiments_dir=lab.experiments_dir) as mine:
        assert mine is first

    for suffix in ("", "-wal", "-shm"):  # the index is deleted, and another process rebuilds it
        lab.index_path.with_name(lab.index_path.name + suffix).unlink(missing_ok=True)
    res = run_cli("reindex", "--json", cwd=lab.root)
    assert res.returncode == 0, res.stderr
    (b,) = run_experiment(lab, RunSpec("exp", "b"))
    with shared_index(lab.index_path, experiments_dir=lab.experiments_dir) as fresh:
        assert fresh is not first
    assert {r["id"] for r in list_runs(lab)[0]} == {a.record["id"], b.record["id"]}

    with lab.index() as index:  # damage the schema: the kept connection is dropped with a clear error
        index.db.execute("DROP TABLE params")
    with pytest.raises(StoreError, match="unreadable"):
        list_runs(lab)
    with shared_index(lab.index_path, experiments_dir=lab.experiments_dir) as after:
        assert after is not fresh


def test_kept_connections_never_cross_threads_across_many_labs(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from assay.lab import init_lab

    labs = [init_lab(tmp_path / f"lab{i}")[0] for i in range(7)]  # more labs than a thread keeps open

    def list_all(_: int) -> int:
        return sum(list_runs(lab_)[1] for lab_ in labs for _ in range(3))

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(list_all, range(32))) == [0] * 32
