"""`assay rerun RUN`: run a recorded run again from its commit (+ its uncommitted patch), params and
seed, in a temporary git worktree, and say whether the new metric is within the measured noise.

The user's working tree, index and branches are never touched: the worktree is detached, lives in
a temporary folder, and is removed afterwards. The new run folder lands in the experiment's runs/
like any other, tagged `rerun_of`.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assay import gitops
from assay.errors import GitError, RunError
from assay.lab import Lab
from assay.store import records


@dataclass
class RerunResult:
    original: str
    rerun: str
    status: str
    commit: str
    patched: bool
    metric: str
    value: str
    original_value: float | None
    new_value: float | None
    difference: float | None
    sigma: float | None
    sigma_df: int
    sigma_source: str
    tolerance: float | None
    within_noise: bool | None
    explanation: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def within_noise(diff: float, sigma: float | None, df: int, confidence: float = 0.95) -> tuple[bool | None, float | None, str]:
    """Is the difference of two single runs explained by seed noise `sigma`? (verdict, tolerance, why)

    The difference of two runs has standard deviation sigma * sqrt(2); the tolerance is its
    two-sided t interval. Without a noise estimate only an exact match can be called reproduced.
    """
    from assay.report.evidence import t_crit

    if sigma is None or df < 1:
        if diff == 0:
            return True, 0.0, "identical value; no repeats to measure noise"
        return None, None, "no repeats to measure noise: run the original with --repeat 3 to know if this is noise"
    tol = t_crit(1 - (1 - confidence) / 2, df) * sigma * math.sqrt(2)
    ok = abs(diff) <= tol
    return ok, tol, (f"|{diff:+.4g}| {'<=' if ok else '>'} {tol:.4g} ({confidence:.0%} band of two runs' "
                     f"difference, sigma={sigma:.4g}, df={df})")


def link_runs(tree_exp: Path, exp_runs: Path) -> None:
    """Make the worktree's copy of the experiment write its run folders into the real runs/."""
    if (tree_exp / "runs").is_symlink() or (tree_exp / "runs").is_file():
        (tree_exp / "runs").unlink()
    elif (tree_exp / "runs").exists():
        shutil.rmtree(tree_exp / "runs")  # a committed runs/ in our temporary tree: replaced by the real one
    exp_runs.mkdir(parents=True, exist_ok=True)
    (tree_exp / "runs").symlink_to(exp_runs.resolve(), target_is_directory=True)


def _noise(lab: Lab, name: str, record: dict[str, Any], metric: str, value: str) -> tuple[float | None, int, str]:
    """Seed noise: the original's own repeats (same group) if any, else pooled over all configurations."""
    from assay.experiment import load_experiment
    from assay.loop.decisions import pooled_sigma
    from assay.report.evidence import group_configs, load_runs, usable

    good = [r for r in usable(load_runs(load_experiment(lab, name))) if not (r.record.get("tags") or {}).get("rerun_of")]
    group = record.get("group")
    if group:
        same = [v for r in good if r.record.get("group") == group and (v := r.value(metric, value)) is not None]
        sigma, df = pooled_sigma([same])
        if sigma is not None:
            return sigma, df, f"the original's {len(same)} repeats (group {group})"
    configs, _ = group_configs(good)
    sigma, df = pooled_sigma([[v for r in c.runs if (v := r.value(metric, value)) is not None] for c in configs])
    return sigma, df, ("pooled over the experiment's repeated configurations" if sigma is not None else "none")


def rerun(lab: Lab, ref: str, value: str = "last", confidence: float = 0.95) -> RerunResult:
    """Re-run `ref` from its recorded commit, patch, params and seed; compare its primary metric.

    Raises:
        RunError: unknown run. GitError: no recorded commit, commit gone, patch does not apply,
        entry point not committed.
    """
    from assay.experiment import load_experiment
    from assay.report.evidence import check_value
    from assay.runner.launch import RunSpec, start_run
    from assay.store.query import find_run

    check_value(value)
    path = find_run(lab, ref)
    record = records.read_record(path)
    rid = str(record.get("id") or records.run_id(path))
    git = record.get("git") or {}
    commit, root = git.get("commit"), git.get("root")
    if not commit or not root:
        raise GitError(f"Run {rid} has no recorded git commit (run.json has no git state)",
                       "Only runs launched inside a git repository can be rerun from their code; commit the experiment and run it again.")
    root_path = Path(root)
    if not gitops.has_commit(root_path, commit):
        raise GitError(f"Commit {commit[:12]} of run {rid} is not in the repository at {root}",
                       "Fetch it (git fetch --all) or restore the branch that held it.")
    name = str(record.get("experiment") or path.parent.parent.name)
    exp = load_experiment(lab, name)
    try:
        exp_rel = exp.path.resolve().relative_to(root_path.resolve())
        lab_rel = lab.root.resolve().relative_to(root_path.resolve())
    except ValueError:
        raise GitError(f"Experiment folder {exp.path} is outside the recorded repository {root}",
                       "Rerun from the lab that produced the run.") from None

    warnings: list[str] = []
    with gitops.worktree_at(root_path, commit) as wt:
        patch = path / records.PATCH_FILE
        patched = bool(git.get("patch")) and patch.is_file()
        if git.get("dirty") and not patched:
            warnings.append("the run had uncommitted changes but no patch was recorded: rerunning the bare commit")
        if patched:
            why = gitops.apply_patch(wt, patch)
            if why is not None:
                raise GitError(f"The recorded patch {patch} does not apply to {commit[:12]}: {why}",
                               "The patch file may have been edited; compare its sha256 with run.json git.patch_sha256.")
        if git.get("untracked"):
            warnings.append(f"{len(git['untracked'])} untracked file(s) existed at run time and are not in the rerun")
        wt_exp = wt / exp_rel
        entry = str(record.get("entry") or exp.entry)
        if not (wt_exp / entry.split()[0]).exists():
            raise GitError(f"Entry point {entry.split()[0]} of {name} is not in commit {commit[:12]} (it was untracked)",
                           "Commit the experiment's files before the runs you want to be able to rerun.")
        link_runs(wt_exp, exp.runs_dir)
        wt_exp_def = load_experiment(Lab(wt / lab_rel, lab.settings), name)
        params = dict(record.get("params") or {})
        spec = RunSpec(name, f"rerun-{path.name[20:] or path.name}"[:60], entry=entry, tags={"rerun_of": rid})
        res = start_run(lab, wt_exp_def, spec, resolved=(params, []))
        new_path = exp.runs_dir.resolve() / res.path.name
        rec = records.RunRecord.from_dict(records.read_record(new_path)).with_(rerun_of=rid)
        records.write_record(new_path, rec)
        new_record = rec.to_dict()
        with lab.index() as index:  # the launcher indexed it under the worktree path; point it home
            index.upsert(new_path, new_record)
    if record.get("seed") != new_record.get("seed"):
        raise RunError(f"Rerun {new_record['id']} used seed {new_record.get('seed')}, not {record.get('seed')}")
    metric = str(record.get("primary_metric") or exp.metric)
    old = ((record.get("metrics") or {}).get(metric) or {}).get(value)
    new = ((new_record.get("metrics") or {}).get(metric) or {}).get(value)
    sigma, df, source = _noise(lab, name, record, metric, value)
    if old is None or new is None or new_record["status"] != "ok":
        diff, tol = None, None
        ok: bool | None = False
        why = f"rerun status {new_record['status']}" + (f" ({new_record.get('reason')})" if new_record.get("reason") else "")
        why += f"; {metric}: original {old}, rerun {new}"
    else:
        diff = float(new) - float(old)
        ok, tol, why = within_noise(diff, sigma, df, confidence)
    return RerunResult(rid, str(new_record["id"]), str(new_record["status"]), commit, patched, metric, value,
                       old, new, diff, sigma, df, source, tol, ok, why, warnings)
