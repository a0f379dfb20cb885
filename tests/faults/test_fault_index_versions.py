"""An index written by an older assay (schemas 1 and 2) is migrated in place, rows kept; a newer one is refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from assay.store.index import SCHEMA_VERSION

FROZEN = Path(__file__).resolve().parents[1] / "fixtures" / "index_schema"


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_schema_index_migrates_to_the_current_schema_and_keeps_its_rows(lab, version):
    """The old database is built from the schema that version shipped, frozen as SQL text: a change
    to today's migrations that no longer upgrades it fails here."""
    lab.index_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # the lab was made by this version: start from an old file
        lab.index_path.with_name(lab.index_path.name + suffix).unlink(missing_ok=True)
    run = lab.experiments_dir / "e" / "runs" / "a"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"id": "e/a", "experiment": "e", "status": "ok", "entry": "train.py",
                                              "params": {"lr": 0.1}, "seed": 0}))
    db = sqlite3.connect(lab.index_path)
    db.executescript((FROZEN / f"v{version}.sql").read_text())
    db.execute("INSERT INTO runs (id, experiment, folder, status, ignored, path, started) "
               "VALUES ('e/a', 'e', 'a', 'ok', 0, '/moved/away', 1.0)")
    db.execute(f"PRAGMA user_version={version}")
    db.commit()
    db.close()
    with lab.index() as index:
        assert index.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert index.db.execute("SELECT id, status FROM runs").fetchall() == [("e/a", "ok")]
        names = {n for (n,) in index.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "runs_exp_visible" in names
        # identity filled from run.json, found by experiment and folder (the recorded path is stale)
        entry, config = index.db.execute("SELECT entry, config FROM runs").fetchone()
        assert entry == "train.py" and config
        assert index.damaged() is None
