import json
from datetime import datetime
from pathlib import Path

from assay.store import records


def test_same_second_collision_gets_a_suffix_and_each_folder_is_born_with_its_record(tmp_path: Path):
    when = datetime(2026, 1, 2, 3, 4, 5)
    runs = tmp_path / "exp" / "runs"
    rec = records.RunRecord(experiment="exp", desc="try it", started=0.0)
    a, _ = records.create_run_dir(runs, "try it", rec, when)
    b, b_rec = records.create_run_dir(runs, "try it", rec, when)
    assert a.name == "2026-01-02T03-04-05-try-it" and b.name == "2026-01-02T03-04-05-try-it-2"
    assert sorted(p.name for p in a.iterdir()) == ["checkpoints", "data", "logs", "plots", "run.json"]
    assert records.read_record(b)["id"] == b_rec.id == "exp/2026-01-02T03-04-05-try-it-2"
    assert records.run_folders(runs) == [a, b]  # and no staging folder is left behind


def test_staging_folders_are_hidden_and_only_stale_ones_are_removed(tmp_path: Path):
    import os
    import time

    runs = tmp_path / "runs"
    done, _ = records.create_run_dir(runs, "done", records.RunRecord(experiment="e", desc="done", started=0.0, status=records.Status.OK))
    stale, fresh = runs / f"{records.STAGING_PREFIX}killed", runs / f"{records.STAGING_PREFIX}busy"
    for p in (stale, fresh):
        (p / "logs").mkdir(parents=True)
        records.write_record(p, records.RunRecord(experiment="e", desc="x", started=0.0))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert records.run_folders(runs) == [done]
    assert records.remove_stale_staging(runs) == [stale]
    assert not stale.exists() and fresh.exists() and done.exists()


def test_torn_last_line_and_garbage_are_tolerated(tmp_path: Path):
    (tmp_path / records.METRICS_FILE).write_text(
        json.dumps({"step": 0, "m": {"loss": 1.0}}) + "\n" + "not json\n" + json.dumps({"step": 1, "m": {"loss": 0.5}}) + "\n" + '{"step": 2, "m": {"lo')
    s = records.summarize(tmp_path, lambda k: "min")["metrics"]["loss"]
    assert s == {"last": 0.5, "last_step": 1, "best": 0.5, "best_step": 1, "count": 2}


def test_api_metrics_win_over_the_same_name_printed(tmp_path: Path):
    lines = [{"step": 0, "m": {"val": 0.1}}, {"step": 1, "m": {"val": 0.3}}, {"step": 0, "m": {"val": 0.3}, "src": "out"},
             {"step": 0, "m": {"other": 5}, "src": "out"}]
    (tmp_path / records.METRICS_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))
    s = records.summarize(tmp_path, lambda k: "max")["metrics"]
    assert s["val"]["count"] == 2 and s["val"]["best_step"] == 1
    assert s["other"]["last"] == 5


def test_best_ignores_nan(tmp_path: Path):
    (tmp_path / records.METRICS_FILE).write_text('{"step":0,"m":{"l":2.0}}\n{"step":1,"m":{"l":NaN}}\n')
    s = records.summarize(tmp_path, lambda k: "min")["metrics"]["l"]
    assert s["best"] == 2.0 and s["last"] != s["last"]


def test_a_record_of_a_dead_process_becomes_lost(tmp_path: Path):
    records.write_record(tmp_path, records.RunRecord.from_dict({"id": "e/r", "status": "running", "owner_pid": 2**22 + 12345,
                                                                "owner_started": 1.0}))
    rec = records.mark_lost_if_dead(tmp_path, records.read_record(tmp_path))
    assert rec["status"] == "lost"
    assert records.read_record(tmp_path)["status"] == "lost"


def test_a_running_record_from_another_host_is_not_declared_lost(tmp_path: Path):
    records.write_record(tmp_path, records.RunRecord.from_dict({"id": "e/r", "status": "running", "owner_pid": 2**22 + 12345,
                                                                "owner_started": 1.0, "host": "some-other-machine"}))
    assert records.mark_lost_if_dead(tmp_path, records.read_record(tmp_path))["status"] == "running"


def test_a_record_round_trips_through_json_and_keeps_keys_a_newer_version_wrote(tmp_path: Path):
    rec = records.RunRecord(experiment="e", desc="d", started=1.0, params={"lr": 0.1}, seed=3)
    path, rec = records.create_run_dir(tmp_path / "e" / "runs", "d", rec)
    on_disk = records.read_record(path)
    assert "metrics" not in on_disk and on_disk["status"] == "running"  # a running record has no outcome yet
    done = rec.with_(status=records.Status.OK, reason="", metrics={}, ended=2.0, duration=1.0)
    records.write_record(path, done)
    assert records.RunRecord.from_dict(records.read_record(path)) == done
    assert {"git", "code", "exit_code", "peak_gpu_mem"} <= set(records.read_record(path))  # a finished run's outcome keys, even empty
    future = {**records.read_record(path), "from_the_future": [1, 2]}
    assert records.RunRecord.from_dict(future).to_dict()["from_the_future"] == [1, 2]
