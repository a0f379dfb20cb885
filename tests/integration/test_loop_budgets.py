"""`run_loop` stops on each budget, with a proposer passed as an instance (the API takes any object
with propose/observe): this one makes every idea worse, in a known way."""

from __future__ import annotations

import re

import pytest

from assay.loop.driver import Budget, run_loop
from assay.loop.ratchet import start, status
from assay.loop.state import LoopState, find_by_tag
from tests.integration.conftest import PREPARE, TRAIN, commit_baseline


class WorseEachTime:
    """Raises LR a little more every call: a real edit of train.py that never helps."""

    def __init__(self, train) -> None:
        self.train, self.calls = train, 0
        self.seen: list[str] = []

    def propose(self, brief: str, st: LoopState) -> str | None:
        self.calls += 1
        text = re.sub(r"^LR = .*$", f"LR = {1 + self.calls}", self.train.read_text(), flags=re.M)
        self.train.write_text(text)
        return f"lr {1 + self.calls}"

    def observe(self, description: str, decision: str, value: float | None) -> None:
        self.seen.append(decision)


@pytest.fixture
def worse(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    start(lab, "exp", "b", ["train.py"], ["prepare.py"], decision="greedy")
    return WorseEachTime(exp.path / "train.py")


def test_plateau_stops_after_n_tries_without_a_keep(lab, worse):
    why = run_loop(lab, "b", worse, Budget(max_iterations=10, plateau=2), lambda s: None)
    assert why == "plateau: 2 tries without a keep"
    assert worse.seen == ["discard", "discard"] and status(lab, "b")["counts"]["discard"] == 2


def test_cost_budget_stops_once_the_runs_cost_that_much(lab, worse):
    # A price of 3.6 million per run-hour is 1000 per second: one run of a fraction of a second crosses 1.
    why = run_loop(lab, "b", worse, Budget(max_iterations=10, plateau=None, cost_per_hour=3.6e6, max_cost=1.0), lambda s: None)
    assert why.startswith("max cost: ") and worse.calls == 1
    assert find_by_tag(lab, "b").stopped == why  # recorded in the loop's state


def test_max_time_stops_between_tries(lab, worse):
    why = run_loop(lab, "b", worse, Budget(max_iterations=1000, plateau=None, max_time="1s"), lambda s: None)
    assert why == "max time (1s)" and 1 <= worse.calls < 1000
