"""results.tsv: autoresearch's columns first, one fsynced row per decision, tolerant of a torn tail."""

from __future__ import annotations

import pytest

from assay.errors import StoreError
from assay.gitops import diff_hash, diff_size
from assay.loop import results


def test_rows_round_trip_and_tabs_in_descriptions_cannot_break_columns(tmp_path):
    f = tmp_path / "results.tsv"
    results.append(f, results.Row("abc1234", "0.99", "1.2", "keep", "baseline", n="3"))
    results.append(f, results.Row("def5678", "0.98", "1.2", "discard", "lr\t2x\nwarmup", reason="not better"))
    head = f.read_text().splitlines()[0].split("\t")
    assert head[:5] == ["commit", "metric", "memory_gb", "status", "description"]
    rows = results.read(f)
    assert [r.status for r in rows] == ["keep", "discard"]
    assert rows[1].description == "lr 2x warmup" and rows[1].reason == "not better"


def test_a_torn_last_line_is_ignored(tmp_path):
    f = tmp_path / "results.tsv"
    results.append(f, results.Row("abc1234", "0.99", "0.0", "keep", "baseline"))
    with f.open("a") as fh:
        fh.write("def5678\t0.9")  # a writer killed mid-line
    assert len(results.read(f)) == 1


def test_a_foreign_file_is_a_store_error_with_the_fix(tmp_path):
    f = tmp_path / "results.tsv"
    f.write_text("a\tb\n1\t2\n")
    with pytest.raises(StoreError, match="not an assay results.tsv") as e:
        results.read(f)
    assert "mv " in e.value.hint


def test_missing_file_reads_as_no_rows(tmp_path):
    assert results.read(tmp_path / "nope.tsv") == []


DIFF = """\
diff --git a/train.py b/train.py
index 1111111..2222222 100644
--- a/train.py
+++ b/train.py
@@ -1,3 +1,3 @@
-LR = 1.0
+LR = 0.5
+
"""


def test_diff_hash_ignores_whitespace_blank_lines_and_headers():
    same = DIFF.replace("index 1111111..2222222", "index 3333333..4444444").replace("LR = 0.5", "LR  =  0.5   ")
    assert diff_hash(DIFF) == diff_hash(same.replace("@@ -1,3 +1,3 @@", "@@ -7,3 +7,3 @@"))
    assert diff_hash(DIFF) != diff_hash(DIFF.replace("0.5", "0.4"))


def test_diff_size_counts_non_blank_changed_lines():
    assert diff_size(DIFF) == (1, 1)


def test_a_commit_value_is_rounded_once_and_shown_the_same_everywhere():
    v = results.commit_value([0.98765432, 0.98765431])
    assert v == 0.987654 and results.show(v) == "0.987654" and float(results.show(v)) == v
    assert results.commit_value([]) is None and results.show(None) == ""
    assert results.gain(0.9, 1.0, "min") == 0.1 and results.gain(0.9, 1.0, "max") == -0.1
    assert results.show_delta(0.1) == "+0.1"


def test_a_crash_row_has_no_value_and_its_json_says_so(tmp_path):
    f = tmp_path / "results.tsv"
    results.append(f, results.Row("abc1234", "0.5", "0.0", results.Decision.KEEP, "baseline", mean="0.5"))
    results.append(f, results.Row("def5678", "0.000000", "0.0", results.Decision.CRASH, "bad"))
    keep, crash = results.read(f)
    assert keep.status is results.Decision.KEEP and keep.value == 0.5
    assert crash.value is None and crash.to_dict()["value"] is None and crash.to_dict()["status"] == "crash"


def test_an_unknown_status_is_a_store_error_naming_the_line(tmp_path):
    f = tmp_path / "results.tsv"
    results.append(f, results.Row("abc1234", "0.5", "0.0", results.Decision.KEEP, "baseline"))
    f.write_text(f.read_text() + "def5678\t0.4\t0.0\tmaybe\tidea\n")
    with pytest.raises(StoreError, match=r"results.tsv:3 has status 'maybe' \(known: keep, discard, crash\)"):
        results.read(f)
