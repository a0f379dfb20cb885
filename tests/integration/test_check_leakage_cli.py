"""`assay check` as a user runs it on a leaky script: the leakage is printed with why and fix, exit 1;
`--json` carries the same finding; the clean look-alike exits 0."""

from __future__ import annotations

import json
import shutil

from tests.conftest import run_cli
from tests.leakage_corpus import CORPUS


def test_check_reports_preprocessing_leakage_and_exits_1(tmp_path):
    shutil.copy(CORPUS / "prep_leak_scaler_before_split.py", tmp_path / "train.py")
    (tmp_path / "requirements.txt").write_text("scikit-learn==1.5.2\npandas==2.2.3\n")
    out = run_cli("check", "train.py", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "train.py:10: preprocessing-leakage: `StandardScaler().fit_transform(X)` learns from all rows" in out.stdout
    assert "    fix: Split first" in out.stdout
    js = run_cli("check", "train.py", "--json", cwd=tmp_path)
    assert js.returncode == 1
    [f] = [f for f in json.loads(js.stdout)["findings"] if f["code"] == "preprocessing-leakage"]
    assert f["where"] == "train.py:10" and f["line"] == 10 and f["why"] and f["fix"]


def test_check_of_the_split_first_pipeline_exits_0(tmp_path):
    shutil.copy(CORPUS / "prep_clean_pipeline.py", tmp_path / "train.py")
    (tmp_path / "requirements.txt").write_text("scikit-learn==1.5.2\npandas==2.2.3\n")
    out = run_cli("check", "train.py", cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().endswith("0 finding(s) in train.py")
