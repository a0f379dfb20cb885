"""An index written by an older assay (schema 1) is migrated in place, rows kept; a newer one is refused."""

from __future__ import annotations

import sqlite3

from assay.store.index import MIGRATIONS, SCHEMA_VERSION


def test_a_schema_1_index_migrates_to_the_current_schema_and_keeps_its_rows(lab):
    lab.index_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # the lab was made by this version: start from an old file
        lab.index_path.with_name(lab.index_path.name + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(lab.index_path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO runs (id, experiment, status, ignored, path, started) VALUES ('e/a', 'e', 'ok', 0, '/x', 1.0)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with lab.index() as index:
        assert index.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert index.db.execute("SELECT id, status FROM runs").fetchall() == [("e/a", "ok")]
        names = {n for (n,) in index.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "runs_exp_visible" in names
        assert index.damaged() is None
