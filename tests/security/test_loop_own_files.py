"""Files assay writes itself (sweeps, plots, reports, notes, run folders) never block `loop start`
or `try`, and survive a discard; `assay init` upgrades the experiments/.gitignore of an older lab;
a cut list of blocking files says how many it left out. Real CLI, real git."""

from __future__ import annotations

import pytest

from assay.errors import GitError
from assay.lab import GITIGNORE_LINES
from assay.loop.ratchet import start, try_candidate
from tests.conftest import git, run_cli
from tests.integration.conftest import PREPARE, TRAIN, commit_baseline, edit

OLD_GITIGNORE = "# written by assay init: run outputs are files, not source\n*/runs/\n*/results.tsv\n"


def test_init_upgrades_an_older_experiments_gitignore_and_keeps_the_users_lines(lab):
    ignore = lab.experiments_dir / ".gitignore"
    ignore.write_text(OLD_GITIGNORE + "*/wandb/\n")
    out = run_cli("init", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    lines = ignore.read_text().splitlines()
    assert set(GITIGNORE_LINES) <= set(lines) and "*/wandb/" in lines
    assert len(lines) == len(set(lines))  # nothing twice
    assert {"*/sweeps/", "*/plots/", "*/loops/", "*/REPORT.html"} <= set(lines)
    text = ignore.read_text()
    assert run_cli("init", cwd=lab.root).returncode == 0 and ignore.read_text() == text  # idempotent


def test_files_assay_wrote_never_block_the_loop_and_survive_a_discard(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    (lab.experiments_dir / ".gitignore").write_text(OLD_GITIGNORE)  # a lab made by an older assay
    commit_baseline(lab.root)
    for args in (["sweep", "exp", "seed=1,2", "-j", "1"], ["report", "exp"]):
        out = run_cli(*args, cwd=lab.root)
        assert out.returncode == 0, out.stdout + out.stderr
    git(lab.root, "add", "experiments/exp/REPORT.md")  # the user versions the report
    git(lab.root, "commit", "-qm", "report")
    untracked = git(lab.root, "status", "--porcelain", "--untracked-files=all")
    assert "experiments/exp/sweeps/" in untracked and "experiments/exp/REPORT.html" in untracked

    start(lab, "exp", "own", ["train.py"], ["prepare.py"], decision="greedy")  # not blocked
    for args in (["loop", "plot", "own"], ["note", "exp", "[HUNCH] depth matters more than lr"], ["report", "exp"]):
        out = run_cli(*args, cwd=lab.root)
        assert out.returncode == 0, out.stdout + out.stderr
    report = exp.path / "REPORT.md"
    report.write_text(report.read_text() + "\nMy reading of the loop so far.\n")
    assert (exp.path / "plots" / "loop-own.png").is_file() and (exp.path / "JOURNAL.md").is_file()

    edit(exp, LR=3.0)
    assert try_candidate(lab, "lr 3.0").decision == "discard"  # not blocked, and the reset...
    assert "My reading of the loop so far." in report.read_text()  # ...kept assay's files as they were
    assert (exp.path / "JOURNAL.md").is_file() and (exp.path / "plots" / "loop-own.png").is_file()
    edit(exp, LR=0.5)
    assert try_candidate(lab, "lr 0.5").decision == "keep"
    assert "REPORT.md" not in git(lab.root, "show", "--name-only", "HEAD")  # the loop commits only editable files


def test_a_cut_list_of_blocking_files_says_how_many_it_left_out(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    start(lab, "exp", "cut", ["train.py"], ["prepare.py"], decision="greedy")
    for i in range(11):
        (exp.path / f"stray{i:02d}.txt").write_text("x\n")
    edit(exp, LR=0.5)
    with pytest.raises(GitError, match=r"stray07\.txt and 3 more \(editable"):
        try_candidate(lab, "lr 0.5")
