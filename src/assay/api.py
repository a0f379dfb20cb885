"""The front door: what the `assay` commands do, as functions with keyword-only options and typed results.

    import assay
    assay.run("digits", "baseline", params={"alpha": 1e-3})
    table = assay.runs(experiment="digits", sort="val_f1")
    cmp = assay.compare("digits", by=["alpha"])
    assay.verdict("digits").verdict            # 'supported' | 'refuted' | 'inconclusive'
    assay.sweep("digits", {"alpha": [1e-4, 1e-3]}, parallel=2)

Every function takes `lab=`: a `Lab`, a folder (the lab in it or its nearest parent) or None (the
lab ASSAY_LAB names, else the one around the working directory). Every result has `to_dict()`,
which is exactly what the matching command prints under `--json` (docs/ecosystem.md lists the keys).
Errors are `assay.errors.AssayError` subclasses whose message names the fix.

This module imports nothing heavy at load: each function imports what it needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, overload

if TYPE_CHECKING:
    from assay.checks.data import DataReport
    from assay.checks.repro import CheckResult
    from assay.errors import AssayError
    from assay.gates import GateResult
    from assay.journal import Entry
    from assay.lab import Lab
    from assay.report.plots import Figure
    from assay.report.report import ReportResult
    from assay.report.verdict import Verdict
    from assay.rerun import RerunResult
    from assay.runner.detach import Detached, NotStarted
    from assay.runner.launch import RunObserver, RunResult
    from assay.sweep.driver import SweepConfig, SweepEvent, SweepOutcome
    from assay.sweep.space import SearchSpace

LabLike = Union["Lab", str, Path, None]

__all__ = [
    "Comparison", "ExperimentInfo", "Figures", "Ignored", "Journal", "LabInfo", "Note", "Reindexed", "RunDetails",
    "Runs", "RunsTable", "Status", "Waited", "best", "check", "check_data", "check_gate", "compare", "export_mlflow",
    "find", "import_mlflow", "init", "journal", "ignore", "json_safe", "new_experiment", "note", "plot", "reindex",
    "report", "rerun", "run", "runs", "show", "status", "sweep", "verdict", "wait",
]


def find(lab: LabLike = None) -> Lab:
    """The lab `lab` names: a Lab as is, a folder's (or its nearest parent's), else ASSAY_LAB's or the cwd's.

    Raises:
        ConfigError: no lab there (the hint says `assay init`).
    """
    from assay.lab import Lab, find_lab

    if isinstance(lab, Lab):
        return lab
    return find_lab(None if lab is None else Path(lab))


def json_safe(v: Any) -> Any:
    """Strict JSON for agents: NaN/inf become the strings "nan"/"inf"/"-inf", tuples lists, keys strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class _Raw:
    """A result read from the index as the `--json` object: typed fields for Python, `to_dict()` the whole."""

    raw: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True)
class LabInfo:
    root: Path
    written: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "written": list(self.written)}


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment `new_experiment` made; `adoption` is what reading an adopted script found (else None)."""

    experiment: str
    path: Path
    metric: str
    goal: str
    entry: str
    workdir: str  # as experiment.yaml writes it (an adopted script runs in its own folder)
    adoption: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        found = self.adoption
        adopted = None if found is None else {
            "kind": found.kind, "style": found.style, "notes": list(found.notes),
            "params": [{"name": p.name, "default": p.default, "type": p.type, "required": p.required} for p in found.params]}
        return {"experiment": self.experiment, "path": str(self.path), "metric": self.metric, "goal": self.goal,
                "entry": self.entry, "adopted": adopted}


@dataclass(frozen=True)
class Runs:
    """The runs one `run` call made (one per seed); `status` is `ok` only when all ended ok."""

    runs: list[RunResult]

    def __iter__(self) -> Iterator[RunResult]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, i: int) -> RunResult:
        return self.runs[i]

    @property
    def final(self) -> list[RunResult]:
        """The runs that decide the outcome: a run the OOM ladder retried is decided by its retry."""
        retried = {(r.record.get("tags") or {}).get("oom_retry_of") for r in self.runs}
        return [r for r in self.runs if r.record.get("id") not in retried]

    @property
    def status(self) -> str:
        statuses = [r.status for r in self.final]
        if "interrupted" in statuses:
            return "interrupted"
        return next((s for s in statuses if s != "ok"), "ok")

    @property
    def exit_code(self) -> int:
        """As `assay run` exits (README, "Exit codes"): 130 interrupted, 1 any run not ok, else 0."""
        return {"ok": 0, "interrupted": 130}.get(self.status, 1)

    def value(self, metric: str | None = None, which: str = "last") -> float | None:
        """The last run's value of `metric` (default: the primary), its `last` or `best`."""
        rec = self.runs[-1].record
        return ((rec.get("metrics") or {}).get(metric or rec.get("primary_metric")) or {}).get(which)

    def to_dict(self) -> list[dict[str, Any]]:
        return [{**r.record, "path": str(r.path)} for r in self.runs]


@dataclass(frozen=True)
class Waited:
    runs: list[dict[str, Any]]
    timed_out: bool
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "timed_out": self.timed_out, "exit": self.exit_code}


@dataclass(frozen=True)
class RunsTable(_Raw):
    """`runs()`: the matching runs, newest first (at most `limit`), and how many matched in all."""

    total: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RunDetails(_Raw):
    """One run's record (`show`)."""

    id: str = ""
    status: str = ""
    path: str = ""


@dataclass(frozen=True)
class Comparison(_Raw):
    """Configurations (params, entry, code) with mean ± std over seeds; `rows[best]` is the best one."""

    experiment: str = ""
    metric: str = ""
    goal: str = ""
    value: str = "last"
    by: list[str] = field(default_factory=list)
    best: int | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def columns(self) -> tuple[list[str], list[str]]:
        """The `by` params its rows are told apart by, then `entry` / `code` when asked for or when they differ."""
        from assay.store.query import comparison_columns

        return comparison_columns(self.raw)


@dataclass(frozen=True)
class Status(_Raw):
    running: list[dict[str, Any]] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Reindexed(_Raw):
    runs: int = 0
    newly_lost: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class BestRun(_Raw):
    run: str = ""
    path: str = ""
    artifact: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class MlflowTransfer(_Raw):
    """What `export_mlflow` sent or `import_mlflow` brought in (keys as `assay export|import mlflow --json`)."""


@dataclass(frozen=True)
class Note:
    entry: Entry
    journal: Path

    def to_dict(self) -> dict[str, Any]:
        return {**self.entry.to_dict(), "journal": str(self.journal)}


@dataclass(frozen=True)
class Journal:
    entries: list[Entry]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_dict(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries]


@dataclass(frozen=True)
class Ignored:
    id: str
    path: Path
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "why": self.why}


@dataclass(frozen=True)
class Figures:
    figures: list[Figure]

    def __iter__(self) -> Iterator[Figure]:
        return iter(self.figures)

    def __len__(self) -> int:
        return len(self.figures)

    def to_dict(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.figures]


_R = TypeVar("_R", bound=_Raw)


def _raw(cls: type[_R], data: dict[str, Any]) -> _R:
    names = {f.name for f in fields(cls) if f.name != "raw"}
    return cls(raw=data, **{k: data[k] for k in names if k in data})


# ------------------------------------------------------------------ labs and experiments


def init(path: str | Path | None = None) -> LabInfo:
    """Make `path` (default: the working directory) a lab; idempotent. `assay init`."""
    from assay.lab import init_lab

    lab, written = init_lab(None if path is None else Path(path))
    return LabInfo(lab.root, list(written))


def new_experiment(name: str, *, hypothesis: str, metric: str | None = None, goal: str | None = None,
                   success: str | None = None, failure: str | None = None, secondary: Sequence[str] | None = None,
                   from_: str | None = None, entry: str | None = None, timeout: str | None = None,
                   script: str | Path | None = None, lab: LabLike = None) -> ExperimentInfo:
    """Create experiments/NAME/ with its hypothesis, criteria, config and entry point. `assay new`.

    With `script=`, adopt that existing script where it is (its params are read; nothing runs).

    Raises:
        ConfigError: no hypothesis, a bad criterion or goal, the name already taken.
    """
    from assay.errors import ConfigError

    if not hypothesis:
        raise ConfigError("An experiment needs a hypothesis", f"assay new {name} --hypothesis \"X improves Y because Z\" ...")
    the_lab = find(lab)
    found = None
    if script is not None:
        from assay.adopt import adopt_script

        exp, found = adopt_script(the_lab, name, Path(script), hypothesis=hypothesis, metric=metric, goal=goal,
                                  success=success, failure=failure, secondary=list(secondary or []) or None, timeout=timeout)
    else:
        from assay.experiment import new_experiment as make

        exp = make(the_lab, name, hypothesis, metric, goal, success, failure, list(secondary) if secondary else None,
                   from_, entry, timeout)
    return ExperimentInfo(exp.name, exp.path, exp.metric, exp.goal, exp.entry, str(exp.raw.get("workdir") or exp.workdir), found)


# ------------------------------------------------------------------ running


@overload
def run(name: str, desc: str = "run", *, params: Mapping[str, Any] | None = None, overrides: Sequence[str] = (),
        seed: int | None = None, repeat: int = 1, timeout: str | None = None, entry: str | None = None,
        tags: Mapping[str, str] | None = None, follow: bool = False, smoke: bool = False,
        oom_ladder: bool | None = None, approve_locked: Sequence[str] = (), detach: Literal[False] = False,
        observer: RunObserver | None = None, say: Callable[[str], None] | None = None,
        lab: LabLike = None) -> Runs: ...


@overload
def run(name: str, desc: str = "run", *, params: Mapping[str, Any] | None = None, overrides: Sequence[str] = (),
        seed: int | None = None, repeat: int = 1, timeout: str | None = None, entry: str | None = None,
        tags: Mapping[str, str] | None = None, follow: bool = False, smoke: bool = False,
        oom_ladder: bool | None = None, approve_locked: Sequence[str] = (), detach: Literal[True],
        observer: RunObserver | None = None, say: Callable[[str], None] | None = None,
        lab: LabLike = None) -> Detached: ...


@overload
def run(name: str, desc: str = "run", *, params: Mapping[str, Any] | None = None, overrides: Sequence[str] = (),
        seed: int | None = None, repeat: int = 1, timeout: str | None = None, entry: str | None = None,
        tags: Mapping[str, str] | None = None, follow: bool = False, smoke: bool = False,
        oom_ladder: bool | None = None, approve_locked: Sequence[str] = (), detach: bool = False,
        observer: RunObserver | None = None, say: Callable[[str], None] | None = None,
        lab: LabLike = None) -> Runs | Detached: ...


def run(name: str, desc: str = "run", *, params: Mapping[str, Any] | None = None, overrides: Sequence[str] = (),
        seed: int | None = None, repeat: int = 1, timeout: str | None = None, entry: str | None = None,
        tags: Mapping[str, str] | None = None, follow: bool = False, smoke: bool = False,
        oom_ladder: bool | None = None, approve_locked: Sequence[str] = (), detach: bool = False,
        observer: RunObserver | None = None, say: Callable[[str], None] | None = None,
        lab: LabLike = None) -> Runs | Detached:
    """Run an experiment's entry point to completion and return its runs. `assay run`.

    Args:
        name: the experiment.
        desc: a short description, part of the run folder's name.
        params: values for the experiment's params (checked like `key=value` on the command line).
        overrides: `key=value` / `+key=value` strings, as on the command line.
        seed: the seed of the (first) run; `repeat=K` runs seeds seed, seed+1, ...
        timeout: e.g. "90s", "10m"; "auto" sizes it from a smoke run first.
        smoke: a scaled-down run (the experiment's `smoke:` params) that records throughput.
        oom_ladder: retry an OOM with the next remedy (default: when the experiment has `oom_ladder:`).
        detach: start the run in the background and return its `Detached` handle at once.
        say: where the smoke / OOM-ladder steps report what they did (default: nowhere).

    Returns:
        `Runs` (one per seed; `.status`, `.exit_code`, `.to_dict()`), or `Detached` with `detach=True`.

    Raises:
        ConfigError: unknown experiment or param, bad timeout. A failing script is a status, not an error.
    """
    from assay.runner import RunSpec

    the_lab = find(lab)
    if detach:
        return _detach(the_lab, name, desc, params=params, overrides=overrides, seed=seed, timeout=timeout, entry=entry,
                       tags=tags, oom_ladder=oom_ladder, approve_locked=approve_locked, repeat=repeat, smoke=smoke,
                       follow=follow)
    extra = dict(params or {})
    if seed is not None:
        extra["seed"] = seed
    spec = RunSpec(name, desc, list(overrides), timeout, repeat, entry, follow, dict(tags or {}), extra_params=extra,
                   observer=observer)
    if smoke or timeout == "auto" or oom_ladder or oom_ladder is None and _has_ladder(the_lab, name):
        from assay.runner.validate import run_checked

        return Runs(run_checked(the_lab, spec, smoke=smoke, oom_ladder=oom_ladder, approve_locked=list(approve_locked),
                                say=say))
    from assay.runner import run_experiment

    return Runs(run_experiment(the_lab, spec))


def _has_ladder(lab: Lab, name: str) -> bool:
    """The experiment declares an `oom_ladder:`. A plain run skips the validate-before-spend module."""
    from assay.experiment import load_experiment

    return load_experiment(lab, name).has_oom_ladder


def _detach(lab: Lab, name: str, desc: str, *, params: Mapping[str, Any] | None, overrides: Sequence[str],
            seed: int | None, timeout: str | None, entry: str | None, tags: Mapping[str, str] | None,
            oom_ladder: bool | None, approve_locked: Sequence[str], repeat: int, smoke: bool, follow: bool) -> Detached:
    """The same run as an `assay run` started in the background; returns once its folder exists."""
    import json

    from assay.errors import ConfigError
    from assay.runner.detach import NotStarted, start_detached

    clash = "follow" if follow else "repeat" if repeat > 1 else "smoke" if smoke else "timeout auto" if timeout == "auto" else None
    if clash:
        raise ConfigError(f"--detach starts one run and returns; it does not combine with --{clash}",
                          "Start each run with its own `assay run ... --detach`, or drop --detach.")
    # Options first, then `--`: no value (a desc or param starting with '-') can be read as an option.
    # Under --json its own output (logs/assay.log) and any error before it starts are JSON.
    argv = ["run", "--json"]
    argv += [f"--timeout={timeout}"] if timeout else []
    argv += [f"--entry={entry}"] if entry else []
    argv += [f"--tag={k}={v}" for k, v in (tags or {}).items()]
    if oom_ladder is not None:
        argv.append("--oom-ladder" if oom_ladder else "--no-oom-ladder")
    argv += [f"--approve-locked={key}" for key in approve_locked]
    values = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in (params or {}).items()]
    argv += ["--", name, desc, *overrides, *values, *([f"seed={seed}"] if seed is not None else [])]
    started = start_detached(lab, argv)
    if isinstance(started, NotStarted):
        raise _not_started(started, argv)
    return started


def _not_started(started: NotStarted, argv: list[str]) -> AssayError:
    """The error the background `assay run --json` reported ({"error", "fix", "exit"}), with its exit code."""
    import json

    from assay.errors import AssayError

    try:
        data = json.loads(started.output)
        err = AssayError(str(data["error"]), data.get("fix"))
    except (ValueError, KeyError, TypeError):
        err = AssayError(f"The background run ended before it started (exit {started.exit_code}): {started.output.strip()}",
                         f"Run it in the foreground to see why: assay {' '.join(argv)}")
    err.exit_code = started.exit_code
    return err


def wait(runs: Sequence[str], *, timeout: float | None = None, lab: LabLike = None) -> Waited:
    """Wait until runs end (`last`: the newest), at most `timeout` seconds. `assay wait`."""
    from assay.runner.detach import wait_for_runs

    waited = wait_for_runs(find(lab), list(runs), timeout)
    if waited.timed_out:
        code = 124  # as coreutils' `timeout`: the wait ran out, not the run (README, "Exit codes")
    else:
        code = _outcome([r["status"] for r in waited.runs])
    return Waited(waited.runs, waited.timed_out, code)


def _outcome(statuses: list[str]) -> int:
    if "interrupted" in statuses:
        return 130
    return 0 if all(s == "ok" for s in statuses) else 1


# ------------------------------------------------------------------ reading


def _check_value(value: str) -> None:
    from assay.report.evidence import check_value

    check_value(value)


def runs(*, experiment: str | None = None, where: str | None = None, sort: str | None = None, limit: int | None = 20,
         include_ignored: bool = False, value: str = "last", lab: LabLike = None) -> RunsTable:
    """Runs, newest first, filtered (`"val_f1>0.8 and lr<1e-3"`) and sorted (`"val_f1"`, `"lr:asc"`). `assay runs`.

    `limit=None` (or 0) returns all. `value` is which metric value tables show (the rows carry both).
    """
    from assay.store.query import list_runs

    _check_value(value)
    rows, total = list_runs(find(lab), experiment, where, sort, limit or None, include_ignored)
    return _raw(RunsTable, {"total": total, "runs": rows})


def show(run: str, *, lab: LabLike = None) -> RunDetails:
    """One run's record: `exp/folder`, a folder path, `last` or `exp:last`. `assay show`."""
    from assay.store.query import show_run

    return _raw(RunDetails, show_run(find(lab), run))


def compare(name: str, *, by: Sequence[str] | str | None = None, metric: str | None = None, value: str = "last",
            pool_code: bool = False, include_ignored: bool = False, lab: LabLike = None) -> Comparison:
    """Configurations of an experiment with mean ± std over seeds, the best marked. `assay compare`.

    `by`: params to group by (a list, or "lr,batch"; `code` for the code version; default: those that vary).
    """
    from assay.store.query import compare as do_compare

    keys = [k.strip() for k in by.split(",") if k.strip()] if isinstance(by, str) else None if by is None else list(by)
    return _raw(Comparison, do_compare(find(lab), name, keys, metric, include_ignored, value=value, pool_code=pool_code))


def status(*, lab: LabLike = None) -> Status:
    """Runs in progress, and runs lost (their process died without a final record). `assay status`."""
    from assay.store.query import running_and_lost

    return _raw(Status, running_and_lost(find(lab)))


def reindex(*, force: bool = False, lab: LabLike = None) -> Reindexed:
    """Rebuild the SQLite index from the run folders. `assay reindex`."""
    from assay.store.query import reindex as do_reindex

    return _raw(Reindexed, do_reindex(find(lab), force))


# ------------------------------------------------------------------ journal


def note(name: str, text: str, *, run: str | None = None, lab: LabLike = None) -> Note:
    """Append a timestamped note to the experiment's JOURNAL.md (`[HUNCH] ...` sets its tag). `assay note`."""
    from assay.experiment import load_experiment
    from assay.journal import add_note
    from assay.store.query import find_run

    the_lab = find(lab)
    exp = load_experiment(the_lab, name)
    run_id = None
    if run:
        p = find_run(the_lab, run)
        run_id = f"{p.parent.parent.name}/{p.name}"
    return Note(add_note(exp.path, text, run_id), exp.path / "JOURNAL.md")


def journal(name: str, *, tag: str | None = None, lab: LabLike = None) -> Journal:
    """An experiment's journal entries (only `tag`'s, when given). `assay journal`."""
    from assay.experiment import load_experiment
    from assay.journal import read_journal

    return Journal(read_journal(load_experiment(find(lab), name).path, tag))


def ignore(run: str, *, why: str, lab: LabLike = None) -> Ignored:
    """Leave a run out of tables and comparisons (recorded in IGNORED_RUNS.md). `assay ignore`."""
    from assay.journal import ignore_run
    from assay.store.query import find_run

    the_lab = find(lab)
    path = find_run(the_lab, run)
    ignore_run(path, why)
    run_id = f"{path.parent.parent.name}/{path.name}"
    with the_lab.index() as index:
        index.set_ignored(run_id, True)
    return Ignored(run_id, path, why)


# ------------------------------------------------------------------ evidence


def verdict(name: str, *, where: Mapping[str, Any] | None = None, confidence: float = 0.95, value: str = "last",
            lab: LabLike = None) -> Verdict:
    """Judge the hypothesis: `.verdict` is supported, refuted or inconclusive, with the runs that decided. `assay verdict`."""
    from assay.report.verdict import verdict as do_verdict

    return do_verdict(find(lab), name, confidence, value, dict(where) if where else None)


def plot(target: str, *, metrics: Sequence[str] = (), compare: bool = False, format: str = "png",  # noqa: A002
         value: str = "last", lab: LabLike = None) -> Figures:
    """Figures of a run's logged metrics, or (`compare=True`) of an experiment's runs. `assay plot`."""
    from assay.report.plots import plot_experiment, plot_run

    the_lab = find(lab)
    if not compare:
        return Figures(plot_run(the_lab, target, list(metrics) or None, format))
    figures: list[Figure] = []
    each: list[str | None] = [*metrics] or [None]  # None: the primary metric
    for m in each:
        figures += plot_experiment(the_lab, target, m, format, value)
    return Figures(figures)


def report(name: str, *, format: str = "png", value: str = "last", lab: LabLike = None) -> ReportResult:  # noqa: A002
    """Write REPORT.md and a self-contained REPORT.html (only the generated blocks change). `assay report`."""
    from assay.report.report import write_report

    return write_report(find(lab), name, format, value)


def check(target: str, *, lab: LabLike = None) -> CheckResult:
    """Reproducibility and leakage findings from an experiment's (or a .py file's) code. `assay check`."""
    from assay.checks.repro import check as do_check
    from assay.lab import Lab, maybe_find_lab

    return do_check(lab if isinstance(lab, Lab) else maybe_find_lab(None if lab is None else Path(lab)), target)


def check_data(train: str | Path, val: str | Path, test: str | Path | None = None, *, key: str | None = None,
               time: str | None = None, target: str | None = None) -> DataReport:
    """Leakage between csv/parquet splits: overlaps, time order, too-good features, drift. `assay check-data`."""
    from assay.checks.data import check_data as do_check

    return do_check(Path(train), Path(val), None if test is None else Path(test), key, time, target)


def rerun(run: str, *, value: str = "last", confidence: float = 0.95, lab: LabLike = None) -> RerunResult:
    """Re-run a run from its recorded commit, params and seed; compare with the original. `assay rerun`."""
    from assay.rerun import rerun as do_rerun

    return do_rerun(find(lab), run, value, confidence)


def check_gate(name: str, criterion: str, *, run: str | None = None, best: bool = False, value: str = "last",
               confidence: float = 0.95, lab: LabLike = None) -> GateResult:
    """Whether `criterion` (e.g. "val_f1 >= 0.75") holds for a run; `.holds`, `.outcome`. `assay gate`.

    (`assay.gate` is the pipeline step that raises GateFailed instead.)
    """
    from assay.gates import check_gate as do_check

    return do_check(find(lab), name, criterion, run=run, best=best, value=value, confidence=confidence)


def best(name: str, *, value: str = "last", artifact: str | None = None, lab: LabLike = None) -> BestRun:
    """The best run (best single run of the best configuration), or one of its files. `assay best`."""
    from assay.gates import best_run, best_summary

    return _raw(BestRun, best_summary(name, best_run(find(lab), name, value=value), value, artifact))


# ------------------------------------------------------------------ sweeps


def sweep(name: str, space: SearchSpace | Mapping[str, Any] | Sequence[str] | str | Path | None = None, *,
          sampler: str | None = None, trials: int | None = None, parallel: int | None = None,
          executor: str | None = None, address: str | None = None, pruner: str | None = None,
          seed: int | None = None, preflight: bool | None = None, timeout: str | None = None,
          oom_ladder: bool | None = None, approve_locked: Sequence[str] | None = None, value: str = "last",
          resume: str | None = None, max_cost: str | None = None, yes: bool = False,
          ask: Callable[[str], bool] | None = None, say: Callable[[str], None] | None = None,
          on_event: Callable[[SweepEvent], None] | None = None, lab: LabLike = None) -> SweepOutcome:
    """Run many trials of an experiment over a search space; each trial is a run tagged sweep=<id>. `assay sweep`.

    Args:
        space: `{"lr": [1e-4, 3e-4], "wd": "log(1e-5, 1e-2)"}` (as sweep.yaml's `params:`), `["lr=1e-4,3e-4"]`
            (as the command line), a sweep.yaml path (its other keys are defaults the options override),
            or a `SearchSpace`.
        sampler: grid (default), random, tpe, cmaes, gp, qmc, optuna:<Class>.
        trials: the budget (default: the whole grid; required for other samplers).
        parallel: trials at once (default: GPUs, else CPU cores).
        resume: a sweep id (or "last") to resume: its stored space is used, finished trials are kept.
        max_cost: stop launching trials before the runs would cost more: '$20', '10gpu-h', '5cpu-h'.
        yes, ask: the approval gate (`approve_above` in assay.toml): `yes=True` approves an estimate above
            it, else `ask(question)` decides; with neither, such a sweep raises ConfigError (exit 2).
        say: told the approval line when the gate passed an estimate.
        on_event: told of each SweepEvent (started, trial_finished, ...), e.g. for a progress bar.

    Returns:
        SweepOutcome: `.best`, `.trials`, `.status` (done | exhausted | interrupted | max_cost), `.to_dict()`.
    """
    from assay.sweep.driver import approve_sweep, resume_config, run_sweep, start_sweep

    the_lab = find(lab)
    if resume:
        if space:
            from assay.errors import ConfigError

            raise ConfigError("--resume takes no search space: the stored one is used", f"assay sweep {name} --resume {resume}")
        from dataclasses import replace

        sf, cfg = resume_config(the_lab, name, None if resume == "last" else resume)
        cfg = replace(cfg, trials=trials or cfg.trials, parallel=parallel or cfg.parallel, max_cost=max_cost or cfg.max_cost)
        if max_cost:
            sf.settings["max_cost"] = max_cost
    else:
        options = {"sampler": sampler, "trials": trials, "parallel": parallel, "executor": executor, "address": address,
                   "pruner": pruner, "seed": seed, "preflight": preflight, "timeout": timeout, "oom_ladder": oom_ladder,
                   "approve_locked": None if approve_locked is None else tuple(approve_locked), "value": value,
                   "max_cost": max_cost}
        cfg = _sweep_config(name, space, options)
    approved = approve_sweep(the_lab, cfg, yes=yes, ask=ask, sf=sf if resume else None)
    if approved and say is not None:
        say(approved)
    if not resume:
        sf = start_sweep(the_lab, cfg)
    return run_sweep(the_lab, sf, cfg, on_event)


def _sweep_config(name: str, space: Any, options: dict[str, Any]) -> SweepConfig:
    from assay.sweep.config import from_file, from_options
    from assay.sweep.space import SearchSpace, space_from_args, space_from_mapping

    if isinstance(space, (str, Path)) and str(space).endswith((".yaml", ".yml")) and "=" not in str(space):
        return from_file(Path(space), experiment=name, **options)
    items = list(space) if isinstance(space, (list, tuple)) else None
    if items and isinstance(items[0], (str, Path)) and str(items[0]).endswith((".yaml", ".yml")) and "=" not in str(items[0]):
        return from_file(Path(items[0]), experiment=name, extra=[str(i) for i in items[1:]], **options)
    if isinstance(space, SearchSpace):
        grid = space
    elif isinstance(space, Mapping):
        grid = space_from_mapping(dict(space))
    else:
        grid = space_from_args([str(i) for i in (items or ([] if space is None else [str(space)]))])
    return from_options(name, grid, **options)


# ------------------------------------------------------------------ other tools


def export_mlflow(ref: str | None = None, *, tracking_uri: str | None = None, experiment_name: str | None = None,
                  artifact_location: str | None = None, artifacts: bool = True, lab: LabLike = None) -> MlflowTransfer:
    """Export runs (an experiment's, one run, or all) to MLflow; re-running updates. `assay export mlflow`."""
    from assay.integrations.mlflow_export import export_mlflow as do_export

    return MlflowTransfer(do_export(find(lab), ref, tracking_uri, experiment_name, artifact_location, artifacts))


def import_mlflow(*, experiment: str, tracking_uri: str | None = None, into: str | None = None, metric: str | None = None,
                  goal: str | None = None, artifacts: bool = True, lab: LabLike = None) -> MlflowTransfer:
    """Import an MLflow experiment's runs as run folders; re-running imports only new runs. `assay import mlflow`."""
    import os

    from assay.errors import ConfigError
    from assay.integrations.mlflow_import import import_mlflow as do_import

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise ConfigError("No MLflow store to import from: neither --tracking-uri nor MLFLOW_TRACKING_URI is set",
                          f"assay import mlflow --tracking-uri sqlite:///mlflow.db --experiment {experiment}")
    return MlflowTransfer(do_import(find(lab), tracking_uri=uri, experiment=experiment, into=into, metric=metric, goal=goal,
                                    artifacts=artifacts))
