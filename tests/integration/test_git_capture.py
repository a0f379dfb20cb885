"""Provenance from real git repositories: commit, branch, dirty diff as a patch, untracked files."""

from assay.runner import RunSpec, run_experiment
from tests.conftest import git


def test_commit_and_dirty_diff_are_recorded_without_touching_the_repo(lab, make_experiment):
    exp = make_experiment("print('val_bpb: 1')\n")
    git(lab.root, "init", "-q", "-b", "main")
    git(lab.root, "add", "-A")
    git(lab.root, "commit", "-qm", "init")
    head = git(lab.root, "rev-parse", "HEAD")
    (exp.path / "train.py").write_text("print('val_bpb: 2')\n")
    (exp.path / "notes.txt").write_text("scratch\n")
    status_before = git(lab.root, "status", "--porcelain")
    (res,) = run_experiment(lab, RunSpec("exp", "dirty"))
    g = res.record["git"]
    assert g["commit"] == head and g["branch"] == "main"
    assert g["dirty"] == ["experiments/exp/train.py"]
    assert "experiments/exp/notes.txt" in g["untracked"]
    patch = (res.path / "git.patch").read_text()
    assert "-print('val_bpb: 1')" in patch and "+print('val_bpb: 2')" in patch
    # The patch applies to the recorded commit and reproduces the code that ran.
    git(lab.root, "apply", "--check", "-R", str(res.path / "git.patch"))
    # The run folder itself is new and untracked; nothing else about the repo changed.
    assert [ln for ln in git(lab.root, "status", "--porcelain").splitlines() if "runs/" not in ln] == \
        [ln for ln in status_before.splitlines() if "runs/" not in ln]


def test_clean_tree_has_no_patch(lab, make_experiment):
    make_experiment("print('val_bpb: 1')\n")
    (lab.root / ".gitignore").write_text("runs/\n.assay/\n")
    git(lab.root, "init", "-q")
    git(lab.root, "add", "-A")
    git(lab.root, "commit", "-qm", "init")
    (res,) = run_experiment(lab, RunSpec("exp", "clean"))
    assert res.record["git"]["dirty"] == [] and res.record["git"]["patch"] is None
    assert not (res.path / "git.patch").exists()


def test_outside_git_there_is_no_git_record(lab, make_experiment):
    make_experiment("print('val_bpb: 1')\n")
    (res,) = run_experiment(lab, RunSpec("exp", "nogit"))
    assert res.record["git"] is None and res.status == "ok"
