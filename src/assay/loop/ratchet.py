"""The enforced protocol: start (baseline first), try (guards, commit, run, decide, keep or reset),
status and resume. A results.tsv row is written before the branch ever moves, and every tried
diff stays reachable under refs/assay/<tag>/tried/<n>, so nothing a proposer wrote is lost.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, GitError, RunError, StoreError
from assay.experiment import Experiment, confirm_settings, load_experiment
from assay.gitops import Repo, diff_hash, diff_size, file_hash
from assay.lab import Lab
from assay.loop import guards, results
from assay.loop.decisions import Decided, Decision, Evidence, Settings, make_decision, pooled_sigma
from assay.loop.results import run_value
from assay.loop.state import SETTINGS, LoopState, find_by_tag, locked, save, settings_ref, state_dir
from assay.runner.launch import RunResult, RunSpec, start_run
from assay.store.records import slug

VALUES = ("last", "best")  # which value of each run a loop counts (--value)


@dataclass(frozen=True)
class Outcome:
    """What one `try` decided. `value` is the commit's one number (results.commit_value), the same
    that results.tsv, `loop log` and `loop status` show: for a keep, the mean of its re-measurement
    on fresh seeds (`fresh`), not of the selection runs (`values`) that won the comparison."""

    decision: Decision  # keep | discard | crash | dropped
    description: str
    commit: str
    values: list[float]  # the selection runs' values
    delta: float | None  # gain of `value` over the best before this try (positive is better)
    reason: str
    runs: list[str]
    best: float | None  # the best's value after this try
    sigma: float | None
    iteration: int
    metric: str
    value: float | None = None
    fresh: list[float] = field(default_factory=list)  # a keep's re-measurement on fresh seeds

    def line(self) -> str:
        measured = self.fresh or self.values
        n = len(measured)
        m = results.show(self.value) or "-"
        # ± the standard error of this mean: the loop's pooled σ where known (a single run has no
        # spread of its own), else the spread of these runs.
        sigma = self.sigma if self.sigma is not None else (statistics.stdev(measured) if n > 1 else None)
        if self.value is not None and sigma is not None:
            m += f" ±{sigma / math.sqrt(n):.2g} (n={n})"
        d = "" if self.delta is None else f"  Δ {results.show_delta(self.delta)} vs best"
        return f"{self.decision:<8} {self.metric}={m}{d}  [{self.commit[:8]} {self.description[:40]}] {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """Every field, as `--json` prints it."""
        from dataclasses import asdict

        return asdict(self)


def _results_path(lab: Lab, st: LoopState) -> Path:
    return lab.experiment_dir(st.experiment) / "results.tsv"


def _exclude_from_git(repo: Repo, exp: Experiment) -> None:
    """Keep the loop's own files (results.tsv, run folders, loop state) out of git, without
    touching any tracked file: .git/info/exclude is local to this clone."""
    wanted = [f"/{repo.rel(exp.path)}/{p}" for p in ("results.tsv", "runs/", "loops/")]
    exclude = Path(repo.git("rev-parse", "--git-path", "info/exclude").strip())
    exclude = exclude if exclude.is_absolute() else repo.root / exclude
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text() if exclude.exists() else ""
    missing = [w for w in wanted if w not in text.splitlines()]
    if missing:
        exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + "\n".join(missing) + "\n")


# What assay writes in an experiment folder: run folders, loop state and ledger, sweeps, plots,
# reports, notes. A proposer's diff never includes them and they never block the loop.
_OWN = ("runs/", "loops/", "results.tsv", "sweeps/", "plots/", "REPORT.md", "REPORT.html", "JOURNAL.md",
        "IGNORED_RUNS.md")


def _own_files(repo: Repo, exp: Experiment) -> tuple[str, ...]:
    """Prefixes (repo-relative) of the files assay itself writes, in every experiment of the lab."""
    exps = repo.rel(exp.path.parent)
    names = {exp.path.name, *(d.name for d in exp.path.parent.iterdir() if d.is_dir())}
    return (*(f"{exps}/{n}/{f}" for n in sorted(names) for f in _OWN), f"{exps}/.gitignore", ".assay/")


def _outside(repo: Repo, exp: Experiment, editable: list[str], outputs: Collection[str] = (),
             base: str | None = None) -> list[str]:
    """Changed or new files that are neither editable, nor the loop's own, nor what a run wrote.

    With `base`, changes are measured against that commit, so a proposer that ran `git commit`
    itself cannot slip a file outside the editable set past the guard."""
    tracked, untracked = repo.changed_files()
    if base is not None:
        tracked = [*tracked, *filter(None, repo.git("diff", "--name-only", "-z", base, "--").split("\0"))]
    own = _own_files(repo, exp)
    return sorted(p for p in {*tracked, *(u for u in untracked if u not in outputs)}  # code is never assay's own
                  if p not in editable and (not p.startswith(own) or p.endswith(guards.CODE_SUFFIXES)))


def start(lab: Lab, name: str, tag: str, edit: list[str], protect: list[str], decision: str = "noise-aware",
          repeats: int = 3, max_repeats: int = 4, min_delta: float = 0.0, confidence: float = 0.95,
          lines_per_delta: float = 0.0, timeout: str | None = None, max_retries: int = 2, value: str = "last") -> Outcome:
    """Create branch assay/TAG, record the protected files' hashes, run the unmodified baseline.

    Raises:
        GitError: not a git repo, uncommitted changes outside --edit, an existing branch.
        ConfigError: unknown experiment, missing editable/protected files, bad settings.
    """
    if value not in VALUES:
        raise ConfigError(f"--value must be one of {', '.join(VALUES)}, got '{value}'",
                          "Pass --value last (the value when training ended) or --value best.")
    exp = load_experiment(lab, name)
    confirm_settings(exp)  # a malformed `confirm:` fails now, not when the loop's result is due
    repo = Repo(exp.path)
    if not edit:
        raise ConfigError("The loop needs at least one editable file", f"assay loop start {name} --tag {tag} --edit train.py")
    if not slug(tag) == tag or "/" in tag:
        raise ConfigError(f"Invalid tag '{tag}'", "Use letters, digits, '-', '.', e.g. --tag nov23")
    make_decision(decision, Settings())
    if not 0.5 < confidence < 1:
        raise ConfigError(f"--confidence must be between 0.5 and 1, got {confidence}", "e.g. --confidence 0.95")
    editable = [guards.repo_path(repo.root, exp.path, e, "edit") for e in edit]
    protected = {rel: file_hash(repo.root / rel) for rel in (guards.repo_path(repo.root, exp.path, p, "protect") for p in protect)}
    if overlap := set(editable) & set(protected):
        raise ConfigError(f"{', '.join(sorted(overlap))} cannot be both editable and protected", "Drop it from --edit or --protect.")
    if repo.ref_exists(f"refs/heads/assay/{tag}"):
        raise GitError(f"Branch assay/{tag} already exists", f"Pick a new tag, or continue it: assay loop resume {tag}")
    try:
        repo.head()
    except GitError:
        raise GitError("The repository has no commit yet", "Commit the baseline: git add -A && git commit -m 'baseline'") from None
    _exclude_from_git(repo, exp)
    dirty = _outside(repo, exp, editable)
    tracked, _ = repo.changed_files()
    dirty_editable = [p for p in tracked if p in editable]
    if dirty:
        raise GitError(f"Uncommitted changes outside the editable files: {guards.listing(dirty)}",
                       "Commit or move them first (assay never stashes or resets your work): git status")
    origin = repo.branch()
    repo.git("checkout", "-q", "-b", f"assay/{tag}")
    if dirty_editable:  # the baseline is the code as it is now: commit it on the loop's own branch
        repo.commit_paths(dirty_editable, f"assay baseline ({tag}): uncommitted edits at loop start")
    st = LoopState(tag=tag, experiment=name, editable=editable, protected=protected, decision=decision,
                   repeats=repeats if decision != "greedy" else 1, max_repeats=max_repeats, min_delta=min_delta,
                   confidence=confidence, lines_per_delta=lines_per_delta, timeout=timeout, max_retries=max_retries,
                   origin_branch=origin, value=value)
    save(lab, st)
    repo.save_blob(settings_ref(tag), json.dumps({k: getattr(st, k) for k in SETTINGS}))
    return run_baseline(lab, st)


def run_baseline(lab: Lab, st: LoopState) -> Outcome:
    repo = Repo(lab.experiment_dir(st.experiment))
    commit = repo.head()
    runs: list[RunResult] = []
    crash = _measure(lab, st, "baseline", commit, runs, st.repeats, repo)
    values, _ = _values(runs, st)
    if crash:
        st.counts["crash"] += 1
        results.append(_results_path(lab, st), _row(st, commit, Decision.CRASH, "baseline", runs, [], None,
                                                    f"baseline {crash}"))
        save(lab, st)
        raise RunError(f"The baseline crashed ({crash.split(':')[0]}); the loop needs a working baseline",
                       f"Fix and commit, then: assay loop resume {st.tag}  ({crash})")
    st.best_commit, st.best_values, st.best_runs = commit, values, [r.record["id"] for r in runs]
    st.noise_groups = [values]
    st.sigma, st.sigma_df = pooled_sigma(st.noise_groups)
    st.counts["keep"] += 1
    results.append(_results_path(lab, st), _row(st, commit, Decision.KEEP, "baseline", runs, values, 0.0,
                                                f"baseline ({len(values)} seeds)"))
    save(lab, st)
    exp = load_experiment(lab, st.experiment)
    value = results.commit_value(values)
    return Outcome(Decision.KEEP, "baseline", commit, values, 0.0, f"baseline, σ={st.sigma if st.sigma is not None else '-'}",
                   st.best_runs, value, st.sigma, 0, results.label(exp.metric, st.value), value)


def _run(lab: Lab, st: LoopState, desc: str, seed_offset: int, commit: str) -> RunResult:
    exp = load_experiment(lab, st.experiment)  # re-read: a candidate may have changed config.yaml
    spec = RunSpec(st.experiment, f"{st.tag}-{desc}"[:60], timeout=st.timeout,
                   tags={"loop": st.tag, "commit": commit[:12]}, env={"PYTHONPYCACHEPREFIX": guards.fresh_pycache()})
    repo = Repo(exp.path)
    watched = [*st.editable, *st.protected]
    before = guards.snapshot(repo.root, watched, repo.changed_files()[0])
    result = start_run(lab, exp, spec, seed_offset=seed_offset)
    tracked, _ = repo.changed_files()
    after = guards.snapshot(repo.root, watched, tracked)
    if problems := guards.changes(before, after, _own_files(repo, exp)) + guards.rewritten_data(result.record):
        result = _refuse_run(lab, st, repo, result, problems, tracked)
    # Files the script wrote next to itself (checkpoints, caches) are outputs, not a proposer's edits:
    # the guards checked the tree before this run, so every new untracked file came from a run.
    _, untracked = repo.changed_files()
    new = sorted(set(untracked) - set(st.outputs) - set(st.editable))
    st.outputs.extend(p for p in new if not p.startswith(_own_files(repo, exp)))
    guards.save_code(_code_path(lab, st), guards.code_files(repo.root))
    return result


def _code_path(lab: Lab, st: LoopState) -> Path:
    return state_dir(lab, st.experiment, st.tag) / "code.json"


def _stray_code(lab: Lab, st: LoopState, repo: Repo) -> list[str]:
    """Untracked code (ignored included) that appeared since the last run: a commit would not hold it."""
    return guards.new_code(repo.root, _code_path(lab, st), {*repo.git("ls-files", "-z").split("\0"), *st.editable})


def _refuse_run(lab: Lab, st: LoopState, repo: Repo, result: RunResult, problems: list[str],
                tracked: list[str]) -> RunResult:
    """A run that changed what it may not (the evaluation, the code, bytecode): its value is not
    used, its record says why, and the untracked files it wrote move out of the tree."""
    from assay.store import records

    dest = state_dir(lab, st.experiment, st.tag) / f"refused-run-{st.iteration}"
    moved = guards.quarantine(repo.root, problems, tracked, dest)
    reason = (f"the run changed files a run may not change: {guards.listing(problems)}"
              + (f"; moved {len(moved)} file(s) it wrote to {dest}" if moved else ""))
    rec = records.RunRecord.from_dict(result.record).with_(status=records.Status.FAILED, reason=reason)
    records.write_record(result.path, rec)
    record = rec.to_dict()
    with lab.index() as index:
        index.upsert(result.path, record)
    return RunResult(result.path, record)


def _values(runs: list[RunResult], st: LoopState) -> tuple[list[float], RunResult | None]:
    values: list[float] = []
    for r in runs:
        v = run_value(r.record, st.value)
        if v is None:
            return values, r
        values.append(v)
    return values, None


def _crash_reason(run: RunResult) -> str:
    return f"{run.record['status']}: {run.record.get('reason', '')} (log: {run.path}/logs/output.log)"


def _code_key(repo: Repo, commit: str, editable: list[str]) -> str:
    """The editable files' content at `commit` (the guards keep every other file fixed): two
    commits with the same key run the same code, so they share their used seeds."""
    return hashlib.sha256(repo.git("ls-tree", "-r", commit, "--", *editable).encode()).hexdigest()[:16]


def _measure(lab: Lab, st: LoopState, desc: str, commit: str, runs: list[RunResult], count: int,
             repo: Repo) -> str | None:
    """Run `count` seeds of `commit` that this code has never run, appending them to `runs`;
    stops at the first that gives no value and returns why (None: all measured)."""
    key = _code_key(repo, commit, st.editable)
    for _ in range(count):
        offset = st.seeds_used.get(key, 0)
        st.seeds_used[key] = offset + 1
        try:
            run = _run(lab, st, desc, offset, commit)
        except (ConfigError, RunError) as exc:  # e.g. a candidate broke config.yaml: its code cannot start
            return f"failed: could not start the run: {exc.message}"
        runs.append(run)
        if run_value(run.record, st.value) is None:
            return _crash_reason(run)
        st.looks += 1  # its value is read to decide or to re-measure: one more look at the validation split
    return None


def _row(st: LoopState, commit: str, status: Decision, desc: str, runs: list[RunResult], values: list[float],
         delta: float | None, reason: str) -> results.Row:
    """A results.tsv row whose number is `values`' commit_value (none for a crash); `runs` lists
    every run the decision made, including those that do not count towards the number."""
    mem = max((r.record.get("peak_gpu_mem") or r.record.get("peak_rss") or 0 for r in runs), default=0)
    value = None if status == Decision.CRASH else results.commit_value(values)
    return results.Row(
        commit=commit[:7], metric=results.show(value) if value is not None else "0.000000", memory_gb=f"{mem / 2**30:.1f}",
        status=status, description=desc, delta=results.show_delta(delta),
        n=str(len(values) if value is not None else len(runs)), mean=results.show(value),
        std=f"{statistics.stdev(values):.3g}" if value is not None and len(values) > 1 else "",
        reason=reason, runs=" ".join(r.record["id"] for r in runs), tag=st.tag, iteration=str(st.iteration))


def current(lab: Lab) -> tuple[LoopState, Repo]:
    """The loop whose branch is checked out."""
    repo = Repo(lab.root)
    branch = repo.branch()
    if not branch.startswith("assay/"):
        raise GitError(f"The checked-out branch '{branch}' is not a loop branch",
                       "Check out the loop's branch (git checkout assay/TAG) or start one: assay loop start NAME --tag TAG ...")
    st = find_by_tag(lab, branch.split("/", 1)[1])
    return st, repo


def try_candidate(lab: Lab, description: str, force: bool = False, retry: bool = False) -> Outcome:
    """Guard, commit and evaluate the edits in the work tree; keep, discard or report a crash.

    Example: `try_candidate(find_lab(), "double the warmup steps").line()`

    Raises:
        GitError: a protected file changed, a file outside --edit changed, an empty or repeated diff,
            a pending crash not addressed, another command working on the loop.
    """
    st, _ = current(lab)
    with locked(lab, st):
        return _try(lab, description, force, retry)


def _try(lab: Lab, description: str, force: bool = False, retry: bool = False) -> Outcome:
    st, repo = current(lab)
    exp = load_experiment(lab, st.experiment)
    if not description.strip():
        raise ConfigError("Describe the idea in a few words", 'assay try "double the warmup steps"')
    guards.refuse_symlinks(repo.root, [*st.editable, *st.protected])
    for path, digest in st.protected.items():
        if file_hash(repo.root / path) != digest:
            raise GitError(f"Protected file {path} changed: the evaluation is fixed for the whole loop",
                           f"Revert it (git checkout {st.best_commit[:8] if st.best_commit else 'HEAD'} -- {path}) and try again.")
    if outside := _outside(repo, exp, st.editable, st.outputs, st.best_commit):
        raise GitError(f"Files outside the editable set changed: {guards.listing(outside)} (editable: {', '.join(st.editable)})",
                       "Move those edits into the editable files, or revert them.")
    if stray := _stray_code(lab, st, repo):
        raise GitError(f"Code appeared outside git since the last run: {guards.listing(stray)}; a commit would not hold it",
                       "Move that code into the editable files, or delete those files.")
    if st.best_commit is None:
        raise RunError("The loop has no baseline yet", f"assay loop resume {st.tag}")
    pend = st.pending_crash
    if pend and not retry:
        raise GitError(f"The crashed candidate '{pend['description']}' is still in the work tree",
                       f"Fix it and run: assay try --retry \"fix ...\"  (or drop it: assay loop drop {st.tag})")
    if retry and not pend:
        raise GitError("Nothing to retry: the last candidate did not crash", "assay try \"DESC\"")
    diff = repo.diff(st.best_commit, st.editable)
    if not diff.strip():
        raise GitError("The diff is empty: nothing to try", "Edit " + ", ".join(st.editable) + " first.")
    h = diff_hash(diff)
    if pend and h == pend["hash"]:
        raise GitError("Nothing changed since the crash", "Fix the crash in the editable files, then assay try --retry ...")
    if h in st.tried and not _decided(lab, st, st.tried[h]):
        raise GitError(f"Try {st.tried[h]} of this diff was interrupted before a decision (its process was killed)",
                       f"Recover the loop first (it records the try and gives the edits back): assay loop resume {st.tag}")
    if h in st.tried and not force and not retry:
        raise GitError(f"This diff was already tried (iteration {st.tried[h]}); repeating it wastes a run",
                       "Try a different idea, or retry it on purpose: assay try --force \"...\"")
    added, removed = diff_size(diff)
    st.iteration += 1
    if repo.head() != st.best_commit:
        repo.reset_branch(st.branch, st.best_commit, hard=False)  # keep edits; commit them on the best
    commit = repo.commit_paths(st.editable, f"assay try {st.iteration}: {description}")
    repo.save_ref(f"refs/assay/{st.tag}/tried/{st.iteration}", commit)
    st.tried[h] = st.iteration
    save(lab, st)

    decider = make_decision(st.decision, Settings(st.min_delta, st.confidence, st.max_repeats, st.lines_per_delta))
    runs: list[RunResult] = []
    decided: Decided | None = None
    crash: str | None = None
    while not (crash := _measure(lab, st, f"{st.iteration}-{slug(description)}", commit, runs, 1, repo)):
        values, _ = _values(runs, st)
        decided = decider.decide(Evidence(exp.goal, st.best_values, values, st.sigma, st.sigma_df, added, removed))
        if decided.decision != Decision.MORE:
            break
    values, _ = _values(runs, st)
    best_value = results.commit_value(st.best_values)
    fresh: list[float] = []
    if not crash and decided is not None and decided.decision == Decision.KEEP:
        # The runs that won the comparison are biased towards luck (the winner's curse), so a keep
        # is re-measured on seeds this code never ran: those runs alone give its value, its gain
        # and what later candidates must beat. A crash there makes the whole candidate a crash.
        confirm: list[RunResult] = []
        crash = _measure(lab, st, f"{st.iteration}-confirm", commit, confirm, max(1, st.repeats), repo)
        runs += confirm
        fresh, _ = _values(confirm, st)
        if crash:
            crash = f"on a fresh seed after it was selected, {crash}"
    ids = [r.record["id"] for r in runs]
    if crash:
        attempts = (pend["attempts"] + 1) if pend else 0
        dropped = attempts >= st.max_retries
        reason = crash + (f"; dropped after {attempts} retries" if dropped else "")
        results.append(_results_path(lab, st), _row(st, commit, Decision.CRASH, description, runs, [], None, reason))
        st.counts["crash"] += 1
        if dropped:
            repo.reset_branch(st.branch, st.best_commit, hard=True, keep=_own_files(repo, exp))
            st.pending_crash = None
        else:  # back to the best commit, the crashed edits left in the work tree to be fixed
            repo.reset_branch(st.branch, st.best_commit, hard=False)
            st.pending_crash = {"commit": commit, "hash": h, "attempts": attempts, "description": description}
            reason += f"; fix and `assay try --retry` ({attempts + 1}/{st.max_retries}) or `assay loop drop {st.tag}`"
        save(lab, st)
        return Outcome(Decision.DROPPED if dropped else Decision.CRASH, description, commit, values, None, reason, ids,
                       best_value, st.sigma, st.iteration, results.label(exp.metric, st.value))
    assert decided is not None
    for group in (values, fresh):  # a candidate's seeds measure noise as well as the baseline's
        if len(group) >= 2:
            st.noise_groups.append(group)
    st.sigma, st.sigma_df = pooled_sigma(st.noise_groups)
    measured = fresh if decided.decision == Decision.KEEP else values
    value = results.commit_value(measured)
    delta = results.gain(value, best_value, exp.goal)
    reason = decided.reason
    if decided.decision == Decision.KEEP:
        reason = (f"selected on {len(values)} run(s): {reason}; "
                  f"re-measured on {len(fresh)} fresh seed(s): {results.show(value)}, {results.show_delta(delta)} vs best")
    results.append(_results_path(lab, st), _row(st, commit, decided.decision, description, runs, measured, delta, reason))
    st.counts[decided.decision] += 1
    st.pending_crash = None
    if decided.decision == Decision.KEEP:
        st.best_commit, st.best_values, st.best_runs = commit, fresh, ids
        best_value = value
    else:
        repo.reset_branch(st.branch, st.best_commit, hard=True, keep=_own_files(repo, exp))
    save(lab, st)
    return Outcome(decided.decision, description, commit, values, delta, reason, ids, best_value,
                   st.sigma, st.iteration, results.label(exp.metric, st.value), value, fresh)


def _decided(lab: Lab, st: LoopState, iteration: int) -> bool:
    """Whether results.tsv has the decision of try `iteration` (a killed try has none)."""
    return any(r.tag == st.tag and r.iteration == str(iteration) for r in results.read(_results_path(lab, st)))


def set_aside(lab: Lab, tag: str, name: str) -> Path:
    """Clear a proposal the guards refused, losing nothing: its diff against the best commit
    (new files included) goes to loops/TAG/NAME.patch, new files are moved to loops/TAG/NAME/,
    and the loop's branch and work tree go back to the best commit. Returns the patch path."""
    st = find_by_tag(lab, tag)
    exp = load_experiment(lab, st.experiment)
    repo = Repo(exp.path)
    if repo.branch() != st.branch:
        raise GitError(f"Loop {tag} runs on {st.branch}, but {repo.branch()} is checked out", f"git checkout {st.branch}")
    best = st.best_commit or repo.head()
    _, untracked = repo.changed_files()
    own = _own_files(repo, exp)
    new = [u for u in untracked if u not in st.outputs and not u.startswith(own)]
    new += [p for p in _stray_code(lab, st, repo) if p not in new]
    folder = state_dir(lab, st.experiment, tag)
    folder.mkdir(parents=True, exist_ok=True)
    patch = folder / f"{name}.patch"
    patch.write_text(repo.git("diff", best) + (repo.diff(best, new) if new else ""))
    for rel in new:  # moved, not deleted: a proposer's new files are its work too
        dest = folder / name / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        (repo.root / rel).replace(dest)
    if st.pending_crash:
        st.pending_crash = None
        save(lab, st)
    repo.reset_branch(st.branch, best, hard=True, keep=_own_files(repo, exp))
    return patch


def drop(lab: Lab, tag: str) -> str:
    """Abandon a crashed candidate: its edits leave the work tree (they stay in refs/assay/TAG/tried/N)."""
    with locked(lab, find_by_tag(lab, tag)):
        return _drop(lab, tag)


def _drop(lab: Lab, tag: str) -> str:
    st = find_by_tag(lab, tag)
    repo = Repo(lab.experiment_dir(st.experiment))
    if not st.pending_crash:
        raise GitError(f"Loop '{tag}' has no crashed candidate to drop", "assay loop status")
    repo.reset_branch(st.branch, st.best_commit or repo.head(), hard=True,
                      keep=_own_files(repo, load_experiment(lab, st.experiment)))
    desc: str = st.pending_crash["description"]
    st.pending_crash = None
    save(lab, st)
    return desc


def status(lab: Lab, tag: str | None = None) -> dict[str, Any]:
    st = find_by_tag(lab, tag) if tag else current(lab)[0]
    exp = load_experiment(lab, st.experiment)
    rows = [r for r in results.read(_results_path(lab, st)) if r.tag == st.tag]
    return {
        "tag": st.tag, "experiment": st.experiment, "branch": st.branch, "metric": exp.metric, "goal": exp.goal,
        "value": st.value, "label": results.label(exp.metric, st.value),
        "decision": st.decision, "best_commit": st.best_commit,
        "best": results.commit_value(st.best_values), "best_n": len(st.best_values),
        "sigma": st.sigma, "sigma_df": st.sigma_df, "iterations": st.iteration,
        "counts": {str(d): sum(r.status == d for r in rows) for d in results.RECORDED},  # crashes included
        "pending_crash": st.pending_crash, "editable": st.editable, "protected": list(st.protected),
        "results": str(_results_path(lab, st)), "last": [r.to_dict() for r in rows[-5:]],
        "looks": st.looks, "looks_lower_bound": st.looks_lower_bound, "confirms": st.confirms,
        "confirmation": _latest_confirmation(lab, st),
        "in_flight": _in_flight(lab, st),
    }


def _in_flight(lab: Lab, st: LoopState) -> dict[str, Any]:
    from assay.loop.inflight import in_flight

    return in_flight(lab, st)


def _latest_confirmation(lab: Lab, st: LoopState) -> dict[str, Any] | None:
    from assay.loop.confirmation import latest

    return latest(lab, st)


def _incumbent_values(lab: Lab, row: results.Row, which: str) -> list[float]:
    """The metric values a kept row's runs left in their folders: the re-measurement on fresh
    seeds where there is one (what later candidates are compared with), else every finished run."""
    measured, confirm = _row_values(lab, row, which)
    return confirm or measured


def _row_values(lab: Lab, row: results.Row, which: str) -> tuple[list[float], list[float]]:
    """(the candidate's own values, its re-measurement on fresh seeds), read from its run folders."""
    from assay.store.records import read_record

    found: list[tuple[bool, float]] = []
    for rid in row.runs.split():
        experiment, _, folder = rid.partition("/")
        try:
            rec = read_record(lab.experiment_dir(experiment) / "runs" / folder)
        except StoreError:
            continue  # a deleted or torn run folder: the row's mean still stands as a fallback
        v = run_value(rec, which)
        if v is not None:
            found.append(("-confirm" in str(rec.get("desc", "")), v))
    return [v for c, v in found if not c], [v for c, v in found if c]


def _recount_looks(lab: Lab, st: LoopState, rows: list[results.Row], notes: list[str]) -> None:
    """The looks and confirms, from the run folders and confirms.jsonl: never fewer than state.json says."""
    from assay.loop.confirmation import count_looks, read_confirms

    looks, lower = count_looks(lab, st, rows)
    if looks > st.looks or (lower and looks >= st.looks):
        st.looks, st.looks_lower_bound = looks, lower
        if lower:
            notes.append(f"some run folders of loop {st.tag} are gone: at least {looks} looks at the validation metric")
    st.confirms = max(st.confirms, len(read_confirms(lab, st)))


def resume(lab: Lab, tag: str) -> dict[str, Any]:
    """Rebuild the loop's progress from git refs + results.tsv after an interruption or a kill."""
    with locked(lab, find_by_tag(lab, tag, recover=True)):
        return _resume(lab, tag)


def _resume(lab: Lab, tag: str) -> dict[str, Any]:
    st = find_by_tag(lab, tag)
    repo = Repo(lab.experiment_dir(st.experiment))
    notes = []
    if removed := repo.clear_stale_locks():  # we hold the loop lock: the git that left them died with a try
        notes.append(f"removed the git lock(s) a killed git left behind: {', '.join(removed)}")
    if not repo.ref_exists(f"refs/heads/{st.branch}"):
        raise GitError(f"Branch {st.branch} is gone", f"Start a new loop: assay loop start {st.experiment} --tag NEW ...")
    if repo.branch() != st.branch:
        if _outside(repo, load_experiment(lab, st.experiment), [], st.outputs):
            raise GitError(f"Cannot switch to {st.branch}: the work tree has uncommitted changes", "Commit them first: git status")
        repo.git("checkout", "-q", st.branch)
    rows = [r for r in results.read(_results_path(lab, st)) if r.tag == tag]
    keeps = [r for r in rows if r.status == Decision.KEEP]
    if keeps:
        full = repo.git("rev-parse", keeps[-1].commit).strip()
        st.best_commit = full
        last_keep = keeps[-1]
        rebuilt = _incumbent_values(lab, last_keep, st.value)
        if rebuilt:  # the run folders are the truth; state.json may predate the last keep (a kill)
            st.best_values, st.best_runs = rebuilt, last_keep.runs.split()
        elif last_keep.mean and not st.best_values:
            st.best_values = [float(last_keep.mean)] * max(1, int(last_keep.n or 1))
    st.counts = {str(d): sum(r.status == d for r in rows) for d in results.RECORDED}
    _recount_looks(lab, st, rows, notes)
    if not st.noise_groups:  # a lost state.json: the seeds' spread is still in the run folders
        for r in rows:
            if r.status in (Decision.KEEP, Decision.DISCARD):
                st.noise_groups += [g for g in _row_values(lab, r, st.value) if len(g) >= 2]
        st.sigma, st.sigma_df = pooled_sigma(st.noise_groups)
    refs = repo.git("for-each-ref", "--format=%(refname)", f"refs/assay/{tag}/tried/").split()
    st.iteration = max([int(r.rsplit("/", 1)[1]) for r in refs] + [st.iteration])
    for ref in refs:
        c = repo.git("rev-parse", ref).strip()
        st.tried.setdefault(diff_hash(repo.git("diff", f"{c}~1", c, "--", *st.editable)), int(ref.rsplit("/", 1)[1]))
    from assay.loop import inflight

    notes += inflight.cleanup(lab, st, repo)  # a killed `loop run --parallel`: its worktrees and candidate refs
    if note := inflight.finish_keep(repo, st, _own_files(repo, load_experiment(lab, st.experiment))):
        notes.append(note)
    tip = repo.head()
    if st.best_commit is None:
        save(lab, st)
        out = run_baseline(lab, st)
        notes.append(f"ran the baseline: {out.line()}")
    elif tip != st.best_commit:
        decided = {r.commit: r for r in rows}
        row = decided.get(tip[:7])
        if row is None:  # killed between the commit and the decision: give the edits back, keep the record
            st.iteration = max(st.iteration, 1)
            results.append(_results_path(lab, st), results.Row(
                commit=tip[:7], metric="0.000000", memory_gb="0.0", status=Decision.CRASH, description="(interrupted candidate)",
                reason="interrupted before a decision; edits returned to the work tree (assay try --force to re-run)",
                tag=tag, iteration=str(st.iteration)))
            repo.reset_branch(st.branch, st.best_commit, hard=False)
            notes.append(f"candidate {tip[:8]} had no decision: its edits are back in the work tree")
        elif row.status != Decision.KEEP:
            repo.reset_branch(st.branch, st.best_commit, hard=row.status != Decision.CRASH,
                              keep=_own_files(repo, load_experiment(lab, st.experiment)))
            notes.append(f"finished the interrupted reset of {tip[:8]} ({row.status})")
    save(lab, st)
    return {"tag": tag, "best_commit": st.best_commit, "iterations": st.iteration, "notes": notes}
