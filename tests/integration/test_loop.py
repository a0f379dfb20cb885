"""The loop's protocol on real git repositories, with a scripted proposer editing train.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.errors import GitError
from assay.loop import results
from assay.loop.ratchet import drop, resume, start, status, try_candidate
from tests.conftest import git, run_cli
from tests.integration.conftest import PREPARE, edit


def test_greedy_protocol_keep_discard_and_ledger(lab, loop_lab):
    exp = loop_lab()
    base = start(lab, "exp", "t1", ["train.py"], ["prepare.py"], decision="greedy")
    assert base.decision == "keep" and base.values == [pytest.approx(1.69)]
    assert git(lab.root, "rev-parse", "--abbrev-ref", "HEAD") == "assay/t1"
    edit(exp, LR=0.5)
    out = try_candidate(lab, "lower lr")
    assert out.decision == "keep" and out.delta == pytest.approx(0.45)
    kept = git(lab.root, "rev-parse", "HEAD")
    edit(exp, LR=2.0)
    out = try_candidate(lab, "higher lr")
    assert out.decision == "discard"
    assert git(lab.root, "rev-parse", "HEAD") == kept  # reset to the last keep
    assert "LR = 0.5" in (exp.path / "train.py").read_text()
    # The discarded diff is not lost: it is reachable under refs/assay/t1/tried/2.
    assert "LR = 2.0" in git(lab.root, "show", "refs/assay/t1/tried/2:experiments/exp/train.py")
    rows = results.read(exp.path / "results.tsv")
    assert [r.status for r in rows] == ["keep", "keep", "discard"]
    assert rows[2].commit == out.commit[:7] and rows[1].runs.startswith("exp/")
    header = (exp.path / "results.tsv").read_text().splitlines()[0].split("\t")
    assert header[:5] == ["commit", "metric", "memory_gb", "status", "description"]
    assert "results.tsv" not in git(lab.root, "status", "--porcelain")  # kept out of git
    assert git(lab.root, "rev-parse", "main") == git(lab.root, "rev-parse", "refs/assay/t1/tried/1~1")  # main untouched


def test_guards_refuse_protected_outside_empty_and_repeated_diffs(lab, loop_lab):
    exp = loop_lab()
    start(lab, "exp", "g", ["train.py"], ["prepare.py"], decision="greedy")
    with pytest.raises(GitError, match="empty"):
        try_candidate(lab, "nothing")
    (exp.path / "prepare.py").write_text(PREPARE.replace("0.3", "2.0"))
    with pytest.raises(GitError, match="Protected file experiments/exp/prepare.py changed"):
        try_candidate(lab, "cheat")
    (exp.path / "prepare.py").write_text(PREPARE)
    (exp.path / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(GitError, match="outside the editable set changed: experiments/exp/config.yaml"):
        try_candidate(lab, "sneaky")
    git(lab.root, "checkout", "--", "experiments/exp/config.yaml")
    edit(exp, LR=3.0)
    assert try_candidate(lab, "worse").decision == "discard"
    edit(exp, LR="3.0   ")  # same idea, only whitespace differs
    with pytest.raises(GitError, match="already tried"):
        try_candidate(lab, "worse again")
    assert try_candidate(lab, "worse again", force=True).decision == "discard"


def test_start_refuses_dirty_repo_and_existing_branch(lab, loop_lab):
    exp = loop_lab()
    (exp.path / "prepare.py").write_text(PREPARE + "# local change\n")
    with pytest.raises(GitError, match="Uncommitted changes outside the editable files"):
        start(lab, "exp", "d", ["train.py"], ["prepare.py"])
    assert "# local change" in (exp.path / "prepare.py").read_text()  # never stashed or reset
    git(lab.root, "checkout", "--", "experiments/exp/prepare.py")
    git(lab.root, "branch", "assay/d")
    with pytest.raises(GitError, match="already exists"):
        start(lab, "exp", "d", ["train.py"], ["prepare.py"])


def test_crash_retry_then_drop_keeps_every_attempt(lab, loop_lab):
    exp = loop_lab()
    start(lab, "exp", "c", ["train.py"], ["prepare.py"], decision="greedy", max_retries=2)
    best = git(lab.root, "rev-parse", "HEAD")
    edit(exp, DEPTH="undefined_name")
    out = try_candidate(lab, "broken depth")
    assert out.decision == "crash" and "NameError" in out.reason
    assert git(lab.root, "rev-parse", "HEAD") == best
    assert "undefined_name" in (exp.path / "train.py").read_text()  # edits left to be fixed
    with pytest.raises(GitError, match="still in the work tree"):
        try_candidate(lab, "another idea")
    edit(exp, DEPTH="undefined_again")
    assert try_candidate(lab, "fix 1", retry=True).decision == "crash"
    edit(exp, DEPTH="undefined_thrice")
    out = try_candidate(lab, "fix 2", retry=True)
    assert out.decision == "dropped"
    assert "DEPTH = 2" in (exp.path / "train.py").read_text()
    refs = git(lab.root, "for-each-ref", "--format=%(refname)", "refs/assay/c/tried/").split()
    assert len(refs) == 3
    assert status(lab)["counts"]["crash"] == 3


def test_drop_abandons_a_crash(lab, loop_lab):
    exp = loop_lab()
    start(lab, "exp", "dr", ["train.py"], ["prepare.py"], decision="greedy")
    edit(exp, LR="nope")
    try_candidate(lab, "bad")
    assert drop(lab, "dr") == "bad"
    assert "LR = 1.0" in (exp.path / "train.py").read_text()


def test_resume_after_a_kill_between_commit_and_decision(lab, loop_lab):
    exp = loop_lab()
    start(lab, "exp", "r", ["train.py"], ["prepare.py"], decision="greedy")
    best = git(lab.root, "rev-parse", "HEAD")
    edit(exp, LR=0.4)
    # What a kill right after the commit leaves behind: a candidate commit with no results row.
    git(lab.root, "commit", "-qam", "assay try 1: half-done")
    out = resume(lab, "r")
    assert "no decision" in out["notes"][0]
    assert git(lab.root, "rev-parse", "HEAD") == best
    assert "LR = 0.4" in (exp.path / "train.py").read_text()
    assert try_candidate(lab, "lr 0.4", force=True).decision == "keep"


def test_noise_aware_discards_noise_that_greedy_keeps(lab, loop_lab):
    exp = loop_lab(noise=0.05)
    start(lab, "exp", "n", ["train.py"], ["prepare.py"], repeats=3, max_repeats=3)
    s = status(lab)
    assert s["sigma"] is not None and s["sigma_df"] == 2
    edit(exp, DEPTH="2  # a comment-only change: the true metric is identical")
    out = try_candidate(lab, "no-op")
    assert out.decision == "discard", out.reason
    edit(exp, LR=0.3, DEPTH=4)  # a real improvement of 0.59, ten sigmas
    out = try_candidate(lab, "tuned")
    assert out.decision == "keep", out.reason
    rows = results.read(exp.path / "results.tsv")
    assert rows[-1].reason and "significant" in rows[-1].reason


def test_cli_loop_commands(lab, loop_lab):
    exp = loop_lab()
    out = run_cli("loop", "start", "exp", "--tag", "cli", "--edit", "train.py", "--protect", "prepare.py",
                  "--decision", "greedy", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    edit(exp, LR=0.5)
    out = run_cli("try", "lower lr", cwd=lab.root)
    assert out.returncode == 0 and out.stdout.startswith("keep"), out.stderr
    assert len(out.stdout.strip().splitlines()) == 1
    out = run_cli("try", "again", cwd=lab.root)
    assert out.returncode == 1 and out.stderr.startswith("Error: The diff is empty")
    s = json.loads(run_cli("loop", "status", "--json", cwd=lab.root).stdout)
    assert s["counts"]["keep"] == 2 and s["best"] == pytest.approx(1.24)
    log = json.loads(run_cli("loop", "log", "--json", cwd=lab.root).stdout)
    assert [r["status"] for r in log] == ["keep", "keep"]
    assert Path(s["results"]).exists()
