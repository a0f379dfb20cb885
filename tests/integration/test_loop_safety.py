"""The loop's promises about the user's repository and about crashes, on real repos and processes:
it touches only assay/<tag> and refs/assay/, a killed `assay try` loses nothing, a hang is a crash."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assay.errors import GitError
from assay.loop import results
from assay.loop.ratchet import resume, start, status, try_candidate
from tests.conftest import ASSAY, git, run_cli, wait_for
from tests.integration.conftest import PREPARE, TRAIN, commit_baseline, edit

HANG = "import time\nwhile True:\n    time.sleep(0.05)  # a candidate that never finishes\n"


def refs(root: Path) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split() for line in out.splitlines())


def test_keep_and_discard_move_only_the_assay_branch_and_its_refs(lab, repo_lab):
    git(lab.root, "branch", "feature")
    ignore_before = (lab.root / "experiments" / ".gitignore").read_text()
    before = refs(lab.root)
    start(lab, "exp", "safe", ["train.py"], ["prepare.py"], decision="greedy")
    edit(repo_lab, LR=0.5)
    assert try_candidate(lab, "keep me").decision == "keep"
    edit(repo_lab, LR=9.0)
    assert try_candidate(lab, "discard me").decision == "discard"
    after = refs(lab.root)
    changed = {r for r in after if before.get(r) != after[r]}
    assert changed and all(r == "refs/heads/assay/safe" or r.startswith("refs/assay/safe/") for r in changed)
    assert git(lab.root, "stash", "list") == ""
    assert (lab.root / "experiments" / ".gitignore").read_text() == ignore_before  # no tracked file touched
    exclude = (lab.root / ".git" / "info" / "exclude").read_text()
    assert "/experiments/exp/results.tsv" in exclude  # kept out of git locally, untracked
    assert git(lab.root, "status", "--porcelain", "--", "experiments/exp") == ""


def test_a_hanging_candidate_times_out_as_a_crash_naming_its_log(lab, repo_lab):
    start(lab, "exp", "hang", ["train.py"], ["prepare.py"], decision="greedy", timeout="2s", max_retries=1)
    best = git(lab.root, "rev-parse", "HEAD")
    (repo_lab.path / "train.py").write_text(TRAIN.replace("NOISE", "0.0") + HANG)
    out = try_candidate(lab, "hang forever")
    assert out.decision == "crash" and out.reason.startswith("timeout")
    log = out.reason.split("(log: ", 1)[1].split(")", 1)[0]
    assert Path(log).is_file()
    assert git(lab.root, "rev-parse", "HEAD") == best
    row = results.read(repo_lab.path / "results.tsv")[-1]
    assert row.status == "crash" and row.runs == out.runs[0]


def test_a_killed_try_is_recovered_by_resume_and_nothing_is_lost(lab, repo_lab):
    start(lab, "exp", "kill", ["train.py"], ["prepare.py"], decision="greedy")
    best = git(lab.root, "rev-parse", "HEAD")
    (repo_lab.path / "train.py").write_text(TRAIN.replace("NOISE", "0.0").replace("LR = 1.0", "LR = 0.5") + HANG)
    proc = subprocess.Popen([*ASSAY, "try", "lr 0.5 (hangs)"], cwd=lab.root, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def running_child() -> int | None:
        for rj in repo_lab.runs_dir.glob("*/run.json"):
            rec = json.loads(rj.read_text() or "{}")
            if rec.get("status") == "running" and rec.get("child_pid") and "lr-0.5" in rec["desc"]:
                return rec["child_pid"]
        return None

    try:
        child = wait_for(running_child, what="the candidate's script to start")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the loop itself dies, mid-run
        proc.wait()
    os.killpg(child, signal.SIGKILL)  # and so does its script (its own process group)
    candidate = git(lab.root, "rev-parse", "HEAD")
    assert candidate != best  # killed after the commit, before any decision

    out = run_cli("loop", "resume", "kill", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    assert "no decision" in out.stdout
    assert git(lab.root, "rev-parse", "HEAD") == best
    assert "LR = 0.5" in (repo_lab.path / "train.py").read_text()  # the edits are back in the work tree
    assert git(lab.root, "rev-parse", "refs/assay/kill/tried/1") == candidate  # and kept under a ref
    assert results.read(repo_lab.path / "results.tsv")[-1].status == "crash"

    (repo_lab.path / "train.py").write_text((repo_lab.path / "train.py").read_text().replace(HANG, ""))
    assert try_candidate(lab, "lr 0.5").decision == "keep"
    assert status(lab, "kill")["best"] == pytest.approx(1.24)


def test_start_commits_uncommitted_editable_edits_on_the_loop_branch_only(lab, repo_lab):
    main = git(lab.root, "rev-parse", "main")
    edit(repo_lab, LR=0.5)
    base = start(lab, "exp", "dirty", ["train.py"], ["prepare.py"], decision="greedy")
    assert base.values == [pytest.approx(1.24)]  # the baseline is the code as it was
    assert git(lab.root, "rev-parse", "main") == main
    assert git(lab.root, "rev-parse", "HEAD~1") == main


def test_files_a_run_writes_are_outputs_but_new_files_from_a_proposer_are_refused(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0") + "open('ckpt.txt', 'w').write('weights')\n")
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    start(lab, "exp", "out", ["train.py"], ["prepare.py"], decision="greedy")
    assert (exp.path / "ckpt.txt").exists()
    edit(exp, LR=0.5)
    assert try_candidate(lab, "lr 0.5").decision == "keep"  # the baseline's checkpoint does not block it
    (exp.path / "helpers.py").write_text("X = 1\n")  # code the commit would not contain
    edit(exp, LR=0.4)
    with pytest.raises(GitError, match="outside the editable set changed: experiments/exp/helpers.py"):
        try_candidate(lab, "lr 0.4 with a helper")


def test_resume_rebuilds_the_best_from_run_folders_when_state_predates_a_keep(lab, repo_lab):
    start(lab, "exp", "st", ["train.py"], ["prepare.py"], decision="greedy")
    state = repo_lab.path / "loops" / "st" / "state.json"
    stale = state.read_text()
    edit(repo_lab, LR=0.5)
    kept = try_candidate(lab, "lr 0.5")
    state.write_text(stale)  # what a kill after the results row, before the state was saved, leaves
    out = resume(lab, "st")
    s = status(lab, "st")
    assert out["best_commit"] == kept.commit and s["best"] == pytest.approx(1.24)
    edit(repo_lab, LR=0.45)
    assert try_candidate(lab, "lr 0.45").delta == pytest.approx(0.0175)  # vs the rebuilt best, not the stale 1.69


def test_a_proposer_that_commits_itself_cannot_slip_an_outside_file_past_the_guard(lab, repo_lab):
    start(lab, "exp", "cm", ["train.py"], ["prepare.py"], decision="greedy")
    (repo_lab.path / "config.yaml").write_text("seed: 7\n")
    edit(repo_lab, LR=0.5)
    git(lab.root, "commit", "-qam", "an agent committing on its own")
    with pytest.raises(GitError, match="outside the editable set changed: experiments/exp/config.yaml"):
        try_candidate(lab, "lr 0.5 and a new seed")


# A scripted agent (standing in for an LLM coding CLI): first it adds a new module next to train.py
# (outside the editable set), then it makes a plain edit.
NEW_FILE_AGENT = r'''
import os, re
train = "experiments/exp/train.py"
text = open(train).read()
if os.environ["ASSAY_AGENT_CALL"] == "1":
    open("experiments/exp/helpers.py", "w").write("BEST_LR = 0.5\n")
    open(train, "w").write("from helpers import BEST_LR\n" + re.sub(r"^LR = .*$", "LR = BEST_LR", text, flags=re.M))
else:
    open(train, "w").write(re.sub(r"^LR = .*$", "LR = 0.5", text, flags=re.M))
'''


def test_a_refused_proposal_with_new_files_is_set_aside_whole_and_the_next_starts_clean(lab, repo_lab, tmp_path):
    import sys

    from assay.loop.driver import Budget, run_loop
    from assay.loop.proposers import AgentCommand

    agent = tmp_path / "agent.py"
    agent.write_text(NEW_FILE_AGENT)
    start(lab, "exp", "nf", ["train.py"], ["prepare.py"], decision="greedy")
    lines: list[str] = []
    run_loop(lab, "nf", AgentCommand(lab, f"{sys.executable} {agent}", "60s"), Budget(max_iterations=2), lines.append)
    assert lines[0].startswith("refused") and "helpers.py" in lines[0]
    assert lines[1].startswith("keep"), lines
    folder = repo_lab.path / "loops" / "nf"
    assert (folder / "refused-1" / "experiments" / "exp" / "helpers.py").read_text() == "BEST_LR = 0.5\n"
    patch = (folder / "refused-1.patch").read_text()
    assert "+from helpers import BEST_LR" in patch and "+BEST_LR = 0.5" in patch
    assert not (repo_lab.path / "helpers.py").exists()


def test_try_prints_one_line_with_decision_metric_noise_delta_and_reason(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.01"))
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    start(lab, "exp", "line", ["train.py"], ["prepare.py"], repeats=3)
    edit(exp, LR=5.0)
    out = run_cli("try", "lr 5", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line
    assert re.match(r"discard +val_bpb=\d+\.\d+ ±[\d.e-]+ \(n=1\)  Δ -\d+\.\d+ vs best  \[[0-9a-f]{8} lr 5\] worse", line), line


def test_a_second_command_on_a_busy_loop_is_refused_and_a_dead_holder_frees_it(lab, repo_lab):
    import fcntl

    start(lab, "exp", "busy", ["train.py"], ["prepare.py"], decision="greedy")
    edit(repo_lab, LR=0.5)
    lock = repo_lab.path / "loops" / "busy" / "lock"
    with lock.open("a+") as fh:  # another `assay try` holding the loop
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(GitError, match="Another assay command is working on loop 'busy'"):
            try_candidate(lab, "lr 0.5")
        with pytest.raises(GitError, match="Another assay command"):
            resume(lab, "busy")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(lock)],
                              stdout=subprocess.PIPE, text=True)  # a process that dies holding the lock
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(GitError, match="Another assay command"):
            try_candidate(lab, "lr 0.5")
    finally:
        holder.kill()
        holder.wait()
    assert try_candidate(lab, "lr 0.5").decision == "keep"


def test_resume_removes_a_git_lock_left_by_a_killed_try_but_never_a_live_gits(lab, repo_lab):
    start(lab, "exp", "lk", ["train.py"], ["prepare.py"], decision="greedy")
    lock = lab.root / ".git" / "index.lock"
    reader = subprocess.Popen(["git", "cat-file", "--batch"], cwd=repo_lab.path, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)  # a git at work in the repo: its lock is not stale
    try:
        lock.write_text("")
        assert not any("index.lock" in n for n in resume(lab, "lk")["notes"])
        assert lock.exists()
    finally:
        reader.kill()
        reader.wait()
    edit(repo_lab, LR=0.5)
    with pytest.raises(GitError, match="index.lock") as err:  # the try names the cure
        try_candidate(lab, "lr 0.5")
    assert "assay loop resume" in err.value.hint
    git_dir = lab.root / ".git"
    ours = [git_dir / "HEAD.lock", git_dir / "refs" / "heads" / "assay" / "lk.lock", git_dir / "refs" / "assay" / "lk" / "x.lock"]
    for extra in ours:  # what a git killed mid-commit or mid-reset leaves besides the index lock
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_text("")
    theirs = git_dir / "refs" / "heads" / "main.lock"  # the user's branch: not the loop's to clear
    theirs.write_text("")
    notes = " ".join(resume(lab, "lk")["notes"])
    assert all(name in notes for name in ("index.lock", "HEAD.lock", "lk.lock", "x.lock")), notes
    assert not lock.exists() and not any(p.exists() for p in ours) and theirs.exists()
    theirs.unlink()
    assert try_candidate(lab, "lr 0.5").decision == "keep"


def test_a_deleted_state_json_is_rebuilt_by_resume_from_git_and_the_run_folders(lab, loop_lab):
    exp = loop_lab(noise=0.01)
    start(lab, "exp", "gone", ["train.py"], ["prepare.py"], repeats=3)
    edit(exp, LR=0.5)
    assert try_candidate(lab, "lr 0.5").decision == "keep"
    edit(exp, LR=2.0)
    assert try_candidate(lab, "lr 2").decision == "discard"
    before = status(lab, "gone")
    state = exp.path / "loops" / "gone" / "state.json"
    state.unlink()

    edit(exp, LR=0.4)
    with pytest.raises(GitError, match="lost its state.json") as err:
        try_candidate(lab, "lr 0.4")
    assert "assay loop resume gone" in err.value.hint
    resume(lab, "gone")
    after = status(lab, "gone")
    for key in ("editable", "protected", "best_commit", "best_n", "iterations", "counts"):
        assert after[key] == before[key], key
    assert after["best"] == pytest.approx(before["best"])
    assert after["sigma"] == pytest.approx(before["sigma"]) and after["sigma_df"] == before["sigma_df"]

    (exp.path / "prepare.py").write_text(PREPARE + "# edited\n")  # the evaluation is still fixed
    with pytest.raises(GitError, match="Protected file"):
        try_candidate(lab, "lr 0.4")
    git(lab.root, "checkout", "--", "experiments/exp/prepare.py")
    edit(exp, LR=2.0)
    with pytest.raises(GitError, match="already tried"):  # and the repetition guard remembers
        try_candidate(lab, "lr 2 again")
