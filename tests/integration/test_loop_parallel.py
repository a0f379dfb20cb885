"""`assay loop run --parallel N`: candidates in their own worktrees on the local slot pool, decided
one at a time against the best at their start; `loop resume` after a SIGKILL of the whole run.

The "agent" is a scripted command (an LLM coding CLI cannot run here): call N of it makes the
N-th edit of a fixed plan in its working directory, the candidate's worktree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from assay.loop import results
from assay.loop.driver import Budget
from assay.loop.parallel import run_parallel, worktrees_dir
from assay.loop.proposers import AgentCommand
from assay.loop.ratchet import start
from assay.loop.state import find_by_tag
from tests.conftest import ASSAY, git, run_cli, wait_for
from tests.integration.conftest import PREPARE, commit_baseline

# LR and DEPTH lie far apart, so that edits of one and of the other merge without a conflict.
# HOLD: a file the run waits for (up to 60 s). WAIT_KEEPS: the run waits until results.tsv holds
# that many keeps, so that this candidate finishes after another was kept (the best moved).
TRAIN = """\
import os, time
from prepare import evaluate
LR = 1.0
# -
# -
# -
DEPTH = 2
HOLD = ""
WAIT_KEEPS = 0
# -
# -
# -
RESULTS = {results!r}
end = time.time() + 60
while HOLD and not os.path.exists(HOLD) and time.time() < end:
    time.sleep(0.05)
while WAIT_KEEPS and open(RESULTS).read().count("\\tkeep\\t") < WAIT_KEEPS and time.time() < end:
    time.sleep(0.05)
print("val_bpb:", evaluate(LR, DEPTH))
"""

# Each call edits experiments/exp/train.py in its own working directory (the worktree); PLAN maps
# the call number to the constants it sets (calls past the plan: hold on GATE, a new LR each).
AGENT = """\
import json, os, re, sys
n = int(os.environ["ASSAY_AGENT_CALL"])
assert os.path.realpath(os.getcwd()) == os.path.realpath(os.environ["ASSAY_WORKTREE"]), "the agent runs in its worktree"
assert "Parallel loop" in os.environ["ASSAY_PROMPT"]
plan = json.loads(sys.argv[1])
gate = sys.argv[2]
consts = plan.get(str(n)) or {{"LR": round(0.3 + n / 100, 2), "HOLD": repr(gate)}}
path = "experiments/exp/train.py"
text = open(path).read()
for k, v in consts.items():
    text = re.sub(rf"^{{k}} = .*$", f"{{k}} = {{v}}", text, flags=re.M)
open(path, "w").write(text)
open(os.environ["ASSAY_DESC_FILE"], "w").write(" ".join(f"{{k}}={{v}}" for k, v in consts.items()) + "\\n")
"""


@pytest.fixture
def par_lab(lab, make_experiment, tmp_path):
    exp = make_experiment(TRAIN.format(results=str(lab.experiment_dir("exp") / "results.tsv")), timeout="90s")
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT.format())
    return exp, agent


def _agent_cmd(agent, plan: dict, gate) -> str:
    return f"{sys.executable} {agent} '{json.dumps(plan)}' {gate}"


def _rows(lab, tag: str) -> list[results.Row]:
    return [r for r in results.read(lab.experiment_dir("exp") / "results.tsv") if r.tag == tag]


def test_kill_of_a_parallel_loop_then_resume_leaves_no_worktree_ref_or_lock(lab, par_lab, tmp_path):
    _, agent = par_lab
    gate = tmp_path / "gate"
    start(lab, "exp", "t", ["train.py"], ["prepare.py"], decision="greedy")
    plan = {"1": {"LR": 0.5}, "2": {"DEPTH": 4}}  # two real improvements, then candidates that hold
    proc = subprocess.Popen([*ASSAY, "loop", "run", "t", "--parallel", "2", "--max-iterations", "8", "--plateau", "100",
                             "--agent", _agent_cmd(agent, plan, gate)],
                            cwd=lab.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def two_held() -> dict | None:
            out = run_cli("loop", "status", "t", "--json", cwd=lab.root)
            s = json.loads(out.stdout)
            cands = s["in_flight"]["candidates"]
            held = [c for c in cands if "HOLD" in c["description"] and c["phase"] == "running"]
            return s if len(held) == 2 and len(_rows(lab, "t")) == 3 else None

        s = wait_for(two_held, 120, "two candidates in flight after two decisions")
        assert s["in_flight"]["pid"] == proc.pid
        worktrees = [c["worktree"] for c in s["in_flight"]["candidates"]]
        assert all(os.path.isdir(w) for w in worktrees)
        assert {c["ref"] for c in s["in_flight"]["candidates"]} == set(git(lab.root, "for-each-ref", "--format=%(refname)",
                                                                         "refs/assay/t/cand/").split())
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        gate.write_text("")  # the held runs end by themselves (they outlive the killed loop)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    killed = json.loads(run_cli("loop", "status", "t", "--json", cwd=lab.root).stdout)["in_flight"]
    assert killed["candidates"] == [] and len(killed["leftovers"]) == 2  # the driver is gone, its worktrees are not

    out = run_cli("loop", "resume", "t", "--json", cwd=lab.root)
    assert out.returncode == 0, out.stdout + out.stderr
    notes = " ".join(json.loads(out.stdout)["notes"])
    assert "removed 2 candidate worktree(s)" in notes and "deleted 2 candidate ref(s)" in notes

    rows = _rows(lab, "t")
    assert [r.description for r in rows][0] == "baseline" and len(rows) == 3  # the killed candidates left no row
    assert {r.status for r in rows[1:]} <= {"keep", "discard"} and rows[1].status == "keep"
    assert git(lab.root, "for-each-ref", "refs/assay/t/cand/") == ""
    tried = git(lab.root, "for-each-ref", "--format=%(refname)", "refs/assay/t/tried/").split()
    assert len(tried) == 4  # every committed candidate stays reachable, the killed ones included
    assert git(lab.root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not any(worktrees_dir(lab, "t").iterdir()) if worktrees_dir(lab, "t").exists() else True
    assert not list((lab.root / ".git").rglob("*.lock"))
    keeps = [r for r in rows if r.status == "keep"]
    head = git(lab.root, "rev-parse", "assay/t")
    assert head.startswith(keeps[-1].commit)
    assert git(lab.root, "rev-parse", "--abbrev-ref", "HEAD") == "assay/t"
    assert git(lab.root, "status", "--porcelain", "--", "experiments/exp/train.py") == ""
    after = json.loads(run_cli("loop", "status", "t", "--json", cwd=lab.root).stdout)
    assert after["in_flight"] == {"pid": None, "slots": None, "candidates": [], "leftovers": []}
    assert after["best_commit"] == head


@pytest.mark.parametrize("second, outcome", [
    ({"DEPTH": 4, "WAIT_KEEPS": 2}, "keep"),  # merges with the new best, and wins there too
    ({"LR": 0.8, "WAIT_KEEPS": 2}, "conflict"),  # edits the line the new best changed
])
def test_candidate_overtaken_by_a_newer_best_is_remeasured_on_it_before_a_keep(lab, par_lab, tmp_path, second, outcome):
    _, agent = par_lab
    start(lab, "exp", "r", ["train.py"], ["prepare.py"], decision="greedy")
    plan = {"1": {"LR": 0.5}, "2": second}
    lines: list[str] = []
    # Both candidates start off the baseline; call 2 waits until call 1 is kept, so it finishes
    # against a best that moved. (Which worktree gets which call does not matter.)
    why = run_parallel(lab, "r", AgentCommand(lab, _agent_cmd(agent, plan, tmp_path / "no-gate"), "60s"),
                       Budget(max_iterations=2), 2, lines.append)
    assert why == "max iterations (2)"
    rows = _rows(lab, "r")
    assert [r.status for r in rows[:2]] == ["keep", "keep"] and rows[1].description == "LR=0.5"
    last = rows[2]
    first_keep = git(lab.root, "rev-parse", rows[1].commit)
    head = git(lab.root, "rev-parse", "assay/r")
    tagged = {json.loads((lab.experiment_dir("exp") / "runs" / rid.split("/", 1)[1] / "run.json").read_text())["tags"]["commit"]
              for rid in last.runs.split()}
    if outcome == "keep":
        assert last.status == "keep" and "rebased onto" in last.reason, last.reason
        assert git(lab.root, "rev-parse", f"{head}~1") == first_keep  # replayed on the new best, not merged
        assert head.startswith(last.commit)
        assert len(tagged) == 2 and head[:12] in tagged  # measured on its base, then again on the new best
        text = git(lab.root, "show", "assay/r:experiments/exp/train.py")
        assert "LR = 0.5" in text and "DEPTH = 4" in text
        assert float(last.mean) == pytest.approx(1.04)
        assert any(line.startswith("rebase") for line in lines)
    else:
        assert last.status == "discard" and last.reason.startswith("conflict"), last.reason
        assert head == first_keep
    assert git(lab.root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(lab.root, "for-each-ref", "refs/assay/r/cand/") == ""


def test_parallel_params_proposals_are_distinct_and_each_runs_in_its_worktree(lab, make_experiment):
    make_experiment(textwrap.dedent("""
        import assay
        p = assay.params()
        print("val_bpb:", 1 + (p["depth"] - 4) ** 2)
        """), config={"seed": 0, "depth": 1})
    commit_baseline(lab.root)
    start(lab, "exp", "p", ["config.yaml"], ["train.py"], decision="greedy")
    out = run_cli("loop", "run", "p", "--parallel", "2", "--propose", "params", "--space", "depth=range(1,6)",
                  "--max-iterations", "4", "--plateau", "100", "--json", cwd=lab.root)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["parallel"] == 2
    rows = _rows(lab, "p")[1:]
    assert len(rows) == 4
    assert len({r.description for r in rows}) == 4  # never the same proposal twice, in flight or decided
    assert "depth=1" not in {r.description for r in rows}  # nor the baseline's
    for r in rows:
        rid = r.runs.split()[0].split("/", 1)[1]
        rec = json.loads((lab.experiment_dir("exp") / "runs" / rid / "run.json").read_text())
        assert "/.assay/loop/p/wt/" in rec["cwd"]  # ran from the candidate's worktree; its folder is in the lab
    assert git(lab.root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert find_by_tag(lab, "p").best_commit == git(lab.root, "rev-parse", "assay/p")
    import assay.loop

    st = assay.loop.status("p", lab=lab)  # the Python front door gives what --json prints
    assert st.in_flight["candidates"] == [] and st.to_dict()["best_commit"] == st.best_commit


def test_address_without_the_ray_executor_is_refused_before_any_candidate_starts(lab, par_lab):
    start(lab, "exp", "x", ["train.py"], ["prepare.py"], decision="greedy")
    out = run_cli("loop", "run", "x", "--parallel", "2", "--agent", "true", "--address", "127.0.0.1:6379", cwd=lab.root)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "The local executor takes no options, got address" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert git(lab.root, "for-each-ref", "refs/assay/x/cand/") == "" and not worktrees_dir(lab, "x").exists()


def test_an_unknown_executor_is_refused_with_the_known_ones(lab, par_lab):
    start(lab, "exp", "u", ["train.py"], ["prepare.py"], decision="greedy")
    out = run_cli("loop", "run", "u", "--parallel", "2", "--agent", "true", "--executor", "rayy", cwd=lab.root)
    assert out.returncode != 0
    assert "rayy" in out.stdout + out.stderr and "ray" in (out.stdout + out.stderr).replace("rayy", "")
    assert "Traceback" not in out.stdout + out.stderr
