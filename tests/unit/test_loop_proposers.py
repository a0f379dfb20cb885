"""Proposers: a conformance suite every built-in passes (edits only editable files, returns a one-line
description, accepts every outcome), then each one's own promises. The agent here is a scripted
shell command standing in for an LLM coding CLI, which cannot run in tests."""

from __future__ import annotations

import sys
import time

import pytest

from assay.errors import ConfigError, PluginError
from assay.loop.proposers import PROPOSERS, AgentCommand, make_proposer
from assay.loop.state import LoopState

TRAIN = "LR = 1.0\nprint('val_bpb:', 1 + (LR - 0.3) ** 2)\n"
# Rewrites LR in train.py and describes the change, as a coding agent would.
SCRIPTED_AGENT = (f"{sys.executable} -c \"import os,re; p='experiments/exp/train.py'; "
                  "t=open(p).read(); open(p,'w').write(re.sub(r'LR = .*', 'LR = 0.5', t)); "
                  "open(os.environ['ASSAY_DESC_FILE'],'w').write('lr 0.5')\"")


@pytest.fixture
def loop_state(lab, make_experiment):
    exp = make_experiment(TRAIN, config={"seed": 0, "lr": 0.01, "model": {"depth": 4}, "name": "x"})
    (exp.path / "prepare.py").write_text("FIXED = 1\n")
    st = LoopState(tag="conf", experiment="exp", editable=["experiments/exp/train.py", "experiments/exp/config.yaml"],
                   protected={"experiments/exp/prepare.py": None})
    return exp, st


def snapshot(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*")
            if p.is_file() and "loops" not in p.relative_to(path).parts}


@pytest.fixture(params=sorted(PROPOSERS))
def proposer(request, lab, loop_state):
    _, st = loop_state
    if request.param == "agent":
        return make_proposer(lab, st, "min", SCRIPTED_AGENT, None, agent_timeout="60s")
    return make_proposer(lab, st, "min", None, request.param)


def test_every_proposer_changes_only_editable_files_and_describes_it(lab, loop_state, proposer):
    exp, st = loop_state
    before = snapshot(exp.path)
    desc = proposer.propose("# brief\nminimize val_bpb", st)
    after = snapshot(exp.path)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert changed and changed <= {"train.py", "config.yaml"}
    assert desc is None or (isinstance(desc, str) and desc.strip() and "\n" not in desc)


def test_every_proposer_accepts_every_outcome(lab, loop_state, proposer):
    _, st = loop_state
    for outcome, value in (("keep", 1.2), ("discard", 1.5), ("crash", None), ("refused", None)):
        proposer.propose("brief", st)
        proposer.observe("idea", outcome, value)


def test_unknown_proposer_lists_the_known_ones(lab, loop_state):
    with pytest.raises(PluginError, match="Unknown proposer 'parms'.*agent, params.*Did you mean 'params'"):
        make_proposer(lab, loop_state[1], "min", None, "parms")


def test_agent_gets_the_brief_and_its_output_goes_to_a_file(lab, loop_state):
    _, st = loop_state
    agent = AgentCommand(lab, 'echo "brief says: $ASSAY_PROMPT"; cat "$ASSAY_PROMPT_FILE" >&2', "30s")
    assert agent.propose("minimize val_bpb", st) == "agent iteration 1"  # no description written
    log = (lab.experiment_dir("exp") / "loops" / "conf" / "agent-1.log").read_text()
    assert log.count("minimize val_bpb") == 2


def test_agent_call_past_its_timeout_is_stopped_with_its_children(lab, loop_state):
    _, st = loop_state
    agent = AgentCommand(lab, "sleep 60 & sleep 60; wait", "1s")
    t0 = time.monotonic()
    agent.propose("brief", st)
    assert time.monotonic() - t0 < 15


def test_params_proposer_needs_an_editable_config_and_known_numeric_keys(lab, loop_state):
    _, st = loop_state
    only_train = LoopState(tag="t", experiment="exp", editable=["experiments/exp/train.py"], protected={})
    with pytest.raises(ConfigError, match="config.yaml, which is not editable"):
        make_proposer(lab, only_train, "min", None, "params")
    with pytest.raises(ConfigError, match="Unknown numeric param 'l'.*config.yaml"):
        make_proposer(lab, st, "min", None, "params", keys=["l"])
    p = make_proposer(lab, st, "min", None, "params", keys=["model.depth"])
    assert p.propose("brief", st).startswith("model.depth=")
