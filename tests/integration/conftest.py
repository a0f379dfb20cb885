"""Fixtures of the integration tests: a git repository holding an experiment with a fixed evaluation
(the loop), and one local Ray instance per test module (executors, the parallel loop on Ray)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import git

TRAIN = """\
import os, random
from prepare import evaluate
LR = 1.0
DEPTH = 2
random.seed(int(os.environ.get("ASSAY_SEED", "0")))
print("val_bpb:", evaluate(LR, DEPTH) + random.gauss(0, NOISE))
"""
PREPARE = """\
def evaluate(lr, depth):
    # The fixed evaluation: the true objective, lower is better, best at lr=0.3, depth=4.
    return 1.0 + (lr - 0.3) ** 2 + 0.05 * (depth - 4) ** 2
"""


@pytest.fixture
def loop_lab(lab, make_experiment):
    def make(noise: float = 0.0):
        exp = make_experiment(TRAIN.replace("NOISE", repr(noise)), timeout="60s")
        (exp.path / "prepare.py").write_text(PREPARE)
        commit_baseline(lab.root)
        return exp

    return make


def edit(exp, **consts) -> None:
    text = (exp.path / "train.py").read_text()
    for k, v in consts.items():
        text = re.sub(rf"^{k} = .*$", f"{k} = {v}", text, flags=re.M)
    (exp.path / "train.py").write_text(text)


@pytest.fixture
def repo_lab(loop_lab):
    """The fixed-evaluation repository, without noise."""
    return loop_lab()


def commit_baseline(root) -> None:
    """git init + commit everything on branch main, as a user's repository before a loop."""
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "baseline")


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance of 2 CPUs for the module's tests (skipped where Ray is not installed)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
