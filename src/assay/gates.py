"""Pipeline steps: a gate on a run's metric (`assay gate`) and a handle on the best run (`assay best`).

A pipeline trains, then asks `assay gate exp "val_f1 >= 0.75"`: the gate holds (exit 0), fails
(exit 1) or cannot be evaluated at all (exit 2: no run, the metric was never logged, a criterion
that cannot be read). When the gated run's configuration has repeated seeds, the gate judges the
Student-t interval of their mean, so one lucky seed does not open it: the gate holds only when the
whole interval meets the criterion; an interval that straddles the threshold is `undecided` and
the gate stays shut (exit 1: a gate opens on evidence, and exit 2 stays reserved for a step that
is wired wrong). A configuration with one run is gated on that run's value.

The best run is the best single run of the best configuration (the row `assay compare` marks
best, by its mean over seeds): a real checkpoint of the configuration the evidence supports,
never a lucky seed of a configuration whose mean is worse.

Example:
    >>> import assay
    >>> assay.gate("digits", "val_f1 >= 0.75")   # raises assay.GateFailed unless it holds
    >>> ckpt = Path(assay.best("digits")["path"]) / "checkpoints/model.pt"
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, GateFailed, RunError, UnknownRunError
from assay.lab import Lab

HOLDS, FAILS, UNDECIDED = "holds", "fails", "undecided"


@dataclass(frozen=True)
class Check:
    """One criterion of a gate, judged over the values of the gated configuration's runs."""

    criterion: str
    metric: str
    outcome: str  # holds | fails | undecided
    n: int
    mean: float
    ci: tuple[float, float] | None  # None: one run, judged on its value
    why: str
    values: dict[str, float] = field(default_factory=dict)  # run id -> value


@dataclass(frozen=True)
class GateResult:
    """What a gate decided: `outcome` holds, fails or undecided (the interval straddles)."""

    experiment: str
    criterion: str
    run: str  # the gated run's id
    path: str  # its folder
    runs: list[str]  # the runs (seeds of its configuration) the decision used
    value: str  # each run's last (final) or best value
    confidence: float
    outcome: str
    reason: str
    checks: list[Check]
    hint: str | None = None

    @property
    def holds(self) -> bool:
        return self.outcome == HOLDS

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["holds"] = self.holds
        for c in out["checks"]:
            c["ci"] = list(c["ci"]) if c["ci"] is not None else None
        return out


def _lab(lab: Lab | str | Path | None) -> Lab:
    from assay.lab import find_lab

    return lab if isinstance(lab, Lab) else find_lab(Path(lab) if lab is not None else None)


def _criteria(text: str, name: str) -> list[Any]:
    from assay.experiment import parse_criteria

    crits = parse_criteria(text, f"the gate of {name}")
    if not crits:
        raise ConfigError("A gate needs a criterion", f'assay gate {name} "val_f1 >= 0.75"')
    for c in crits:
        if c.comparative:
            raise ConfigError(f"The gate criterion '{c.text}' compares two sets of runs; a gate judges one run",
                              f'Gate on a number, e.g. assay gate {name} "{c.metric} >= 0.75"; compare with `assay verdict`.')
    return crits


def _judge(c: Any, values: dict[str, float], confidence: float) -> Check:
    """holds / fails / undecided for criterion `c` over one configuration's values."""
    from assay.report.evidence import spread

    vals = list(values.values())
    n = len(vals)
    if n == 1:
        v = vals[0]
        outcome = HOLDS if c.holds(v) else FAILS
        why = f"{c.metric}={v:.4g} (one run, no repeated seeds)"
        return Check(c.text, c.metric, outcome, 1, v, None, why, values)
    s = spread(vals, confidence)
    assert s.lo is not None and s.hi is not None  # n >= 2: the interval exists
    lo, hi = s.lo, s.hi
    ci = f"mean {s.mean:.4g}, {confidence:.1%} CI [{lo:.4g}, {hi:.4g}], n={n}"
    if c.op == "==":
        outcome = HOLDS if lo == hi == c.value else FAILS if not lo <= c.value <= hi else UNDECIDED
    else:
        outcome = HOLDS if c.holds(lo) and c.holds(hi) else FAILS if not (c.holds(lo) or c.holds(hi)) else UNDECIDED
    why = {HOLDS: f"{ci} lies entirely {c.op} {c.value:g}", FAILS: f"{ci} lies entirely outside {c.op} {c.value:g}",
           UNDECIDED: f"{ci} straddles {c.value:g}: more seeds would narrow it"}[outcome]
    return Check(c.text, c.metric, outcome, n, s.mean, (lo, hi), why, values)


def _gated_run(exp: Any, runs: list[Any], lab: Lab, run: str | None, best: bool, value: str) -> Any:
    """The RunView to gate: `run`, the best run, or the newest finished run of the experiment."""
    from assay.store.query import find_run

    if best:
        path = Path(best_run(lab, exp.name, value=value)["path"])
    elif run is not None:
        path = find_run(lab, run).resolve()
        if path.parent != exp.runs_dir.resolve():
            raise ConfigError(f"Run '{run}' ({path}) is not a run of experiment '{exp.name}'",
                              f"Name a run of {exp.name}: `assay runs {exp.name}`.")
    else:
        finished = [r for r in runs if r.ignored is None and r.status != "running"]
        if not finished:
            raise UnknownRunError(f"Experiment '{exp.name}' has no finished run to gate",
                                  f"Run it first: assay run {exp.name} DESC")
        return finished[-1]
    view = next((r for r in runs if r.path.resolve() == path), None)
    if view is None:
        raise UnknownRunError(f"No run record at {path}", "Run `assay reindex` and name the run again.")
    return view


def check_gate(lab: Lab | str | Path | None, experiment: str, criterion: str, *, run: str | None = None,
               best: bool = False, value: str = "last", confidence: float = 0.95) -> GateResult:
    """Judge `criterion` on a run of `experiment` (and the repeated seeds of its configuration).

    Args:
        run: the run to gate (default: the newest finished run; `best`: the best run).
        value: each run's `last` (final) or `best` value of the metric.
        confidence: of the interval over repeated seeds.

    Returns:
        The GateResult, whatever it decided (gate() raises when it does not hold).

    Raises:
        UnknownRunError: no run to gate (exit 2).
        ConfigError: an unreadable or comparative criterion, a metric the run never logged, an
            ignored or still running run, a bad value or confidence (exit 2).
        RunError: the gated run did not finish ok (exit 1).
    """
    from assay.experiment import load_experiment
    from assay.report.evidence import check_value, group_configs, load_runs, usable
    from assay.store import records

    lab = _lab(lab)
    check_value(value)
    if not 0.5 <= confidence < 1:
        raise ConfigError(f"--confidence must be in [0.5, 1), got {confidence}", "Pass e.g. --confidence 0.95.")
    if run is not None and best:
        raise ConfigError("Pass --run RUN or --best, not both", f"assay gate {experiment} CRITERION --best")
    exp = load_experiment(lab, experiment)
    crits = _criteria(criterion, experiment)
    runs = load_runs(exp)
    gated = _gated_run(exp, runs, lab, run, best, value)
    if gated.ignored is not None:
        raise ConfigError(f"Run {gated.id} is ignored ({gated.ignored}): it is no evidence for a gate",
                          f"Gate another run (--run RUN), or take it out of {exp.path / 'IGNORED_RUNS.md'}.")
    if gated.status == "running":
        raise ConfigError(f"Run {gated.id} is still running", f"Wait until it ends (`assay status`), then gate it: --run {gated.id}")
    if gated.status != "ok":
        raise RunError(f"Run {gated.id} ended '{gated.status}' ({gated.record.get('reason') or 'no reason recorded'}): "
                       "nothing to gate", f"See {gated.path / records.LOG_FILE}; fix it and run again.")
    key = gated.config_key()
    configs, _ = group_configs(usable(runs))
    config = next((c for c in configs if c.runs and c.runs[0].config_key() == key), None)
    seeds = config.runs if config is not None else [gated]
    checks = []
    for c in crits:
        if gated.value(c.metric, value) is None:
            known = sorted(gated.record.get("metrics") or {})
            raise ConfigError(f"Run {gated.id} has no {value} value of metric '{c.metric}' (logged: {', '.join(known) or 'none'})",
                              f"Gate a metric the run logs, e.g. assay gate {experiment} \"{exp.metric} ...\".")
        values = {r.id: v for r in seeds if (v := r.value(c.metric, value)) is not None and math.isfinite(v)}
        if not values:
            checks.append(Check(c.text, c.metric, FAILS, 0, math.nan, None, f"{c.metric} is not finite"))
            continue
        checks.append(_judge(c, values, confidence))
    outcome = FAILS if any(c.outcome == FAILS for c in checks) else UNDECIDED if any(c.outcome == UNDECIDED for c in checks) else HOLDS
    deciding = next((c for c in checks if c.outcome == outcome), checks[0])
    hint = None
    if outcome == UNDECIDED and config is not None:
        from assay.report.verdict import rerun_hint

        next_seed = max((r.seed for r in seeds if isinstance(r.seed, int)), default=-1) + 1
        hint = "Add seeds to narrow the interval: " + rerun_hint(exp, config, next_seed)
    return GateResult(experiment, criterion, gated.id, str(gated.path), [r.id for r in seeds], value, confidence, outcome,
                      f"{deciding.criterion}: {deciding.why}", checks, hint)


def gate(experiment: str, criterion: str, *, run: str | None = None, best: bool = False, value: str = "last",
         confidence: float = 0.95, lab: Lab | str | Path | None = None) -> GateResult:
    """A pipeline step: return the GateResult when `criterion` holds, else raise GateFailed.

    Args and Raises: as check_gate; `lab` defaults to the lab found from the working directory.

    Raises:
        GateFailed: the criterion fails, or the interval over seeds straddles it (its `result`
            says which).

    Example:
        >>> assay.gate("digits", "val_f1 >= 0.75", best=True).run
        'digits/2026-05-01T10-00-00-base-seed0'
    """
    result = check_gate(lab, experiment, criterion, run=run, best=best, value=value, confidence=confidence)
    if not result.holds:
        raise GateFailed(f"Gate '{criterion}' {result.outcome} on run {result.run}: {result.reason}",
                         result.hint or f"Train a better model, or look at the run: assay show {result.run}", result=result)
    return result


def best_run(lab: Lab | str | Path | None, experiment: str, *, value: str = "last") -> dict[str, Any]:
    """The run record (with `path`) of the best run of the best configuration of `experiment`.

    The best configuration is the row `assay compare` marks best (mean over seeds of the primary
    metric); within it, the run with the best `value` (last or best) of the metric.

    Raises:
        UnknownRunError: no finished, non-ignored run logged the primary metric (exit 2).
    """
    from assay.experiment import load_experiment
    from assay.store.query import compare, show_run

    lab = _lab(lab)
    exp = load_experiment(lab, experiment)
    res = compare(lab, experiment, value=value)
    if res["best"] is None:
        raise UnknownRunError(f"Experiment '{experiment}' has no finished run with a {value} value of {res['metric']}",
                              f"Run it first (assay run {experiment} DESC), then: assay best {experiment}")
    sign = 1 if exp.goal == "max" else -1
    candidates = []
    for rid in res["rows"][res["best"]]["runs"]:
        record = show_run(lab, rid)
        v = ((record.get("metrics") or {}).get(res["metric"]) or {}).get(value)
        if isinstance(v, (int, float)) and math.isfinite(v):
            candidates.append((sign * v, -(record.get("started") or 0), record))
    if not candidates:
        raise UnknownRunError(f"The runs of the best configuration of '{experiment}' are gone from the disk",
                              "Rebuild the index: assay reindex")
    return max(candidates, key=lambda c: c[:2])[2]  # ties: the earliest run


def artifact_path(record: dict[str, Any], artifact: str) -> Path:
    """`artifact` (a path relative to the run folder) of the run `record`, checked to exist inside it.

    Raises:
        ConfigError: the file is missing, or the path leaves the run folder (exit 2).
    """
    folder = Path(record["path"]).resolve()
    target = (folder / artifact).resolve()
    if not target.is_relative_to(folder):
        raise ConfigError(f"Artifact '{artifact}' is outside the run folder {folder}",
                          "Name a file inside the run folder, e.g. --artifact checkpoints/model.pt.")
    if not target.exists():
        from assay.store.records import SUBDIRS

        # What a script saves: files under checkpoints/, plots/, data/ (logs and assay's own files aside).
        present = sorted(str(p.relative_to(folder)) for d in SUBDIRS if d != "logs" for p in (folder / d).rglob("*") if p.is_file())
        raise ConfigError(f"Run {record.get('id')} has no artifact '{artifact}' (files: {', '.join(present[:8]) or 'none'})",
                          f"Save it from the script into the run folder ({folder}), or name one of the files listed.")
    return target


def best_summary(experiment: str, record: dict[str, Any], value: str = "last", artifact: str | None = None) -> dict[str, Any]:
    """The keys of `assay best --json` (and the MCP `best` tool) for the best run's `record`."""
    path = artifact_path(record, artifact) if artifact else None
    metric = record.get("primary_metric")
    return {"experiment": experiment, "run": record["id"], "path": record["path"], "artifact": None if path is None else str(path),
            "metric": metric, "value": value, "score": ((record.get("metrics") or {}).get(metric) or {}).get(value),
            "params": record.get("params")}


def best(experiment: str, *, value: str = "last", lab: Lab | str | Path | None = None) -> dict[str, Any]:
    """The run record of the best run of `experiment` (best single run of the best configuration).

    Example:
        >>> rec = assay.best("digits")
        >>> model = torch.load(Path(rec["path"]) / "checkpoints/model.pt")
    """
    return best_run(lab, experiment, value=value)
