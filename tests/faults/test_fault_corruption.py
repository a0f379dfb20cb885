"""A corrupt index or a truncated metrics file: detected, repaired by reindex, reported.

Real SQLite files damaged the ways disks and people damage them (garbage, a truncated file, a page
of a table overwritten deep inside the file, a dropped table), and metrics files cut mid-line.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from assay.errors import StoreError
from assay.runner import RunSpec, run_experiment
from assay.store import records
from assay.store.query import list_runs, reindex, show_run
from tests.conftest import run_cli

TABLES = ("runs", "params", "metrics", "tags")
SCRIPT = """
import assay
p = assay.params()
for i in range(200):
    assay.log({"val_bpb": 2 - i / 1000 - p["lr"], "loss": i}, step=i)
"""


def _tables(lab) -> dict[str, list[tuple]]:
    with lab.index() as index:
        return {t: sorted(index.db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def _checkpointed(lab) -> bytes:
    """The index as one self-contained file (WAL folded in), so damage lands where it is read."""
    db = sqlite3.connect(lab.index_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return lab.index_path.read_bytes()


@pytest.fixture
def store(lab, make_experiment):
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.1, **{f"k{i}": i for i in range(30)}})
    for i in range(12):
        run_experiment(lab, RunSpec("exp", f"r{i}", [f"lr={i / 100}"]))
    return _tables(lab)


def _damage(lab, how: str) -> None:
    data = _checkpointed(lab)
    page = 4096
    if how == "garbage":
        lab.index_path.write_bytes(b"not a database at all " * 500)
    elif how == "truncated":
        lab.index_path.write_bytes(data[: len(data) // 2])
    elif how == "pages overwritten":  # deep pages: the header is fine, so it opens, and a query trips on them
        blob = bytearray(data)
        for start in range(2 * page, len(blob) - page, 3 * page):
            blob[start:start + page] = b"\xff" * page
        lab.index_path.write_bytes(bytes(blob))
    elif how == "table dropped":
        db = sqlite3.connect(lab.index_path)
        db.execute("DROP TABLE metrics")
        db.commit()
        db.close()


@pytest.mark.parametrize("how", ["garbage", "truncated", "pages overwritten", "table dropped"])
def test_a_damaged_index_is_detected_and_rebuilt_by_reindex_force(lab, store, how):
    _damage(lab, how)
    for args in (("runs", "exp"), ("show", "r3"), ("status",), ("compare", "exp", "--by", "lr")):
        out = run_cli(*args, cwd=lab.root)
        assert "Traceback" not in out.stderr, (args, out.stderr)
        if out.returncode != 0:  # detected: a short error that names the fix
            assert out.returncode == 1 and "reindex" in out.stderr, (args, out.stderr)
    res = run_cli("reindex", "--force", "--json", cwd=lab.root)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["runs"] == 12 and report["problems"] == []
    assert report["moved_aside"] and Path(report["moved_aside"]).exists()
    assert _tables(lab) == store
    assert run_cli("runs", "exp", cwd=lab.root).returncode == 0


def test_a_dropped_table_is_a_clear_error_not_a_traceback(lab, store):
    _damage(lab, "table dropped")
    with pytest.raises(StoreError):
        list_runs(lab, "exp")


def test_a_truncated_metrics_file_is_reported_and_the_index_keeps_the_record(lab, store):
    rows, _ = list_runs(lab, "exp", limit=3)
    finished = Path(rows[0]["path"])
    data = (finished / records.METRICS_FILE).read_bytes()
    (finished / records.METRICS_FILE).write_bytes(data[: len(data) // 2 + 7])  # cut mid-line
    res = reindex(lab)
    assert res["runs"] == 12 and res["problems"] == []
    assert [w["path"] for w in res["warnings"]] == [str(finished)]
    assert "torn line" in res["warnings"][0]["warning"]
    assert _tables(lab) == store  # the finished record's summary is the truth; nothing lost
    rec = show_run(lab, rows[0]["id"])
    assert rec["metrics"]["val_bpb"]["count"] == 200
    series = records.metric_series(finished)["val_bpb"]
    assert 0 < len(series) < 200 and [s for s, _, _ in series] == list(range(len(series)))  # a clean prefix


def test_a_lost_run_with_a_truncated_metrics_file_is_summarized_from_its_complete_lines(lab, store):
    rows, _ = list_runs(lab, "exp", limit=1)
    path = Path(rows[0]["path"])
    rec = records.read_record(path)
    for key in ("ended", "duration", "metrics", "exit_code"):
        rec.pop(key, None)
    rec.update(status="running", owner_pid=2**22 + 17, owner_started=1.0)  # a launcher that no longer exists
    records.write_record(path, records.RunRecord.from_dict(rec))
    data = (path / records.METRICS_FILE).read_bytes()
    lines = data.split(b"\n")
    (path / records.METRICS_FILE).write_bytes(b"\n".join(lines[:50]) + b"\n" + lines[50][:10])
    res = reindex(lab)
    assert res["newly_lost"] == 1 and len(res["warnings"]) == 1
    rec = show_run(lab, rows[0]["id"])
    assert rec["status"] == "lost"
    assert rec["metrics"]["loss"]["count"] == 50 and rec["metrics"]["loss"]["last"] == 49


def test_garbage_lines_inside_a_metrics_file_are_skipped_not_fatal(lab, store):
    rows, _ = list_runs(lab, "exp", limit=1)
    path = Path(rows[0]["path"])
    lines = (path / records.METRICS_FILE).read_bytes().split(b"\n")
    lines[10] = b"\x00\xff{not json"
    lines[20] = b"[1, 2, 3]"
    (path / records.METRICS_FILE).write_bytes(b"\n".join(lines))
    series = records.metric_series(path)["loss"]
    assert len(series) == 198
    assert reindex(lab)["problems"] == []
