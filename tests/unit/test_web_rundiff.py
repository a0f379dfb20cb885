"""The run diff's pieces: params and environment differences, and the code difference between two
commits of a real git repository (including a commit the repository no longer holds)."""

from __future__ import annotations

from assay.web.rundiff import code_diff, env_diff, params_diff
from tests.conftest import git


def test_params_diff_marks_changed_and_one_sided_params():
    rows = {r["key"]: r for r in params_diff({"lr": 0.1, "seed": 0, "old": 1}, {"lr": 0.3, "seed": 0, "new": None})}
    assert rows["seed"]["same"] and not rows["lr"]["same"]
    assert rows["old"]["only"] == "a" and rows["new"]["only"] == "b" and not rows["new"]["same"]


def test_env_diff_lists_only_what_differs():
    a = {"python_version": "3.11.7", "platform": "linux", "packages": {"numpy": "1.26", "torch": "2.1", "six": "1.16"}}
    b = {"python_version": "3.12.1", "platform": "linux", "packages": {"numpy": "2.0", "six": "1.16", "jax": "0.4"}}
    out = env_diff(a, b)
    assert out["fields"] == [{"key": "python_version", "a": "3.11.7", "b": "3.12.1"}]
    assert out["packages"] == [{"name": "jax", "a": None, "b": "0.4"}, {"name": "numpy", "a": "1.26", "b": "2.0"},
                               {"name": "torch", "a": "2.1", "b": None}]
    assert out["packages_same"] == 1
    assert not env_diff(a, None)["available"] and "run B" in env_diff(a, None)["note"]


def test_code_diff_is_git_diff_between_the_commits_inside_the_experiment_folder(lab):
    exp = lab.experiment_dir("exp")
    exp.mkdir(parents=True)
    (exp / "train.py").write_text("LR = 1.0\n")
    (lab.root / "elsewhere.py").write_text("x = 1\n")
    git(lab.root, "init", "-q", "-b", "main")
    git(lab.root, "add", "-A")
    git(lab.root, "commit", "-qm", "one")
    first = git(lab.root, "rev-parse", "HEAD")
    (exp / "train.py").write_text("LR = 0.5\n")
    (lab.root / "elsewhere.py").write_text("x = 2\n")  # outside the experiment: not shown
    git(lab.root, "commit", "-qam", "two")
    second = git(lab.root, "rev-parse", "HEAD")
    index_before = (lab.root / ".git" / "index").stat().st_mtime_ns

    out = code_diff(lab, exp, {"commit": first, "root": str(lab.root)}, {"commit": second, "root": str(lab.root)})
    assert out["available"] and "-LR = 1.0" in out["diff"] and "+LR = 0.5" in out["diff"]
    assert "elsewhere" not in out["diff"] and out["path"] == "experiments/exp"
    assert (lab.root / ".git" / "index").stat().st_mtime_ns == index_before  # read-only: the index is untouched

    same = code_diff(lab, exp, {"commit": first}, {"commit": first})
    assert same["same_commit"] and same["diff"] == ""
    gone = code_diff(lab, exp, {"commit": first, "root": str(lab.root)}, {"commit": "0" * 40, "root": str(lab.root)})
    assert not gone["available"] and "not in the repository" in gone["note"]
    nogit = code_diff(lab, exp, None, {"commit": first})
    assert not nogit["available"] and "run A" in nogit["note"] and "not in a git repository" in nogit["note"]
