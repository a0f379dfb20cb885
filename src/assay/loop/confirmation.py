"""The loop's multi-test leakage: its looks at the validation split, and `assay loop confirm`.

Every keep-or-discard decision reads the validation metric, so a loop that tries hundreds of
candidates against one split can keep changes that only fit that split. The loop counts its looks
(every run whose value it read, to decide or to re-measure), and `loop confirm` measures the
baseline commit and the best commit on a split the loop never saw (`confirm:` in experiment.yaml),
with repeated seeds, once. The confirmed gain and its interval stand next to the claimed
validation gain; their difference is the shrinkage.

Each confirm appends one line to loops/TAG/confirms.jsonl (fsynced), and the same best commit is
not confirmed twice unless forced: the held-out split is used once.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, GitError, RunError, StoreError
from assay.experiment import ConfirmSettings, Experiment, confirm_settings, load_experiment
from assay.lab import Lab
from assay.loop import results
from assay.loop.decisions import Decision
from assay.loop.results import run_value
from assay.loop.state import LoopState, find_by_tag, locked, save, state_dir
from assay.runner.launch import RunResult

CONFIRMS_FILE = "confirms.jsonl"
ROLES = ("baseline", "best")


@dataclass(frozen=True)
class Confirmation:
    """One `loop confirm`: the baseline and the best commit measured on the held-out split.

    Gains are positive when better (best - baseline for a `max` metric, baseline - best for `min`),
    as the loop's Δ column is."""

    tag: str
    experiment: str
    number: int  # 1 for the loop's first confirm
    metric: str
    goal: str
    split: str  # how the held-out evaluation runs, e.g. "split=test, 5 seeds"
    baseline_commit: str
    best_commit: str
    baseline_values: list[float]
    best_values: list[float]
    baseline_runs: list[str]
    best_runs: list[str]
    confirmed_gain: float | None  # None: a run crashed before both sides were measured
    ci: list[float] | None  # [lo, hi] of the confirmed gain
    confidence: float
    claimed_gain: float | None  # best - baseline on the validation split, from results.tsv
    shrinkage: float | None  # claimed - confirmed
    looks: int
    looks_lower_bound: bool
    forced: bool
    complete: bool
    reason: str  # why the attempt stopped (a crash), "" when complete
    at: float

    @property
    def survives(self) -> bool | None:
        """Whether the gain survives the held-out split (its interval lies above 0); None: not measured."""
        return None if self.ci is None else self.ci[0] > 0

    def summary(self) -> str:
        """The confirmed gain next to the claimed one, as the verdict quotes it."""
        g = results.show_delta(self.confirmed_gain) or "-"
        ci = f" [{results.show(self.ci[0])}, {results.show(self.ci[1])}]" if self.ci else ""
        claimed = results.show_delta(self.claimed_gain) or "-"
        shrink = "" if self.shrinkage is None else f", shrinkage {results.show(self.shrinkage)}"
        return (f"confirmed on the held-out split ({self.split}): gain {g}{ci} ({self.confidence:.0%} CI) vs "
                f"{claimed} claimed on validation after {_looks_text(self.looks, self.looks_lower_bound)}{shrink}")

    def line(self) -> str:
        if not self.complete:
            return f"confirm {self.number} of loop {self.tag} stopped: {self.reason}"
        if self.survives:
            outcome = "the gain survives the held-out split"
        elif self.ci is not None and self.ci[1] < 0:
            outcome = "the best commit is WORSE than the baseline on the held-out split"
        else:
            outcome = "the claimed gain does NOT survive the held-out split (its interval contains 0)"
        means = (f"{self.metric}: baseline {results.show(statistics.fmean(self.baseline_values))} "
                 f"(n={len(self.baseline_values)}), best {results.show(statistics.fmean(self.best_values))} "
                 f"(n={len(self.best_values)})")
        return f"confirm {self.number} of loop {self.tag}: {means}; {self.summary()}\n{outcome}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "survives": self.survives}


def _looks_text(looks: int, lower: bool) -> str:
    return f"{'at least ' if lower else ''}{looks} look{'s' if looks != 1 else ''}"


def confirms_path(lab: Lab, st: LoopState) -> Path:
    return state_dir(lab, st.experiment, st.tag) / CONFIRMS_FILE


def read_confirms(lab: Lab, st: LoopState) -> list[dict[str, Any]]:
    """Every recorded confirm of the loop, oldest first; a torn last line (a killed writer) is skipped."""
    path = confirms_path(lab, st)
    if not path.is_file():
        return []
    out = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            out.append(json.loads(text))
        except ValueError:
            if i == len(lines):
                continue
            raise StoreError(f"{path}:{i} is not a JSON line", f"Fix or remove line {i} of {path}.") from None
    return out


def latest(lab: Lab, st: LoopState) -> dict[str, Any] | None:
    """The last complete confirm, or None."""
    done = [c for c in read_confirms(lab, st) if c.get("complete")]
    return done[-1] if done else None


def _append(path: Path, line: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def count_looks(lab: Lab, st: LoopState, rows: list[results.Row]) -> tuple[int, bool]:
    """The loop's looks rebuilt from its run folders (runs tagged with the loop whose value it read),
    and whether that is only a lower bound (a run results.tsv lists has lost its folder)."""
    from assay.store.records import read_record

    exp_runs = lab.experiment_dir(st.experiment) / "runs"
    seen: set[str] = set()
    looks = 0
    for folder in sorted(exp_runs.iterdir()) if exp_runs.is_dir() else []:
        try:
            rec = read_record(folder)
        except StoreError:
            continue
        if (rec.get("tags") or {}).get("loop") != st.tag:
            continue
        seen.add(str(rec.get("id")))
        looks += run_value(rec, st.value) is not None
    missing = [rid for r in rows if r.status != Decision.CRASH for rid in r.runs.split() if rid not in seen]
    return looks + len(missing), bool(missing)


def baseline_commit(lab: Lab, st: LoopState) -> str:
    """The loop's baseline: the commit of its first kept row in results.tsv."""
    from assay.gitops import Repo

    rows = [r for r in results.read(lab.experiment_dir(st.experiment) / "results.tsv") if r.tag == st.tag]
    keeps = [r for r in rows if r.status == Decision.KEEP]
    if not keeps:
        raise RunError(f"Loop '{st.tag}' has no baseline in results.tsv", f"Run it: assay loop resume {st.tag}")
    return Repo(lab.experiment_dir(st.experiment)).git("rev-parse", keeps[0].commit).strip()


def claimed_gain(lab: Lab, st: LoopState, goal: str) -> float | None:
    """The best commit's gain over the baseline on the validation split, as results.tsv shows them."""
    rows = [r for r in results.read(lab.experiment_dir(st.experiment) / "results.tsv") if r.tag == st.tag]
    keeps = [r for r in rows if r.status == Decision.KEEP]
    best = next((r for r in reversed(keeps) if st.best_commit and st.best_commit.startswith(r.commit)), None)
    if not keeps or best is None:
        return None
    return results.gain(best.value, keeps[0].value, goal)


def confirm(lab: Lab, tag: str, force: bool = False, confidence: float = 0.95) -> Confirmation:
    """Run the loop's baseline and best commits on the held-out split, `confirm.seeds` seeds each,
    in temporary git worktrees (the work tree is untouched); record and return the confirmed gain.

    Example: `print(confirm(find_lab(), "nov23").line())`

    Raises:
        ConfigError: the experiment declares no `confirm:`, or a malformed one.
        GitError: the best commit was confirmed before (pass force=True), nothing kept beyond the
            baseline, another command working on the loop.
        RunError: a held-out run crashed (the attempt is recorded).
    """
    st = find_by_tag(lab, tag)
    with locked(lab, st):
        return _confirm(lab, tag, force, confidence)


def _confirm(lab: Lab, tag: str, force: bool, confidence: float) -> Confirmation:
    st = find_by_tag(lab, tag)
    exp = load_experiment(lab, st.experiment)
    settings = confirm_settings(exp)
    if settings is None:
        raise ConfigError(f"Experiment '{exp.name}' declares no `confirm:` in {exp.file}: there is no held-out split to confirm on",
                          "Add e.g.\n  confirm:\n    params: {split: test}\n    seeds: 5")
    base = baseline_commit(lab, st)
    best = st.best_commit
    if not best or best == base:
        raise GitError(f"Loop '{tag}' has kept nothing beyond its baseline {base[:8]}: there is no gain to confirm",
                       'Try candidates first: assay try "..."')
    past = read_confirms(lab, st)
    before = [c for c in past if c.get("complete") and c.get("best_commit") == best]
    if before and not force:
        c = before[-1]
        raise GitError(f"Loop '{tag}' already confirmed its best commit {best[:8]} on the held-out split (confirm {c['number']}: "
                       f"gain {results.show_delta(c['confirmed_gain'])}); the held-out split is used once",
                       f"Keep improving on validation and confirm the next best, or look again anyway: assay loop confirm {tag} --force")
    measured: dict[str, tuple[list[float], list[str]]] = {}
    reason = ""
    for role, commit in zip(ROLES, (base, best)):
        values, ids, crash = _measure_at(lab, st, exp, settings, role, commit)
        measured[role] = (values, ids)
        if crash:
            reason = f"the {role} ({commit[:8]}) {crash}"
            break
    st.confirms = max(st.confirms, len(past)) + 1
    out = _result(lab, st, exp, settings, base, best, measured, confidence, force, reason)
    _append(confirms_path(lab, st), out.to_dict())
    save(lab, st)
    if reason:
        raise RunError(f"Confirm {out.number} of loop '{tag}' stopped: {reason}",
                       f"Fix the held-out evaluation, then: assay loop confirm {tag}")
    return out


def _result(lab: Lab, st: LoopState, exp: Experiment, settings: ConfirmSettings, base: str, best: str,
            measured: dict[str, tuple[list[float], list[str]]], confidence: float, force: bool, reason: str) -> Confirmation:
    from assay.stats import difference_interval

    (bv, bids), (cv, cids) = measured.get("baseline", ([], [])), measured.get("best", ([], []))
    gain = ci = None
    if not reason:
        better, worse = (cv, bv) if exp.goal == "max" else (bv, cv)
        interval = difference_interval(better, worse, confidence)
        gain = float(results.show_delta(statistics.fmean(better) - statistics.fmean(worse)))
        if interval is not None:
            ci = [interval[1], interval[2]]
    claimed = claimed_gain(lab, st, exp.goal)
    shrinkage = None if gain is None or claimed is None else float(results.show_delta(claimed - gain))
    return Confirmation(
        tag=st.tag, experiment=st.experiment, number=st.confirms, metric=results.label(exp.metric, st.value), goal=exp.goal,
        split=settings.describe(), baseline_commit=base, best_commit=best, baseline_values=bv, best_values=cv,
        baseline_runs=bids, best_runs=cids, confirmed_gain=gain, ci=ci, confidence=confidence, claimed_gain=claimed,
        shrinkage=shrinkage, looks=st.looks, looks_lower_bound=st.looks_lower_bound, forced=force, complete=not reason,
        reason=reason, at=round(time.time(), 3))


def _measure_at(lab: Lab, st: LoopState, exp: Experiment, settings: ConfirmSettings, role: str,
                commit: str) -> tuple[list[float], list[str], str | None]:
    """`settings.seeds` held-out runs of `commit` (seeds = config's seed + 0, 1, ...), each in a
    worktree of that commit; stops at the first that gives no value and says why."""
    from assay.gitops import Repo, worktree_at
    from assay.rerun import link_runs
    from assay.runner.launch import RunSpec, start_run

    repo = Repo(exp.path)
    exp_rel = exp.path.resolve().relative_to(repo.root.resolve())
    lab_rel = lab.root.resolve().relative_to(repo.root.resolve())
    values: list[float] = []
    ids: list[str] = []
    with worktree_at(repo.root, commit) as wt:
        link_runs(wt / exp_rel, exp.runs_dir)
        tree_exp = load_experiment(Lab(wt / lab_rel, lab.settings), exp.name)
        spec = RunSpec(exp.name, f"{st.tag}-heldout-{role}", timeout=st.timeout, entry=settings.entry,
                       extra_params=settings.params, tags={"loop_confirm": st.tag, "role": role, "commit": commit[:12]})
        for offset in range(settings.seeds):
            try:
                res = start_run(lab, tree_exp, spec, seed_offset=offset)
            except (ConfigError, RunError) as exc:
                return values, ids, f"could not start its held-out run: {exc.message}"
            run = RunResult(exp.runs_dir.resolve() / res.path.name, res.record)
            with lab.index() as index:  # the launcher indexed it under the worktree path; point it home
                index.upsert(run.path, run.record)
            ids.append(str(run.record["id"]))
            v = run_value(run.record, st.value)
            if v is None:
                return values, ids, (f"{run.record['status']} on the held-out split: {run.record.get('reason', '')} "
                                     f"(log: {run.path}/logs/output.log)")
            values.append(v)
    return values, ids, None


def loop_confirmations(lab: Lab, exp: Experiment) -> list[dict[str, Any]]:
    """Per loop of `exp`: whether its current best was confirmed on the held-out split, with the
    numbers, and a sentence for the verdict. Empty when the experiment ran no loop."""
    from assay.loop.state import load

    loops = exp.path / "loops"
    out = []
    for f in sorted(loops.glob("*/state.json")) if loops.is_dir() else []:
        try:
            st = load(lab, exp.name, f.parent.name)
        except (GitError, ValueError, TypeError):
            continue  # not a loop's state (or unreadable): nothing to say about it
        if not st.best_commit:
            continue
        done = [c for c in read_confirms(lab, st) if c.get("complete") and c.get("best_commit") == st.best_commit]
        claimed = claimed_gain(lab, st, exp.goal)
        note: dict[str, Any] = {"tag": st.tag, "best_commit": st.best_commit, "looks": st.looks,
                                "looks_lower_bound": st.looks_lower_bound, "confirms": st.confirms,
                                "claimed_gain": claimed, "confirmed": bool(done)}
        if done:
            c = done[-1]
            note.update({k: c[k] for k in ("confirmed_gain", "ci", "confidence", "shrinkage", "split", "survives", "number")})
            kept: dict[str, Any] = {f.name: c.get(f.name) for f in fields(Confirmation)}
            note["text"] = f"loop {st.tag}: {Confirmation(**kept).summary()}"
        else:
            how = (f"assay loop confirm {st.tag}" if "confirm" in exp.raw
                   else f"declare `confirm:` in {exp.file.name}, then assay loop confirm {st.tag}")
            note["text"] = (f"loop {st.tag}: its gain of {results.show_delta(claimed) or '-'} on the validation split is "
                            f"unconfirmed: {_looks_text(st.looks, st.looks_lower_bound)} at the validation metric produced it "
                            f"(to confirm it on a held-out split: {how})")
        out.append(note)
    return out


def overturned_by(lab: Lab, exp: Experiment, notes: list[dict[str, Any]], runs: list[str]) -> dict[str, Any] | None:
    """The note of a loop whose gain did not survive its held-out confirmation, when every run in
    `runs` (those that support a verdict) is one that loop ran on the validation split; else None."""
    failed = [n for n in notes if n["confirmed"] and n.get("survives") is False]
    rows = results.read(exp.path / "results.tsv") if failed else []
    for n in failed:
        selected = {rid for r in rows if r.tag == n["tag"] for rid in r.runs.split()}
        if runs and set(runs) <= selected:
            return n
    return None
