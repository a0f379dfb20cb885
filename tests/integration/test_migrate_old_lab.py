"""A lab written by assay 0.1 (index schema 2, run.json without a code fingerprint) keeps working.

tests/fixtures/lab_v0_1 was made by that version: `assay init`, `assay new exp`, two seeds of
train.py at one commit (v1), then two seeds with an uncommitted edit (v2); its .git was removed,
so only what the records say about git remains.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

FIXTURE = Path(__file__).parent.parent / "fixtures" / "lab_v0_1"


def _old_lab(tmp_path: Path) -> Path:
    root = tmp_path / "oldlab"
    shutil.copytree(FIXTURE, root)
    return root


def test_the_old_index_is_migrated_and_runs_are_identified_by_commit_and_patch(tmp_path):
    from assay.lab import find_lab
    from assay.report.verdict import verdict
    from assay.store.index import SCHEMA_VERSION
    from assay.store.query import compare, list_runs

    root = _old_lab(tmp_path)
    db = root / ".assay" / "index.db"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "code" not in {r[1] for r in con.execute("PRAGMA table_info(runs)")}
    records = [json.loads(p.read_text()) for p in sorted(root.glob("experiments/exp/runs/*/run.json"))]
    assert all("code" not in r and r["git"]["commit"] for r in records)
    lab = find_lab(root)

    rows, total = list_runs(lab, "exp")
    assert total == 4
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        codes = dict(con.execute("SELECT desc, code FROM runs"))
    assert codes["v1-seed0"] == codes["v1-seed1"] == f"git:{records[0]['git']['commit']}"
    assert codes["v2-seed0"] == codes["v2-seed1"] != codes["v1-seed0"] and "+" in codes["v2-seed0"]

    cmp = compare(lab, "exp")
    assert sorted((r["n"], round(r["mean"], 3)) for r in cmp["rows"]) == [(2, 0.805), (2, 0.905)]
    v = verdict(lab, "exp")
    assert sorted(len(c.runs) for c in v.configurations) == [2, 2]


def test_reindex_of_an_old_lab_gives_the_same_identities(tmp_path):
    from assay.lab import find_lab
    from assay.store.query import compare, reindex

    lab = find_lab(_old_lab(tmp_path))
    before = compare(lab, "exp")
    assert reindex(lab)["runs"] == 4
    after = compare(lab, "exp")
    assert [(r["code"], r["n"], r["mean"]) for r in before["rows"]] == [(r["code"], r["n"], r["mean"]) for r in after["rows"]]
