"""SIGKILL `assay try` at random points (seeded), then `assay loop resume`: git, results.tsv and the runs agree.

The kill lands anywhere in a try: before the commit, between the commit and the runs, during a
run, between the results.tsv row and the branch reset. After `loop resume`:
- results.tsv reads cleanly and every row names a commit that exists;
- the branch head is the best commit: the last 'keep' row's commit (or the baseline);
- a tried commit is under refs/assay/TAG/tried/N; main never moved;
- the candidate's edits are either decided (in a row) or back in the work tree, never lost;
- `assay status` leaves nothing 'running', and the loop goes on: the next try works.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess

import pytest

from assay.loop import results
from assay.loop.ratchet import start, status, try_candidate
from tests.conftest import ASSAY, git, run_cli

TRAIN = """\
import time
LR = 1.0
time.sleep(0.2)
print("val_bpb:", 1.0 + (LR - 0.3) ** 2)
"""
SEEDS = [int(s) for s in os.environ.get("ASSAY_FAULT_SEEDS", "1,2,3,4,5,6").split(",")]


@pytest.fixture
def loop(lab, make_experiment):
    exp = make_experiment(TRAIN, timeout="60s")
    git(lab.root, "init", "-q", "-b", "main")
    git(lab.root, "add", "-A")
    git(lab.root, "commit", "-qm", "baseline")
    main = git(lab.root, "rev-parse", "main")
    start(lab, "exp", "k", ["train.py"], [], decision="greedy")
    return exp, main


def _set_lr(exp, lr: float) -> None:
    text = (exp.path / "train.py").read_text()
    (exp.path / "train.py").write_text(re.sub(r"^LR = .*$", f"LR = {lr}", text, flags=re.M))


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_of_try_at_a_random_point_is_recovered_by_resume(lab, loop, seed):
    exp, main = loop
    rng = random.Random(seed)
    _set_lr(exp, 0.5)
    assert try_candidate(lab, "lr 0.5").decision == "keep"  # one decided row before the kill
    lr = rng.choice([0.2, 0.4, 2.0])  # a keep (0.2, 0.4) or a discard (2.0)
    _set_lr(exp, lr)
    proc = subprocess.Popen([*ASSAY, "try", f"lr {lr}"], cwd=lab.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        proc.wait(timeout=rng.uniform(0.0, 2.0))  # the random kill point; finishing first is fine too
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the loop and the script it runs die together
    proc.wait(timeout=30)

    out = run_cli("loop", "resume", "k", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    rows = results.read(exp.path / "results.tsv")
    for r in rows:
        assert git(lab.root, "cat-file", "-t", r.commit) == "commit"
    keeps = [r for r in rows if r.status == "keep"]
    head = git(lab.root, "rev-parse", "HEAD")
    assert head.startswith(keeps[-1].commit), (head, [(r.commit, r.status) for r in rows])
    assert git(lab.root, "rev-parse", "--abbrev-ref", "HEAD") == "assay/k"
    assert git(lab.root, "rev-parse", "main") == main
    for ref in git(lab.root, "for-each-ref", "--format=%(refname)", "refs/assay/k/tried/").split():
        assert git(lab.root, "cat-file", "-t", ref) == "commit"

    text = (exp.path / "train.py").read_text()
    decided = [r for r in rows if r.description == f"lr {lr}"]
    if decided and decided[-1].status in ("keep", "discard"):  # the try finished its decision
        committed = git(lab.root, "show", f"{decided[-1].commit}:experiments/exp/train.py")
        assert f"LR = {lr}" in committed
        assert (f"LR = {lr}" in text) == (decided[-1].status == "keep")
    else:  # killed before a decision: the edits were never lost
        assert f"LR = {lr}" in text, "the candidate's edits vanished"

    st = json.loads(run_cli("status", "--json", cwd=lab.root).stdout)
    assert st["running"] == []
    s = status(lab, "k")
    assert s["best_commit"] == head

    _set_lr(exp, 0.3)  # the loop goes on
    assert try_candidate(lab, "lr 0.3", force=True).decision in ("keep", "discard")
    rows_after = results.read(exp.path / "results.tsv")
    assert len(rows_after) == len(rows) + 1
