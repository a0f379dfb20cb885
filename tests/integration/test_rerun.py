"""assay rerun: the recorded commit + patch, params and seed, in a throw-away worktree; the user's tree untouched."""

from __future__ import annotations

import json

import pytest

from assay.errors import GitError
from assay.rerun import within_noise
from assay.runner import RunSpec, run_experiment
from tests.conftest import git

# The value depends on code (OFFSET), a param and the seed, so a rerun of the wrong code, params or seed shows.
SCRIPT = """
import assay
OFFSET = {offset}
p = assay.params()
run = assay.init()
print(f"acc: {{OFFSET + p['scale'] * (p['seed'] + 1)}}")
"""


@pytest.fixture
def repo(lab, make_experiment):
    exp = make_experiment(SCRIPT.format(offset=0.5), config={"seed": 0, "scale": 0.01}, metric="acc", goal="max")
    git(lab.root, "init", "-q")
    git(lab.root, "add", ".")
    git(lab.root, "commit", "-qm", "experiment")
    return exp


def test_rerun_uses_recorded_commit_patch_params_and_seed_not_the_current_tree(lab, repo, cli):
    (repo.path / "train.py").write_text(SCRIPT.format(offset=0.6))  # uncommitted: recorded as a patch
    (orig,) = run_experiment(lab, RunSpec("exp", "dirty", ["scale=0.02", "seed=3"]))
    assert orig.record["git"]["patch"] and orig.record["metrics"]["acc"]["last"] == pytest.approx(0.68)
    (repo.path / "train.py").write_text(SCRIPT.format(offset=0.9))  # the tree moves on
    status_before = git(lab.root, "status", "--porcelain")

    out = cli("rerun", orig.record["id"], "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["patched"] and r["commit"] == orig.record["git"]["commit"]
    assert r["new_value"] == pytest.approx(0.68) and r["difference"] == 0 and r["within_noise"] is True
    new = json.loads((repo.runs_dir / r["rerun"].split("/", 1)[1] / "run.json").read_text())
    assert new["seed"] == 3 and new["params"]["scale"] == 0.02 and new["tags"]["rerun_of"] == orig.record["id"]
    assert (repo.path / "train.py").read_text() == SCRIPT.format(offset=0.9)
    assert git(lab.root, "status", "--porcelain") == status_before
    assert len(git(lab.root, "worktree", "list").splitlines()) == 1
    shown = cli("show", r["rerun"], "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["path"] == str(repo.runs_dir.resolve() / new["id"].split("/", 1)[1])


def test_rerun_of_a_run_outside_git_says_why(lab, make_experiment, cli):
    make_experiment(SCRIPT.format(offset=0.5), config={"seed": 0, "scale": 0.01}, metric="acc", goal="max")
    (orig,) = run_experiment(lab, RunSpec("exp", "nogit"))
    from assay.rerun import rerun

    with pytest.raises(GitError, match="no recorded git commit"):
        rerun(lab, orig.record["id"])
    out = cli("rerun", orig.record["id"])
    assert out.returncode == 1 and "no recorded git commit" in out.stderr


def test_difference_is_judged_against_the_noise_of_two_runs():
    ok, tol, _ = within_noise(0.02, 0.01, 9)
    assert ok is True and tol == pytest.approx(2.262 * 0.01 * 2 ** 0.5, rel=1e-3)
    assert within_noise(0.04, 0.01, 9)[0] is False
    assert within_noise(0.0, None, 0)[0] is True
    assert within_noise(0.001, None, 0)[0] is None
