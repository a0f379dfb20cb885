"""A candidate cannot win through files its runs leave behind: forged bytecode of the protected
evaluation, a package shadowing it, or an edit to it. Real git repositories, real runs."""

from __future__ import annotations

import json
import py_compile
import sys
from pathlib import Path

import pytest

from assay.errors import GitError
from assay.loop.ratchet import drop, start, try_candidate
from assay.store.records import read_record
from tests.conftest import git
from tests.integration.conftest import PREPARE, TRAIN, commit_baseline, edit

FAKE_PREPARE = "def evaluate(lr, depth):\n    return 0.5  # forged: a perfect score whatever the code\n"

# Appended to train.py by a cheating candidate: after its honest run, it leaves a bytecode file for
# prepare.py that no source check invalidates (unchecked hash-based), so the next run that imports
# `prepare` would get the forged evaluate() while prepare.py and its hash stay as they were.
FORGE_BYTECODE = f"""
import os, py_compile, tempfile
fake = os.path.join(tempfile.mkdtemp(), "prepare.py")
open(fake, "w").write({FAKE_PREPARE!r})
os.makedirs("__pycache__", exist_ok=True)
py_compile.compile(fake, cfile=f"__pycache__/prepare.{{sys.implementation.cache_tag}}.pyc",
                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""
# A package folder wins over a module of the same name on import.
SHADOW_PACKAGE = f"""
os.makedirs("prepare", exist_ok=True)
open("prepare/__init__.py", "w").write({FAKE_PREPARE!r})
"""
EDIT_PROTECTED = """
open("prepare.py", "a").write("evaluate = lambda lr, depth: 0.5\\n")
"""

HONEST = 1.0 + (0.9 - 0.3) ** 2 + 0.05 * (2 - 4) ** 2  # evaluate(0.9, 2): what LR = 0.9 really scores


@pytest.fixture
def loop_exp(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("import os, random", "import os, random, sys").replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    (lab.root / ".gitignore").write_text("__pycache__/\n")  # as most repositories do: git never sees bytecode
    commit_baseline(lab.root)
    start(lab, "exp", "sec", ["train.py"], ["prepare.py"], decision="greedy")
    return exp


PYC = f"__pycache__/prepare.{sys.implementation.cache_tag}.pyc"


def test_a_run_that_forges_bytecode_of_the_evaluation_is_refused_and_the_fake_never_scores(lab, loop_exp):
    exp = loop_exp
    edit(exp, LR=2.0)
    (exp.path / "train.py").write_text((exp.path / "train.py").read_text() + FORGE_BYTECODE)
    out = try_candidate(lab, "lr 2.0, and leave a forged prepare.pyc")
    assert out.decision == "crash"
    assert f"experiments/exp/{PYC} (new bytecode)" in out.reason
    assert not (exp.path / PYC).exists()  # moved out of the tree, kept as evidence
    assert (exp.path / "loops" / "sec" / "refused-run-1" / "experiments" / "exp" / PYC).is_file()
    run = read_record(lab.experiment_dir("exp") / "runs" / out.runs[0].split("/", 1)[1])
    assert run["status"] == "failed" and "bytecode" in run["reason"]  # its (honest) value counts for nothing

    drop(lab, "sec")
    edit(exp, LR=0.9)
    honest = try_candidate(lab, "lr 0.9")
    assert honest.values == [pytest.approx(HONEST)]  # not the forged 0.5


def test_bytecode_left_in_the_tree_is_refused_by_try(lab, loop_exp):
    """Bytecode that got there without a run (an ignored __pycache__ git never shows)."""
    exp = loop_exp
    assert not (exp.path / "__pycache__").exists()  # the baseline's runs wrote no bytecode
    fake = exp.path / "fake_prepare.py"
    fake.write_text(FAKE_PREPARE)
    (exp.path / "__pycache__").mkdir()
    py_compile.compile(str(fake), cfile=str(exp.path / PYC), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    fake.unlink()
    assert git(lab.root, "status", "--porcelain") == ""  # invisible to git

    edit(exp, LR=0.9)
    with pytest.raises(GitError, match=f"Code appeared outside git since the last run: experiments/exp/{PYC}"):
        try_candidate(lab, "lr 0.9")


@pytest.mark.parametrize(("cheat", "flagged"), [
    (SHADOW_PACKAGE, "experiments/exp/prepare/__init__.py (new code)"),
    (EDIT_PROTECTED, "experiments/exp/prepare.py (changed)"),
], ids=["package-shadowing-the-evaluation", "edit-of-the-evaluation"])
def test_a_run_that_changes_what_the_next_run_imports_is_a_crash_never_a_keep(lab, loop_exp, cheat, flagged):
    exp = loop_exp
    edit(exp, LR=0.9)  # an honest improvement, so only the guard can stop the keep
    (exp.path / "train.py").write_text((exp.path / "train.py").read_text() + cheat)
    out = try_candidate(lab, "lr 0.9 and a cheat")
    assert out.decision == "crash" and flagged in out.reason
    assert git(lab.root, "rev-parse", "HEAD") != out.commit


ENV_DUMP = """
import json as _json
_keys = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
_json.dump({k: os.environ.get(k) for k in _keys}, open(os.path.join(os.environ["ASSAY_RUN_DIR"], "child_env.json"), "w"))
"""


def test_every_run_writes_no_bytecode_next_to_the_code(lab, make_experiment, monkeypatch):
    from assay.runner.launch import RunSpec, start_run

    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # as on a machine that never set it
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    exp = make_experiment("""
        import json, os
        keys = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
        json.dump({k: os.environ.get(k) for k in keys}, open(os.path.join(os.environ["ASSAY_RUN_DIR"], "child_env.json"), "w"))
        import helper  # a module next to the script: Python would cache its bytecode in __pycache__/
        print("val_bpb:", helper.VALUE)
    """)
    (exp.path / "helper.py").write_text("VALUE = 1.0\n")
    env = json.loads((start_run(lab, exp, RunSpec("exp", "r")).path / "child_env.json").read_text())
    # Installed packages' bytecode stays readable (no prefix): a plain run starts as fast as python does.
    assert env == {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": None}
    assert not (exp.path / "__pycache__").exists()


def test_each_loop_run_reads_bytecode_only_from_its_own_fresh_cache_outside_the_tree(lab, make_experiment, monkeypatch):
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    exp = make_experiment(TRAIN.replace("NOISE", "0.0") + ENV_DUMP)
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    start(lab, "exp", "env", ["train.py"], ["prepare.py"], repeats=2)
    envs = [json.loads(p.read_text()) for p in sorted((exp.path / "runs").glob("*/child_env.json"))]
    prefixes = [Path(e["PYTHONPYCACHEPREFIX"]) for e in envs]
    assert len(prefixes) == 2 and prefixes[0] != prefixes[1]  # per run: no run can plant bytecode for the next one
    assert not any(p.is_relative_to(lab.root) or p.exists() for p in prefixes)


def test_code_a_proposer_hides_in_an_ignored_folder_is_refused_before_any_run(lab, loop_exp):
    exp = loop_exp
    (exp.path / "plots").mkdir()  # ignored by experiments/.gitignore: git status never shows it
    (exp.path / "plots" / "cheat.py").write_text(FAKE_PREPARE)
    text = (exp.path / "train.py").read_text().replace("from prepare import evaluate", "from plots.cheat import evaluate")
    (exp.path / "train.py").write_text(text)
    assert "plots" not in git(lab.root, "status", "--porcelain")
    runs = len(list((exp.path / "runs").iterdir()))
    with pytest.raises(GitError, match=r"Code appeared outside git since the last run: experiments/exp/plots/cheat\.py"):
        try_candidate(lab, "a better evaluation")
    assert len(list((exp.path / "runs").iterdir())) == runs
