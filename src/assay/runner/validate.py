"""Validate before spend: smoke runs, timeouts sized from them, and the OOM ladder.

experiment.yaml:

    smoke:                      # a scaled-down run that must finish under `limit`
      params: {epochs: 1, n_train: 256}
      steps: epochs             # the param that counts steps (default: the first of max_steps, steps, epochs, ...)
      limit: 60s
      margin: 0.3               # --timeout auto adds this fraction on top of the estimate
    oom_ladder:                 # tried in order while a run ends 'oom'
      - {halve: batch_size, double: grad_accum, min: 4}   # repeated down to batch_size 4
      - {set: {gradient_checkpointing: true}}
    locked: [method, max_length]  # never changed by a remedy without approval
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from assay.config import flatten, format_duration
from assay.errors import ConfigError, RunError
from assay.experiment import (  # noqa: F401 - the sections' parsers, re-exported for callers of this module
    ACCUM_KEYS,
    BATCH_KEYS,
    CHECKPOINT_KEYS,
    DEFAULT_MARGIN,
    SMOKE_LIMIT,
    STEP_KEYS,
    Experiment,
    Remedy,
    SmokeSettings,
    load_experiment,
    parse_ladder,
    smoke_settings,
)
from assay.lab import Lab
from assay.runner.launch import RunResult, RunSpec, resolve_params, run_experiment, start_run
from assay.store import records

# ------------------------------------------------------------------ smoke runs


def smoke_run(lab: Lab, exp: Experiment, desc: str, overrides: list[str] | None = None,
              extra: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
              entry: str | None = None) -> RunResult:
    """Run the experiment scaled down by its `smoke:` params, under its limit (default 60 s), and
    record its throughput in the run record (`smoke`: steps, seconds, seconds_per_step, steps_per_second).

    A failed smoke run is returned, not raised: the caller decides whether to go on.
    """
    s = smoke_settings(exp)
    spec = RunSpec(exp.name, desc, list(overrides or []), f"{s.limit}s", entry=entry,
                   tags={**(tags or {}), "smoke": "true"}, extra_params={**(extra or {}), **s.params})
    res = start_run(lab, exp, spec)
    rec = records.RunRecord.from_dict(res.record).with_(smoke=measure_throughput(res, exp.metric, s))
    if res.status == "timeout":
        rec = rec.with_(reason=f"the smoke run did not finish under {format_duration(s.limit)}: scale `smoke.params` down in {exp.file}")
    records.write_record(res.path, rec)
    record = rec.to_dict()

    with lab.index() as index:
        index.upsert(res.path, record)
    return RunResult(res.path, record)


def measure_throughput(res: RunResult, metric: str, s: SmokeSettings) -> dict[str, Any]:
    """Time per step from the metric timestamps (start-up excluded) when there are two points or
    more, else the whole duration over the step count."""
    duration = float(res.record.get("duration") or 0.0)
    params = flatten(res.record.get("params") or {})
    steps = params.get(s.steps_key) if s.steps_key else None
    series = records.metric_series(res.path, {metric}).get(metric) or []
    if not isinstance(steps, (int, float)) or isinstance(steps, bool) or steps <= 0:
        steps = len({st for st, _, _ in series}) or None
    per_step = None
    startup = None
    if len(series) >= 2 and series[-1][0] != series[0][0] and series[-1][2] > series[0][2]:
        per_step = (series[-1][2] - series[0][2]) / (series[-1][0] - series[0][0])
        startup = max(0.0, duration - per_step * float(steps or 0))
    elif steps:
        per_step, startup = duration / float(steps), 0.0
    return {"steps_key": s.steps_key, "steps": steps, "seconds": round(duration, 3),
            "seconds_per_step": per_step, "steps_per_second": (1 / per_step) if per_step else None,
            "startup_seconds": startup, "limit": s.limit}


def size_timeout(exp: Experiment, smoke: RunResult, full_params: dict[str, Any], margin: float | None = None) -> tuple[float, str]:
    """The full run's timeout: (start-up + time-per-step x full steps) x (1 + margin).

    Raises:
        RunError: the smoke run did not finish ok or measured no throughput.
        ConfigError: the param counting steps is unknown.
    """
    if smoke.status != "ok":
        raise RunError(f"Cannot size the timeout: the smoke run ended '{smoke.status}' ({smoke.record.get('reason')})",
                       f"See {smoke.path / records.LOG_FILE}; fix it, or pass --timeout 30m.")
    m = smoke.record.get("smoke") or {}
    key = m.get("steps_key")
    full_steps = flatten(full_params).get(key) if key else None
    if not key or not isinstance(full_steps, (int, float)) or isinstance(full_steps, bool):
        raise ConfigError(f"Cannot size the timeout: no step-count param in {exp.file} `smoke:` ({key or 'none found'})",
                          f"Name the param that counts steps: smoke: {{steps: epochs}} (one of {exp.config_path.name}'s keys).")
    if not m.get("seconds_per_step"):
        raise RunError("Cannot size the timeout: the smoke run measured no time per step",
                       "Log the primary metric per step (assay.log(..., step=i)) or pass --timeout 30m.")
    margin = m_margin = DEFAULT_MARGIN if margin is None else margin
    estimate = float(m.get("startup_seconds") or 0.0) + float(m["seconds_per_step"]) * float(full_steps)
    seconds = max(1.0, estimate * (1 + margin))
    why = (f"{format_duration(m['seconds_per_step'])}/step x {full_steps:g} {key} + {format_duration(m.get('startup_seconds') or 0)} "
           f"start-up = {format_duration(estimate)}, +{m_margin:.0%} margin")
    return seconds, why


@dataclass(frozen=True)
class SizedRun:
    smoke: RunResult
    timeout: float
    why: str
    results: list[RunResult]


def run_with_auto_timeout(lab: Lab, spec: RunSpec, run: Callable[[Lab, RunSpec], list[RunResult]] | None = None) -> SizedRun:
    """`assay run ... --timeout auto`: a smoke run first, then the full run with a timeout sized from it.

    Raises:
        RunError: the smoke run failed (the full run is not started).
    """
    exp = load_experiment(lab, spec.experiment)
    s = smoke_settings(exp)
    full_params, _ = resolve_params(exp, spec.overrides, spec.extra_params)
    smoke = smoke_run(lab, exp, f"{spec.desc}-smoke", spec.overrides, spec.extra_params, dict(spec.tags), spec.entry)
    seconds, why = size_timeout(exp, smoke, full_params, s.margin)
    results = (run or run_experiment)(lab, replace(spec, timeout=f"{seconds:.3f}s"))  # whole seconds truncated short runs
    return SizedRun(smoke, seconds, why, results)


# ------------------------------------------------------------------ OOM ladder


@dataclass(frozen=True)
class LadderStep:
    """What the ladder did on one rung: ran it (run id), or skipped it (why)."""

    rung: int
    remedy: str
    run: str | None
    status: str | None
    skipped: str | None = None


@dataclass(frozen=True)
class LadderOutcome:
    results: list[RunResult]
    steps: list[LadderStep]


Approve = Callable[[str, Any, Any], bool]  # (locked key, old value, new value) -> approved?
Refuse = Callable[[str, Any, Any], "str | None"]  # (key, old value, new value) -> why it may not change, or None


def locked_keys(exp: Experiment, approve: Approve | None) -> Refuse:
    """The experiment's `locked:` keys refuse a remedy unless `approve` says yes."""
    locked = exp.locked

    def refuse(key: str, old: Any, new: Any) -> str | None:
        if key in locked and not (approve and approve(key, old, new)):
            return f"locked key {key} needs approval (--approve-locked {key})"
        return None

    return refuse


def next_remedy(ladder: list[Remedy], rung: int, params: dict[str, Any],
                refuse: Refuse) -> tuple[int, Remedy | None, dict[str, Any], list[LadderStep]]:
    """After rung number `rung` (1-based; 0: none climbed yet), the first remedy that applies to
    `params` and changes no refused key: (its rung number, the remedy or None when the ladder is
    spent, its changes (flat), the rungs skipped on the way with why). A halving rung is offered
    again until its keys reach their floor; reaching it is not a skip, the ladder just moves on."""
    skipped = []
    again = rung > 0 and ladder[rung - 1].repeats
    if again:
        rung -= 1
    while rung < len(ladder):
        remedy = ladder[rung]
        rung += 1
        try:
            changes = remedy.apply(params)
        except ConfigError as exc:
            if not again:
                skipped.append(LadderStep(rung, remedy.describe(), None, None, exc.message))
            again = False
            continue
        again = False
        flat = flatten(params)
        why = [w for k in changes if (w := refuse(k, flat.get(k), changes[k]))]
        if why:
            skipped.append(LadderStep(rung, remedy.describe(), None, None, "; ".join(why)))
            continue
        return rung, remedy, changes, skipped
    return rung, None, {}, skipped


def run_with_oom_ladder(lab: Lab, spec: RunSpec, approve: Approve | None = None,
                        on_step: Callable[[LadderStep], None] | None = None) -> LadderOutcome:
    """Run `spec`; while a run ends 'oom', retry with the next remedy of the ladder (a halving rung
    again and again, down to its floor). Each retry is its own run, tagged oom_rung/oom_remedy/
    oom_retry_of; a remedy touching a `locked:` key runs only if `approve` says yes (default:
    never). Later seeds of --repeat start from what worked.

    Raises:
        ConfigError, RunError: as run_experiment, plus a malformed ladder.
    """
    exp = load_experiment(lab, spec.experiment)
    params, _ = resolve_params(exp, spec.overrides, spec.extra_params)  # fail before any folder
    ladder = parse_ladder(exp, exp.default_params())
    refuse = locked_keys(exp, approve)
    group = f"{records.slug(spec.desc)}-{int(time.time())}" if spec.repeat > 1 else None
    results: list[RunResult] = []
    steps: list[LadderStep] = []
    rung = 0
    extra = dict(spec.extra_params)
    for seed in range(spec.repeat):
        res = start_run(lab, exp, replace(spec, extra_params=extra), seed_offset=seed, group=group)
        results.append(res)
        while res.status == "oom":  # next_remedy says when the ladder is spent
            current, _ = resolve_params(exp, spec.overrides, extra)
            rung, remedy, changes, skipped = next_remedy(ladder, rung, current, refuse)
            for step in skipped:
                steps.append(step)
                _report(on_step, step)
            if remedy is None:
                break
            extra = {**extra, **changes}
            tags = {**spec.tags, "oom_rung": str(rung), "oom_remedy": remedy.describe(), "oom_retry_of": res.record["id"]}
            res = start_run(lab, exp, replace(spec, extra_params=extra, tags=tags), seed_offset=seed, group=group)
            results.append(res)
            steps.append(LadderStep(rung, remedy.describe(), res.record["id"], res.status))
            _report(on_step, steps[-1])
        if res.status == "interrupted":
            break
    return LadderOutcome(results, steps)


def _report(on_step: Callable[[LadderStep], None] | None, step: LadderStep) -> None:
    if on_step:
        on_step(step)


# ------------------------------------------------------------------ one run, validated


def run_checked(lab: Lab, spec: RunSpec, *, smoke: bool = False, oom_ladder: bool | None = None,
                approve_locked: list[str] | None = None, say: Callable[[str], None] | None = None) -> list[RunResult]:
    """`spec` as a smoke run, with its timeout sized by one (`spec.timeout == "auto"`) and/or under the
    OOM ladder (default: when the experiment has one). `say` is told what each step did. Returns the
    runs made, smoke and retries included.

    Raises:
        ConfigError: smoke with timeout auto; what `run_experiment` raises.
    """
    tell = say or (lambda line: None)
    exp = load_experiment(lab, spec.experiment)
    if smoke:
        if spec.timeout == "auto":
            raise ConfigError("--smoke and --timeout auto do not combine", "A smoke run has its own limit (smoke.limit, default 60s).")
        res = smoke_run(lab, exp, spec.desc, spec.overrides, spec.extra_params, dict(spec.tags, smoke="true"), spec.entry)
        m = res.record.get("smoke") or {}
        if m.get("steps_per_second"):
            tell(f"smoke: {m['steps']} {m.get('steps_key') or 'steps'} in {m['seconds']:.1f}s, {m['steps_per_second']:.3g} steps/s")
        return [res]
    use_ladder = oom_ladder if oom_ladder is not None else exp.has_oom_ladder
    approved = set(approve_locked or [])

    def launch(lab_: Lab, spec_: RunSpec) -> list[RunResult]:
        if not use_ladder:
            return run_experiment(lab_, spec_)
        out = run_with_oom_ladder(lab_, spec_, approve=lambda key, old, new: key in approved,
                                  on_step=lambda st: tell(f"oom ladder rung {st.rung} ({st.remedy}): "
                                                          + (f"skipped, {st.skipped}" if st.skipped else f"{st.status}  {st.run}")))
        return out.results

    if spec.timeout == "auto":
        sized = run_with_auto_timeout(lab, replace(spec, timeout=None), launch)
        tell(f"smoke {sized.smoke.record['id']}: timeout {format_duration(sized.timeout)} ({sized.why})")
        return sized.results
    return launch(lab, spec)
