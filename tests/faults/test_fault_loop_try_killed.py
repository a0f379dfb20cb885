"""After `kill -9` of `assay try` mid-run, the next `assay try` points to `assay loop resume` (the
try was never decided), not to `--force`; after the resume, the usual repeat guard applies."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from tests.conftest import ASSAY, git, run_cli, wait_for
from tests.integration.conftest import PREPARE, TRAIN, commit_baseline

HANG = "import time\nwhile True:\n    time.sleep(0.05)  # a candidate that never finishes\n"


def test_try_after_a_killed_try_names_loop_resume_not_force(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    assert run_cli("loop", "start", "exp", "--tag", "k9", "--edit", "train.py", "--decision", "greedy",
                   cwd=lab.root).returncode == 0
    (exp.path / "train.py").write_text(TRAIN.replace("NOISE", "0.0").replace("LR = 1.0", "LR = 0.5") + HANG)
    proc = subprocess.Popen([*ASSAY, "try", "lr 0.5 (hangs)"], cwd=lab.root, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def running_child() -> int | None:
        for rj in (exp.path / "runs").glob("*/run.json"):
            rec = json.loads(rj.read_text() or "{}")
            if rec.get("status") == "running" and rec.get("child_pid") and "lr-0.5" in rec["desc"]:
                return rec["child_pid"]
        return None

    try:
        child = wait_for(running_child, what="the candidate's script to start")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 of `assay try`, mid-run
        proc.wait()
    os.killpg(child, signal.SIGKILL)  # and of its script (its own process group)

    again = run_cli("try", "lr 0.5 (hangs)", cwd=lab.root)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert "interrupted before a decision" in again.stderr and "assay loop resume k9" in again.stderr
    assert "--force" not in again.stderr
    assert git(lab.root, "for-each-ref", "refs/assay/k9/tried/").count("\n") == 0  # still the one try

    assert run_cli("loop", "resume", "k9", cwd=lab.root).returncode == 0
    after = run_cli("try", "lr 0.5 (hangs)", cwd=lab.root)
    assert after.returncode == 1 and "already tried" in after.stderr and "--force" in after.stderr
