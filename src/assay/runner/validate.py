"""Validate before spend: smoke runs, timeouts sized from them, and the OOM ladder.

experiment.yaml:

    smoke:                      # a scaled-down run that must finish under `limit`
      params: {epochs: 1, n_train: 256}
      steps: epochs             # the param that counts steps (default: the first of max_steps, steps, epochs, ...)
      limit: 60s
      margin: 0.3               # --timeout auto adds this fraction on top of the estimate
    oom_ladder:                 # tried in order while a run ends 'oom'
      - {halve: batch_size, double: grad_accum}
      - {set: {gradient_checkpointing: true}}
    locked: [method, max_length]  # never changed by a remedy without approval
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from assay.config import flatten, format_duration, parse_duration
from assay.errors import ConfigError, RunError
from assay.experiment import Experiment, load_experiment
from assay.lab import Lab
from assay.runner.launch import RunResult, RunSpec, resolve_params, run_experiment, start_run
from assay.store import records

SMOKE_LIMIT = "60s"
DEFAULT_MARGIN = 0.3
STEP_KEYS = ("max_steps", "steps", "num_steps", "total_steps", "iters", "iterations", "epochs", "num_epochs", "n_epochs")
BATCH_KEYS = ("batch_size", "batch", "bs", "per_device_train_batch_size", "train_batch_size", "micro_batch_size")
ACCUM_KEYS = ("grad_accum", "gradient_accumulation_steps", "accum_steps", "grad_accum_steps", "accumulation_steps")
CHECKPOINT_KEYS = ("gradient_checkpointing", "grad_checkpointing", "activation_checkpointing")
_SMOKE_FIELDS = {"params", "steps", "limit", "margin"}
_SMOKE_EXAMPLE = "smoke:\n    params: {epochs: 1}\n    steps: epochs\n    limit: 60s"


# ------------------------------------------------------------------ smoke runs


@dataclass(frozen=True)
class SmokeSettings:
    params: dict[str, Any]
    steps_key: str | None
    limit: float
    margin: float


def smoke_settings(exp: Experiment) -> SmokeSettings:
    """Read the experiment's `smoke:` section (a mapping of params is accepted as its `params`).

    Raises:
        ConfigError: no smoke section, or a malformed one.
    """
    raw = exp.raw.get("smoke")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"Experiment '{exp.name}' has no `smoke:` section in {exp.file}",
                          f"Add a scaled-down configuration, e.g.\n  {_SMOKE_EXAMPLE}")
    params = raw.get("params") if "params" in raw else {k: v for k, v in raw.items() if k not in _SMOKE_FIELDS}
    if not isinstance(params, dict):
        raise ConfigError(f"`smoke.params` in {exp.file} must be a mapping, got {params!r}", f"Write it as\n  {_SMOKE_EXAMPLE}")
    params = flatten(params)
    steps_key = raw.get("steps")
    if steps_key is None:
        steps_key = next((k for k in STEP_KEYS if k in params), None)
    limit = parse_duration(raw.get("limit", SMOKE_LIMIT))
    margin = raw.get("margin", DEFAULT_MARGIN)
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or margin < 0:
        raise ConfigError(f"`smoke.margin` in {exp.file} must be a fraction >= 0, got {margin!r}", "Write margin: 0.3 for 30%.")
    return SmokeSettings(params, str(steps_key) if steps_key else None, limit or parse_duration(SMOKE_LIMIT) or 60.0,
                         float(margin))


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
    record = dict(res.record)
    record["smoke"] = measure_throughput(res, exp.metric, s)
    if res.status == "timeout":
        record["reason"] = f"the smoke run did not finish under {format_duration(s.limit)}: scale `smoke.params` down in {exp.file}"
    records.write_record(res.path, record)
    from assay.store.index import Index

    with Index(lab) as index:
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
class Remedy:
    """One rung: halve some keys, double others, set others."""

    halve: tuple[str, ...] = ()
    double: tuple[str, ...] = ()
    set: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"halve {k}" for k in self.halve] + [f"double {k}" for k in self.double] + [f"set {k}={v}" for k, v in self.set.items()]
        return ", ".join(parts)

    def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        """The changed keys and their new values (flat), or ConfigError when a key cannot change."""
        flat = flatten(params)
        out: dict[str, Any] = {}
        for k in self.halve:
            v = flat.get(k)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f"Cannot halve '{k}': its value is {v!r}, not an integer")
            if v <= 1:
                raise ConfigError(f"Cannot halve '{k}' below 1 (it is {v})")
            out[k] = v // 2
        for k in self.double:
            v = flat.get(k)
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ConfigError(f"Cannot double '{k}': its value is {v!r}, not a number")
            out[k] = v * 2
        out.update(self.set)
        return out


def _keys(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def parse_ladder(exp: Experiment, defaults: dict[str, Any]) -> list[Remedy]:
    """The experiment's `oom_ladder:`, or the default ladder from the keys config.yaml has:
    halve the batch size and double gradient accumulation, then enable gradient checkpointing.

    Raises:
        ConfigError: a malformed rung, a key not in config.yaml, or no default possible.
    """
    from assay.errors import did_you_mean

    known = flatten(defaults)
    raw = exp.raw.get("oom_ladder")
    if raw is None or raw is True:
        rungs: list[Remedy] = []
        batch = next((k for k in known if k.split(".")[-1] in BATCH_KEYS), None)
        accum = next((k for k in known if k.split(".")[-1] in ACCUM_KEYS), None)
        ckpt = next((k for k in known if k.split(".")[-1] in CHECKPOINT_KEYS), None)
        if batch:
            rungs.append(Remedy(halve=(batch,), double=(accum,) if accum else ()))
        if ckpt:
            rungs.append(Remedy(set={ckpt: True}))
        if not rungs:
            raise ConfigError(f"No default OOM ladder for '{exp.name}': config.yaml has no batch size or checkpointing key",
                              f"Write one in {exp.file}: oom_ladder: [{{halve: batch, double: grad_accum}}]")
        return rungs
    if not isinstance(raw, list):
        raise ConfigError(f"`oom_ladder` in {exp.file} must be a list of remedies, got {raw!r}",
                          "Write oom_ladder: [{halve: batch_size, double: grad_accum}, {set: {gradient_checkpointing: true}}]")
    rungs = []
    for i, step in enumerate(raw, 1):
        if not isinstance(step, dict) or not step or set(step) - {"halve", "double", "set"}:
            raise ConfigError(f"Cannot read rung {i} of `oom_ladder` in {exp.file}: {step!r}",
                              "Each rung is a mapping of halve: KEY, double: KEY and/or set: {KEY: VALUE}.")
        sets = step.get("set") or {}
        if not isinstance(sets, dict):
            raise ConfigError(f"`set` of rung {i} of `oom_ladder` in {exp.file} must be a mapping, got {sets!r}",
                              "Write set: {gradient_checkpointing: true}.")
        r = Remedy(_keys(step.get("halve")), _keys(step.get("double")), flatten(sets))
        for k in (*r.halve, *r.double, *r.set):
            if k not in known:
                raise ConfigError(f"Unknown parameter '{k}' in rung {i} of `oom_ladder` in {exp.file} "
                                  f"(known: {', '.join(sorted(known))})." + did_you_mean(k, known),
                                  f"Fix the name, or add '{k}' to {exp.config_path.name}.")
        rungs.append(r)
    return rungs


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
    locked = set(_keys(exp.raw.get("locked")))

    def refuse(key: str, old: Any, new: Any) -> str | None:
        if key in locked and not (approve and approve(key, old, new)):
            return f"locked key {key} needs approval (--approve-locked {key})"
        return None

    return refuse


def next_remedy(ladder: list[Remedy], rung: int, params: dict[str, Any],
                refuse: Refuse) -> tuple[int, Remedy | None, dict[str, Any], list[LadderStep]]:
    """From rung index `rung` on, the first remedy that applies to `params` and changes no refused
    key: (the index after it, the remedy or None when the ladder is spent, its changes (flat),
    the rungs skipped on the way with why)."""
    skipped = []
    while rung < len(ladder):
        remedy = ladder[rung]
        rung += 1
        try:
            changes = remedy.apply(params)
        except ConfigError as exc:
            skipped.append(LadderStep(rung, remedy.describe(), None, None, exc.message))
            continue
        flat = flatten(params)
        why = [w for k in changes if (w := refuse(k, flat.get(k), changes[k]))]
        if why:
            skipped.append(LadderStep(rung, remedy.describe(), None, None, "; ".join(why)))
            continue
        return rung, remedy, changes, skipped
    return rung, None, {}, skipped


def run_with_oom_ladder(lab: Lab, spec: RunSpec, approve: Approve | None = None,
                        on_step: Callable[[LadderStep], None] | None = None) -> LadderOutcome:
    """Run `spec`; while a run ends 'oom', retry with the next remedy of the ladder. Each retry is
    its own run, tagged oom_rung/oom_remedy/oom_retry_of; a remedy touching a `locked:` key runs
    only if `approve` says yes (default: never). Later seeds of --repeat start from what worked.

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
        while res.status == "oom" and rung < len(ladder):
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
