"""Editable and protected files are regular files inside the repository: a path outside it is a
one-line error, and a symlink is refused at `loop start` and at every `try`. Real git, real CLI."""

from __future__ import annotations

import pytest

from assay.errors import GitError
from assay.loop.ratchet import start, try_candidate
from tests.conftest import git, run_cli
from tests.integration.conftest import PREPARE, TRAIN, commit_baseline, edit


@pytest.fixture
def exp(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    return exp


def _one_line_error(out, *needles: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


@pytest.mark.parametrize("outside", ["../../../x.py", "/etc/passwd"])
def test_edit_naming_a_file_outside_the_repository_is_a_one_line_error(lab, exp, outside):
    (lab.root.parent / "x.py").write_text("X = 1\n")
    out = run_cli("loop", "start", "exp", "--tag", "t", "--edit", outside, cwd=lab.root)
    _one_line_error(out, f"--edit {outside}", "outside the git repository")
    assert git(lab.root, "branch", "--list", "assay/*") == ""  # nothing started


def test_protect_naming_a_file_outside_the_repository_is_a_one_line_error(lab, exp):
    out = run_cli("loop", "start", "exp", "--tag", "t", "--edit", "train.py", "--protect", "/etc/hostname", cwd=lab.root)
    _one_line_error(out, "--protect /etc/hostname", "outside the git repository")


@pytest.mark.parametrize("role", ["edit", "protect"])
def test_a_symlinked_file_is_refused_at_loop_start(lab, exp, tmp_path, role):
    real = tmp_path / "elsewhere.py"
    real.write_text(PREPARE)
    (exp.path / "prepare.py").unlink()
    (exp.path / "prepare.py").symlink_to(real)
    git(lab.root, "add", "-A")
    git(lab.root, "commit", "-qm", "prepare.py as a link")
    args = ["--edit", "prepare.py"] if role == "edit" else ["--edit", "train.py", "--protect", "prepare.py"]
    out = run_cli("loop", "start", "exp", "--tag", "t", *args, cwd=lab.root)
    _one_line_error(out, f"--{role} prepare.py", "is a symlink")


def test_an_editable_file_replaced_by_a_symlink_outside_the_repo_is_refused_at_try(lab, exp, tmp_path):
    start(lab, "exp", "ln", ["train.py"], ["prepare.py"], decision="greedy")
    before = git(lab.root, "rev-parse", "HEAD")
    outside = tmp_path / "train_elsewhere.py"
    outside.write_text((exp.path / "train.py").read_text().replace("LR = 1.0", "LR = 0.5"))
    (exp.path / "train.py").unlink()
    (exp.path / "train.py").symlink_to(outside)
    with pytest.raises(GitError, match="experiments/exp/train.py is reached through the symlink experiments/exp/train.py"):
        try_candidate(lab, "lr 0.5, from outside the repo")
    assert git(lab.root, "rev-parse", "HEAD") == before  # nothing committed
    assert git(lab.root, "for-each-ref", "refs/assay/ln/tried/") == ""


def test_a_protected_file_swapped_for_an_identical_symlink_is_refused_at_try(lab, exp, tmp_path):
    """Same bytes, same hash: only the link check sees it (the target could change at any time)."""
    start(lab, "exp", "lp", ["train.py"], ["prepare.py"], decision="greedy")
    copy = tmp_path / "prepare_copy.py"
    copy.write_text(PREPARE)
    (exp.path / "prepare.py").unlink()
    (exp.path / "prepare.py").symlink_to(copy)
    edit(exp, LR=0.5)
    with pytest.raises(GitError, match="symlink experiments/exp/prepare.py"):
        try_candidate(lab, "lr 0.5")


def test_an_editable_file_under_a_symlinked_folder_is_refused_at_try(lab, make_experiment, tmp_path):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0").replace("from prepare import", "from lib.prepare import"))
    (exp.path / "lib").mkdir()
    (exp.path / "lib" / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    start(lab, "exp", "dir", ["lib/prepare.py"], [], decision="greedy")
    elsewhere = tmp_path / "lib"
    (exp.path / "lib").rename(elsewhere)
    (exp.path / "lib").symlink_to(elsewhere)
    (elsewhere / "prepare.py").write_text(PREPARE.replace("1.0 +", "0.5 +"))
    with pytest.raises(GitError, match="symlink experiments/exp/lib"):
        try_candidate(lab, "a better evaluation, from outside")
