"""Proposers: a conformance suite every built-in passes (edits only editable files, returns a one-line
description, accepts every outcome), then each one's own promises. The agent here is a scripted
shell command standing in for an LLM coding CLI, which cannot run in tests."""

from __future__ import annotations

import sys
import time

import pytest

from assay.config import flatten, load_yaml
from assay.errors import ConfigError, PluginError
from assay.loop.proposers import PROPOSERS, AgentCommand, Exhausted, ParamsProposer, infer_space, make_proposer, rewrite_config
from assay.loop.state import LoopState
from assay.sweep.space import Range, space_from_args

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


def test_inferred_space_keeps_types_signs_and_fractions():
    space = infer_space({"seed": 3, "lr": 0.01, "max_features": 1.0, "depth": 4, "warmup": 0, "scale": 3.0, "shift": -2.0,
                         "offset": -8, "wd": 0.0, "on": True, "name": "x", "dims": [1, 2]})
    assert space.dims == {
        "lr": Range(0.001, 1.0, log=True), "max_features": Range(0.1, 1.0, log=True),  # fractions stay <= 1
        "depth": Range(1, 16, log=True, integer=True), "warmup": Range(0, 4, integer=True),
        "scale": Range(0.3, 30.0, log=True), "shift": Range(-20.0, -0.2), "offset": Range(-32, -1, integer=True),
        "wd": Range(0.0, 1.0)}


@pytest.fixture(params=["optuna", "local steps"])
def sampler(request):
    """Both ways of proposing: Optuna's TPE, and the local steps used when Optuna is not installed
    (the proposer's own code path, selected by dropping its study)."""
    return request.param


def _proposer(lab, st, sampler, **kw):
    p = ParamsProposer(lab, st, "min", **kw)
    if sampler == "local steps":
        p.study = None
    return p


def test_params_proposer_never_leaves_the_inferred_bounds(lab, make_experiment, sampler):
    make_experiment(TRAIN, config={"seed": 0, "max_features": 0.9, "min_samples_leaf": 1})
    st = LoopState(tag="b", experiment="exp", editable=["experiments/exp/config.yaml"], protected={})
    p = _proposer(lab, st, sampler)
    config = lab.experiment_dir("exp") / "config.yaml"
    for i in range(40):
        p.propose("brief", st)
        values = load_yaml(config)
        assert isinstance(values["max_features"], float) and 0.09 <= values["max_features"] <= 1.0
        assert isinstance(values["min_samples_leaf"], int) and 1 <= values["min_samples_leaf"] <= 4
        p.observe("idea", "discard", 1.0 + i)


def test_params_proposer_never_proposes_a_config_already_tried(lab, make_experiment, sampler):
    make_experiment(TRAIN, config={"seed": 0, "depth": 4})
    st = LoopState(tag="d", experiment="exp", editable=["experiments/exp/config.yaml"], protected={})
    p = _proposer(lab, st, sampler, space=space_from_args(["depth=range(1,7)"]))  # six values, one (4) is the start
    seen = []
    for _ in range(5):
        p.propose("brief", st)
        seen.append(load_yaml(lab.experiment_dir("exp") / "config.yaml")["depth"])
        p.observe("idea", "discard", 2.0)
    assert sorted(seen) == [1, 2, 3, 5, 6]  # depth 4 never comes back, nothing twice
    with pytest.raises(Exhausted, match="Every configuration of the search space"):
        p.propose("brief", st)


def test_search_space_from_the_command_line_bounds_and_checks_the_keys(lab, make_experiment):
    make_experiment(TRAIN, config={"seed": 0, "max_features": 0.5, "min_samples_leaf": 2, "n_estimators": 100})
    st = LoopState(tag="s", experiment="exp", editable=["experiments/exp/config.yaml"], protected={})
    p = make_proposer(lab, st, "min", None, "params", space=["max_features=interval(0.1,1.0)", "min_samples_leaf=range(1,10)"])
    assert set(p.space.dims) == {"max_features", "min_samples_leaf"}  # n_estimators stays fixed
    for _ in range(10):
        p.propose("brief", st)
        v = load_yaml(lab.experiment_dir("exp") / "config.yaml")
        assert 0.1 <= v["max_features"] <= 1.0 and v["min_samples_leaf"] in range(1, 10) and v["n_estimators"] == 100
        p.observe("idea", "discard", 1.0)
    with pytest.raises(ConfigError, match="Unknown parameter 'max_feature'.*Did you mean 'max_features'"):
        make_proposer(lab, st, "min", None, "params", space=["max_feature=interval(0.1,1.0)"])
    with pytest.raises(ConfigError, match="fixes n_estimators=200"):
        make_proposer(lab, st, "min", None, "params", space=["max_features=interval(0.1,1.0)", "n_estimators=200"])
    with pytest.raises(ConfigError, match="--space is for the params proposer"):
        make_proposer(lab, st, "min", "true", None, space=["max_features=interval(0.1,1.0)"])


def test_search_space_from_experiment_yaml(lab, make_experiment):
    make_experiment(TRAIN, config={"seed": 0, "lr": 0.01, "depth": 4},
                    loop_space={"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "depth": "range(2,5)"})
    st = LoopState(tag="y", experiment="exp", editable=["experiments/exp/config.yaml"], protected={})
    p = make_proposer(lab, st, "min", None, "params")
    assert p.space.dims == {"lr": Range(1e-4, 1e-1, log=True), "depth": Range(2, 4, integer=True, step=1)}
    make_experiment(TRAIN, name="bad", config={"seed": 0, "lr": 0.01}, loop_space=["lr"])
    bad = LoopState(tag="z", experiment="bad", editable=["experiments/bad/config.yaml"], protected={})
    with pytest.raises(ConfigError, match="`loop_space` in .*experiment.yaml:\\d+ must be a mapping"):
        make_proposer(lab, bad, "min", None, "params")


CONFIG = """\
# trees of the forest
forest:
    n_estimators: 100   # more is slower
    max_features: 0.5

lr: 1e-3   # written the way people write it
tags: [a, b]
name: "baseline"
seed: 0
"""


def test_config_rewrite_keeps_comments_layout_and_spelling():
    out = rewrite_config(CONFIG, {"forest.max_features": 0.25, "lr": 0.001})
    changed = [(a, b) for a, b in zip(CONFIG.splitlines(), out.splitlines()) if a != b]
    assert changed == [("    max_features: 0.5", "    max_features: 0.25")]  # lr is unchanged, so stays 1e-3
    assert len(out.splitlines()) == len(CONFIG.splitlines())


def test_config_rewrite_writes_floats_that_read_back_as_numbers(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text(rewrite_config(CONFIG, {"lr": 1e-05, "forest.n_estimators": 7}))
    assert flatten(load_yaml(f))["lr"] == 1e-05 and load_yaml(f)["forest"]["n_estimators"] == 7
