"""Every built-in sampler, decision rule and proposer passes the conformance suites that
assay.testing ships for third-party plug-ins; and the suites fail on a plug-in that breaks them."""

from __future__ import annotations

import importlib.util
import sys
from functools import partial

import pytest

from assay.loop.decisions import DECISIONS, Decided, Decision, Evidence, Settings
from assay.loop.proposers import PROPOSERS
from assay.loop.state import LoopState
from assay.sweep.samplers import SAMPLERS, get_sampler
from assay.sweep.space import space_from_args
from assay.testing.decisions import check_decision_rule
from assay.testing.proposers import check_exhaustion, check_proposer
from assay.testing.samplers import check_sampler

NEEDS = {"cmaes": "cmaes", "gp": "torch"}  # optional packages of some Optuna samplers
NOISE_MODELLED = {"noise-aware", "sequential"}  # rules that bound their false keeps on pure noise
# Edits train.py and describes the change, as a coding agent would (an LLM CLI cannot run in tests).
SCRIPTED_AGENT = (f"{sys.executable} -c \"import os; open('experiments/exp/train.py','a').write('# tried\\n'); "
                  "open(os.environ['ASSAY_DESC_FILE'],'w').write('a tweak')\"")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_builtin_sampler_passes_the_sampler_suite(name):
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        pytest.skip(f"{name} needs {NEEDS[name]}, not installed here")
    check_sampler(partial(get_sampler, name), exhausts=name == "grid")


@pytest.mark.parametrize("name", sorted(DECISIONS))
def test_every_builtin_rule_passes_the_decision_suite(name):
    check_decision_rule(DECISIONS[name], max_false_keep_rate=0.05 if name in NOISE_MODELLED else None, noise_trials=600)


@pytest.fixture
def loop_state(lab, make_experiment):
    exp = make_experiment("LR = 1.0\nprint('val_bpb:', 1 + (LR - 0.3) ** 2)\n",
                          config={"seed": 0, "lr": 0.01, "model": {"depth": 4}, "name": "x"})
    (exp.path / "prepare.py").write_text("FIXED = 1\n")
    return LoopState(tag="conf", experiment="exp", editable=["experiments/exp/train.py", "experiments/exp/config.yaml"],
                     protected={"experiments/exp/prepare.py": None})


@pytest.mark.parametrize("name", sorted(PROPOSERS))
def test_every_builtin_proposer_passes_the_proposer_suite(name, lab, loop_state):
    options = {"command": SCRIPTED_AGENT, "timeout": "60s"} if name == "agent" else {}
    check_proposer(PROPOSERS[name], lab, loop_state, **options)


def test_params_proposer_stops_with_exhausted_once_a_small_space_is_tried(lab, loop_state):
    proposed = check_exhaustion(PROPOSERS["params"], lab, loop_state, space=space_from_args(["lr=0.01,0.02,0.03"]))
    assert proposed == 2  # 0.01 is the starting config, already tried


class _Always:
    """A rule that keeps everything: what the decision suite must reject."""

    def __init__(self, settings: Settings) -> None:
        pass

    def decide(self, ev: Evidence) -> Decided:
        return Decided(Decision.KEEP, "always", ev.delta)


class _Outside:
    """A sampler that ignores its space: what the sampler suite must reject."""

    def __init__(self, space, goal="min", seed=0):
        pass

    def ask(self):
        return {"lr": 5.0, "batch": 16, "layers": 1}

    def tell(self, params, result):
        pass


def test_suites_reject_a_rule_that_keeps_a_clear_regression_and_a_sampler_outside_its_space():
    with pytest.raises(AssertionError, match="loss of 50 noise sigmas was answered keep"):
        check_decision_rule(_Always)
    with pytest.raises(AssertionError, match=r"lr=5.0 is outside \[0.0001, 0.1\]"):
        check_sampler(_Outside)


def test_proposer_suite_rejects_a_proposer_that_edits_a_protected_file(lab, loop_state):
    class Sneaky:
        def propose(self, brief, st):
            (lab.root / "experiments/exp/prepare.py").write_text("FIXED = 2\n")
            return "tuned the data"

        def observe(self, description, decision, value):
            pass

    with pytest.raises(AssertionError, match="outside the editable"):
        check_proposer(lambda o: Sneaky(), lab, loop_state)


def test_assay_testing_does_not_import_pytest():
    import subprocess

    code = "import sys, assay.testing.samplers, assay.testing.decisions, assay.testing.proposers; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
