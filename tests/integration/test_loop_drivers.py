"""`assay loop run` with a scripted agent (standing in for an LLM coding CLI, which cannot run
here) and with the built-in params proposer; the brief; the progress plot from results.tsv."""

from __future__ import annotations

import json
import sys

import pytest

from assay.loop import results
from assay.loop.brief import brief
from assay.loop.driver import Budget, run_loop
from assay.loop.progress import progress_plot
from assay.loop.proposers import AgentCommand, ParamsProposer, make_proposer
from assay.loop.ratchet import start, status, try_candidate
from assay.loop.state import find_by_tag
from tests.conftest import run_cli
from tests.integration.conftest import commit_baseline, edit

# A scripted "agent": each call makes the next edit of a fixed plan, chosen by $ASSAY_AGENT_CALL:
# a real improvement, a no-op, an edit of the protected file, a crash and its fix.
AGENT = r'''
import os, re, sys
n = int(os.environ["ASSAY_AGENT_CALL"])
assert "Protocol" in os.environ["ASSAY_PROMPT"]
train = "experiments/exp/train.py"
text = open(train).read()
plan = {
    1: ("lr 0.5", lambda t: re.sub(r"^LR = .*$", "LR = 0.5", t, flags=re.M)),
    2: ("no-op", lambda t: t),
    3: ("cheat", None),
    4: ("crash", lambda t: re.sub(r"^DEPTH = .*$", "DEPTH = missing_name", t, flags=re.M)),
    5: ("fix crash: depth 4", lambda t: re.sub(r"^DEPTH = .*$", "DEPTH = 4", t, flags=re.M)),
}
desc, change = plan[n]
if change is None:
    open("experiments/exp/prepare.py", "a").write("# tampered\n")
else:
    open(train, "w").write(change(text))
open(os.environ["ASSAY_DESC_FILE"], "w").write(desc + "\n")
print("agent did", desc)
'''


def test_agent_command_drives_every_guard(lab, repo_lab, tmp_path):
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    start(lab, "exp", "ag", ["train.py"], ["prepare.py"], decision="greedy")
    st = find_by_tag(lab, "ag")
    lines: list[str] = []
    why = run_loop(lab, "ag", AgentCommand(lab, f"{sys.executable} {agent}", "60s"), Budget(max_iterations=5), lines.append)
    assert why == "max iterations (5)"
    assert lines[0].startswith("keep") and "lr 0.5" in lines[0]
    assert lines[1].startswith("refused") and "empty" in lines[1]
    assert lines[2].startswith("refused") and "Protected file" in lines[2]
    assert lines[3].startswith("crash")
    assert lines[4].startswith("keep") and "depth 4" in lines[4]  # the fix went through --retry
    assert "# tampered" not in (repo_lab.path / "prepare.py").read_text()  # the refused edit was cleared...
    refused = list((lab.experiment_dir("exp") / "loops" / "ag").glob("refused-*.patch"))
    assert any("# tampered" in p.read_text() for p in refused)  # ...but kept as a patch
    assert (lab.experiment_dir("exp") / "loops" / "ag" / "agent-1.log").read_text().startswith("agent did lr 0.5")
    s = status(lab, "ag")
    assert s["best"] == pytest.approx(1.04)  # lr 0.5 and depth 4 both kept
    assert s["protected"] == list(st.protected)


def test_params_proposer_tunes_config_through_the_same_decisions(lab, make_experiment):
    exp = make_experiment("""
        import assay
        p = assay.params()
        print("val_bpb:", 1 + (p["lr"] - 0.3) ** 2)
        """, config={"seed": 0, "lr": 1.0})
    commit_baseline(lab.root)
    start(lab, "exp", "pp", ["config.yaml"], ["train.py"], decision="greedy")
    st = find_by_tag(lab, "pp")
    proposer = make_proposer(lab, st, "min", None, "params")
    assert isinstance(proposer, ParamsProposer) and proposer.study is not None  # Optuna is installed
    why = run_loop(lab, "pp", proposer, Budget(max_iterations=6, plateau=None), lambda s: None)
    assert why == "max iterations (6)"
    rows = results.read(exp.path / "results.tsv")
    assert len(rows) == 7 and all(r.description.startswith("lr=") for r in rows[1:])
    best = min(float(r.mean) for r in rows if r.status == "keep")
    assert best < 1.49  # the baseline is 1.49; something closer to lr=0.3 was found and kept
    assert status(lab, "pp")["best"] == pytest.approx(best, rel=1e-5)  # results.tsv keeps 6 digits


def test_brief_is_bounded_and_says_what_matters(lab, repo_lab):
    start(lab, "exp", "br", ["train.py"], ["prepare.py"], decision="greedy")
    for i in range(30):
        edit(repo_lab, LR=2 + i)
        try_candidate(lab, f"idea {i} " + "x" * 300)
    from assay.journal import add_note

    add_note(repo_lab.path, "[TODO] try a deeper model")
    text = brief(lab, find_by_tag(lab, "br"))
    assert len(text) <= 6000
    assert "minimize val_bpb" in text and "experiments/exp/prepare.py" in text and "try a deeper model" in text
    assert "Last 10 results (of 31)" in text
    out = run_cli("loop", "prompt", cwd=lab.root)
    assert out.returncode == 0 and out.stdout == text


def test_progress_plot_is_drawn_from_results_only(lab, repo_lab):
    start(lab, "exp", "pl", ["train.py"], ["prepare.py"], decision="greedy")
    for lr in (0.5, 3.0, 0.4):
        edit(repo_lab, LR=lr)
        try_candidate(lab, f"lr {lr}")
    out = progress_plot(lab, find_by_tag(lab, "pl"))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    side = json.loads(out.with_suffix(".json").read_text())
    rows = results.read(repo_lab.path / "results.tsv")
    assert [p["value"] for p in side["points"]] == [float(r.mean) for r in rows]
    assert side["running_best"] == pytest.approx([1.69, 1.24, 1.24, 1.21])


# A random forest as the house-prices task has it: max_features above 1.0 is an error, not a worse score.
FOREST = """
import assay
p = assay.params()
if p["max_features"] > 1.0:
    raise ValueError(f"max_features must be in (0, 1], got {p['max_features']}")
print("val_bpb:", 1 + (p["max_features"] - 0.6) ** 2 + 0.01 * (p["min_samples_leaf"] - 3) ** 2)
"""
FOREST_CONFIG = "# forest\nmax_features: 0.9   # share of features per split\nmin_samples_leaf: 1\nseed: 0\n"


def _configs(repo_root, rows):
    from tests.integration.conftest import git

    return [git(repo_root, "show", f"{r.commit}:experiments/exp/config.yaml") for r in rows]


def test_params_proposer_stays_in_bounds_never_repeats_and_keeps_comments(lab, make_experiment):
    exp = make_experiment(FOREST)
    (exp.path / "config.yaml").write_text(FOREST_CONFIG)
    commit_baseline(lab.root)
    start(lab, "exp", "forest", ["config.yaml"], ["train.py"], decision="greedy")
    why = run_loop(lab, "forest", make_proposer(lab, find_by_tag(lab, "forest"), "min", None, "params"),
                   Budget(max_iterations=8, plateau=None), lambda s: None)
    assert why == "max iterations (8)"
    rows = results.read(exp.path / "results.tsv")
    assert len(rows) == 9 and [r.status for r in rows].count("crash") == 0  # a fraction stays <= 1.0
    configs = _configs(lab.root, rows)
    assert len(set(configs)) == len(configs)  # no configuration ran twice
    assert all(c.startswith("# forest\n") and "# share of features per split" in c for c in configs)
    again = ParamsProposer(lab, find_by_tag(lab, "forest"), "min")  # a later session knows what was tried
    assert len(again.tried) == 9


class Crashing:
    """Each call writes a new config.yaml value that makes the script crash: distinct ideas, all broken."""

    def __init__(self, config) -> None:
        self.config, self.calls = config, 0

    def propose(self, brief, st):
        self.calls += 1
        self.config.write_text(FOREST_CONFIG.replace("max_features: 0.9", f"max_features: {1 + self.calls}"))
        return f"max_features {1 + self.calls}"

    def observe(self, description, decision, value):
        return None


def test_crashes_stop_the_loop_apart_from_the_plateau_and_each_is_a_new_idea(lab, make_experiment):
    exp = make_experiment(FOREST)
    (exp.path / "config.yaml").write_text(FOREST_CONFIG)
    commit_baseline(lab.root)
    start(lab, "exp", "cr", ["config.yaml"], ["train.py"], decision="greedy", max_retries=2)
    lines: list[str] = []
    why = run_loop(lab, "cr", Crashing(exp.path / "config.yaml"), Budget(max_iterations=10, plateau=2, max_crashes=3),
                   lines.append)
    assert why.startswith("max crashes: 3 crashes in a row (last: failed") and "--max-crashes" in why
    rows = results.read(exp.path / "results.tsv")[1:]
    assert [r.status for r in rows] == ["crash"] * 3  # plateau=2 did not stop it: crashes measure nothing
    assert not any("dropped" in r.reason for r in rows)
    assert all("(1/2)" in line for line in lines)  # each crash a first attempt: three ideas, none a retry


def test_params_proposer_after_a_crash_proposes_from_the_best_config(lab, make_experiment):
    exp = make_experiment(FOREST)
    (exp.path / "config.yaml").write_text(FOREST_CONFIG)
    commit_baseline(lab.root)
    start(lab, "exp", "pc", ["config.yaml"], ["train.py"], decision="greedy")
    st = find_by_tag(lab, "pc")
    proposer = make_proposer(lab, st, "min", None, "params", space=["max_features=interval(0.5,2.0)"])
    lines: list[str] = []
    why = run_loop(lab, "pc", proposer, Budget(max_iterations=10, plateau=None, max_crashes=None), lines.append)
    assert why == "max iterations (10)"
    rows = results.read(exp.path / "results.tsv")
    assert any(r.status == "crash" for r in rows) and not any("dropped" in r.reason for r in rows)
    for row, config in zip(rows[1:], _configs(lab.root, rows)[1:]):
        assert "min_samples_leaf: 1\n" in config and config.startswith("# forest\n")  # only the proposed key moved
        assert row.description.startswith("max_features=")
    crashes = [line for line in lines if line.startswith("crash")]
    assert crashes and all("(1/2)" in line for line in crashes)  # each crash a first attempt: the next proposal a new idea
