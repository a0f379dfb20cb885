"""`assay loop run --parallel N --executor ray`: candidates' runs as Ray tasks on a real local Ray
instance (two CPUs, as the executor conformance tests start it). Workers get each candidate's
code as a snapshot of its worktree (the candidate commit as a git bundle) and send the run's
files back; the metric must be the one of the candidate's own edit, not of the best or the lab's
work tree. The "agent" is the scripted command of test_loop_parallel.py (an LLM coding CLI cannot
run here)."""

from __future__ import annotations

import json
import re

import pytest

from assay.loop import results
from assay.loop.driver import Budget
from assay.loop.parallel import run_parallel, worktrees_dir
from assay.loop.proposers import AgentCommand
from assay.loop.ratchet import start
from tests.conftest import git
from tests.integration.conftest import PREPARE, commit_baseline
from tests.integration.test_loop_parallel import AGENT, _agent_cmd

ray = pytest.importorskip("ray")

# Records where it ran, so that the test can tell a worker's scratch copy from the worktree.
TRAIN = """\
import json, os
from prepare import evaluate
LR = 1.0
# -
# -
# -
DEPTH = 2
HOLD = ""
with open(os.path.join(os.environ["ASSAY_RUN_DIR"], "data", "where.json"), "w") as fh:
    json.dump({"file": os.path.abspath(__file__), "cwd": os.getcwd()}, fh)
print("val_bpb:", evaluate(LR, DEPTH))
"""



def _evaluate(text: str) -> float:
    """What PREPARE's evaluate gives for the constants in a version of train.py."""
    lr = float(re.search(r"^LR = (.*)$", text, re.M).group(1))
    depth = float(re.search(r"^DEPTH = (.*)$", text, re.M).group(1))
    return 1.0 + (lr - 0.3) ** 2 + 0.05 * (depth - 4) ** 2


def test_a_parallel_loop_on_ray_measures_each_candidates_own_commit(lab, make_experiment, tmp_path, ray_local):
    exp = make_experiment(TRAIN, timeout="90s")
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT.format())
    start(lab, "exp", "ray", ["train.py"], ["prepare.py"], decision="greedy")
    plan = {"1": {"LR": 0.5}, "2": {"DEPTH": 3}, "3": {"LR": 0.7}}
    lines: list[str] = []

    why = run_parallel(lab, "ray", AgentCommand(lab, _agent_cmd(agent, plan, tmp_path / "no-gate"), "60s"),
                       Budget(max_iterations=3, plateau=None), 2, lines.append, executor="ray")

    assert why == "max iterations (3)"
    rows = [r for r in results.read(exp.path / "results.tsv") if r.tag == "ray"][1:]
    assert len(rows) == 3 and {r.description for r in rows} == {"LR=0.5", "DEPTH=3", "LR=0.7"}
    assert {r.status for r in rows} <= {"keep", "discard"} and "keep" in {r.status for r in rows}
    lab_root = str(lab.root.resolve())
    measured = 0
    for row in rows:
        for rid in row.runs.split():
            run = exp.runs_dir / rid.split("/", 1)[1]
            rec = json.loads((run / "run.json").read_text())
            assert rec["status"] == "ok", rec.get("reason")
            assert rec["tags"]["candidate"] and "/.assay/loop/ray/wt/" in rec["cwd"]
            code = git(lab.root, "show", f"{rec['tags']['commit']}:experiments/exp/train.py")
            assert rec["metrics"]["val_bpb"]["last"] == pytest.approx(_evaluate(code))  # its commit's code, nothing else
            where = json.loads((run / "data" / "where.json").read_text())
            assert not where["file"].startswith(lab_root), where  # a worker's copy: neither the worktree nor the lab
            measured += 1
    assert measured >= 3
    best = git(lab.root, "show", "assay/ray:experiments/exp/train.py")
    kept = [r for r in rows if r.status == "keep"]
    assert float(kept[-1].mean) == pytest.approx(_evaluate(best))
    assert git(lab.root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(lab.root, "for-each-ref", "refs/assay/ray/cand/") == ""
    assert not worktrees_dir(lab, "ray").exists() or not any(worktrees_dir(lab, "ray").iterdir())
