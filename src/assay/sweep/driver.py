"""The sweep driver: ask the sampler, submit trials to the executor, record, tell, repeat.

Every trial is an ordinary run tagged `sweep=<id>` (and `trial=<n>`), so `assay compare NAME
--by lr,batch` is the sweep's analysis table. Progress goes to an `on_event` callback; this module
never prints.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.config import parse_duration
from assay.errors import ConfigError, RunError
from assay.experiment import Experiment, load_experiment
from assay.lab import Lab
from assay.runner.launch import RunResult, RunSpec, entry_command, resolve_params
from assay.sweep.config import SweepConfig
from assay.sweep.executors import Executor, executor_factory, get_executor
from assay.sweep.samplers import Pruning, Resumable, Sampler, TrialResult, get_sampler
from assay.sweep.space import SearchSpace, space_from_mapping, to_overrides, validate_space
from assay.sweep.state import SweepFiles, TrialEntry, create_sweep, open_sweep

if TYPE_CHECKING:
    from assay.cost import Spend


@dataclass(frozen=True)
class SweepEvent:
    """`kind`: started | preflight | trial_started | trial_finished | oom_retry | max_cost | done."""

    kind: str
    sweep_id: str
    done: int
    total: int
    running: int
    best: float | None = None
    best_params: dict[str, Any] | None = None
    trial: int | None = None
    params: dict[str, Any] | None = None
    result: RunResult | None = None
    eta: float | None = None  # seconds
    note: str | None = None  # oom_retry: the remedy tried next


@dataclass(frozen=True)
class SweepOutcome:
    sweep_id: str
    path: Any
    metric: str
    goal: str
    trials: list[TrialEntry]
    best: TrialEntry | None
    status: str  # done | exhausted | interrupted | max_cost
    value: str = "last"  # each trial's value: its `last` (final) or `best` step of the metric
    warnings: tuple[str, ...] = ()
    cost: dict[str, Any] | None = None  # the ledger's totals over the sweep's runs (assay.cost.Spend.to_dict)
    stopped: str | None = None  # why it stopped launching trials before its budget (max cost)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status or "unfinished"] = out.get(t.status or "unfinished", 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The keys of `assay sweep --json` (and the MCP `sweep` tool)."""
        best = self.best
        return {"sweep": self.sweep_id, "status": self.status, "metric": self.metric, "goal": self.goal, "value": self.value,
                "path": str(self.path), "counts": self.counts(),
                "best": None if best is None else {"trial": best.number, "value": best.value, "params": best.params, "run": best.run},
                "trials": [{"trial": t.number, "params": t.params, "status": t.status, "value": t.value, "run": t.run}
                           for t in self.trials], "warnings": list(self.warnings), "cost": self.cost, "stopped": self.stopped}


def _better(a: float, b: float | None, goal: str) -> bool:
    return b is None or (a > b if goal == "max" else a < b)


def _desc(n: int, params: dict[str, Any]) -> str:
    parts = [f"{k.split('.')[-1].lstrip('+')}{v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1].lstrip('+')}{v}"
             for k, v in params.items()]
    return "-".join([f"t{n:03d}", *parts])


def _value(res: RunResult, metric: str, which: str = "last") -> float | None:
    """A trial's score: the `which` (last or best) value of its metric, as every other view reads it."""
    if res.status != "ok":
        return None
    v = ((res.record.get("metrics") or {}).get(metric) or {}).get(which)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def check_sweep(lab: Lab, exp: Experiment, space: SearchSpace, timeout: str | None) -> None:
    """Fail before any run: unknown keys (did-you-mean), a bad point, a missing entry, a bad timeout."""
    from assay.runner.styles import prepare
    from assay.sweep.space import Choice

    validate_space(space, exp.default_params(), str(exp.config_path.relative_to(lab.root)))
    cmd = entry_command(lab, exp, exp.entry)
    points = [space.example()]
    if exp.params_style == "hydra":  # each group choice and value, checked by Hydra's composition now
        points += [{**space.example(), k: v} for k, d in space.dims.items() if isinstance(d, Choice) for v in d.values[1:]]
    for point in points:
        extra, adds = to_overrides({**space.fixed, **point})
        prepare(exp, exp.entry, cmd, *resolve_params(exp, adds, extra))
    parse_duration(timeout or exp.timeout or lab.default_timeout)


def start_sweep(lab: Lab, config: SweepConfig) -> SweepFiles:
    """Validate and create the sweep's folder (nothing runs yet).

    Raises:
        ConfigError: unknown experiment or parameter (with did-you-mean), a grid over a continuous
            range, a missing budget for random/Bayesian search.
        PluginError: unknown sampler or executor.
    """
    from assay.report.evidence import check_value

    check_value(config.value)
    exp = load_experiment(lab, config.experiment)
    check_sweep(lab, exp, config.space, config.timeout)
    budget = config.trials
    if config.sampler == "grid":
        budget = budget or config.space.size()
        config.space.grid()  # a continuous range is an error for the grid: say so now
    elif budget is None:
        raise ConfigError(f"A {config.sampler} search needs a trial budget", "Pass --trials 20 (or `trials: 20` in the sweep file).")
    if budget is None or budget < 1:
        raise ConfigError(f"The trial budget must be at least 1, got {budget}", "Pass --trials 10.")
    get_sampler(config.sampler, config.space, exp.goal, config.seed, **config.sampler_options)  # name check
    _ladder(exp, config)  # a malformed ladder fails now, not at the first OOM
    if config.max_cost is not None:
        from assay.cost import lab_prices, parse_limit

        parse_limit(config.max_cost, lab_prices(lab))  # so does an unreadable limit
    if isinstance(config.executor, str):
        executor_factory(config.executor)  # so does an unknown executor
    return create_sweep(exp.path, {
        "experiment": exp.name, "metric": exp.metric, "goal": exp.goal, "sampler": config.sampler,
        "sampler_options": config.sampler_options, "trials": budget, "parallel": config.parallel,
        "executor": config.executor, "executor_options": config.executor_options, "seed": config.seed,
        "preflight": config.preflight, "timeout": config.timeout, "space": config.space.to_dict(),
        "oom_ladder": config.oom_ladder, "approve_locked": list(config.approve_locked), "value": config.value,
        "max_cost": config.max_cost,
    })


def resume_config(lab: Lab, experiment: str, sweep_id: str | None) -> tuple[SweepFiles, SweepConfig]:
    """The stored sweep and its settings, ready for run_sweep."""
    exp = load_experiment(lab, experiment)
    sf = open_sweep(exp.path, sweep_id)
    s = sf.settings
    space_d = s.get("space") or {}
    space = space_from_mapping(space_d.get("params") or {}, space_d.get("fixed") or {}, sf.path / "sweep.json")
    cfg = SweepConfig(experiment, space, s.get("sampler", "grid"), s.get("trials"), s.get("parallel"), s.get("executor", "local"),
                      dict(s.get("executor_options") or {}), dict(s.get("sampler_options") or {}), int(s.get("seed", 0)),
                      bool(s.get("preflight")), s.get("timeout"), s.get("oom_ladder"), tuple(s.get("approve_locked") or ()),
                      s.get("value", "best"),  # sweeps stored before `value` existed scored trials by their best step
                      s.get("max_cost"))
    return sf, cfg


def _ladder(exp: Experiment, config: SweepConfig) -> tuple[list[Any], Any]:
    """The OOM ladder for the sweep's trials, and what may not change: a remedy touching a swept
    key would run another point of the space, and `locked:` keys need --approve-locked."""
    from assay.runner.validate import locked_keys, parse_ladder

    on = config.oom_ladder if config.oom_ladder is not None else exp.has_oom_ladder
    if not on:
        return [], None
    locked = locked_keys(exp, lambda key, old, new: key in config.approve_locked)
    swept = {k.lstrip("+") for k in config.space.dims}

    def refuse(key: str, old: Any, new: Any) -> str | None:
        if key in swept:
            return f"{key} is a dimension of this sweep (changing it would run another point)"
        return locked(key, old, new)

    return parse_ladder(exp, exp.default_params()), refuse


def run_sweep(lab: Lab, sf: SweepFiles, config: SweepConfig, on_event: Callable[[SweepEvent], None] | None = None,
              executor: Executor | None = None, sampler: Sampler | None = None) -> SweepOutcome:
    """Run (or resume) the sweep in `sf` until its budget is spent or its space exhausted.

    Trials that ended are told to the sampler and not re-run; trials that started and never ended
    are re-run with the same params. Ctrl-C stops the running trials (records: interrupted) and
    returns with status 'interrupted'; the same call resumes it.

    Raises:
        RunError: the preflight smoke run did not finish ok (no trial is started).
        PluginError: unknown sampler or executor.
    """
    emit = on_event or (lambda e: None)
    exp = load_experiment(lab, config.experiment)
    metric, goal = exp.metric, exp.goal
    budget = int(sf.settings.get("trials") or config.trials or 0)
    if config.trials and config.trials != budget:  # resume with a new budget
        budget = config.trials
        sf.settings["trials"] = budget
    check_sweep(lab, exp, config.space, config.timeout)
    sampler = sampler or get_sampler(config.sampler, config.space, goal, config.seed, **config.sampler_options)
    history = sf.trials()
    requeue: list[TrialEntry] = []
    best: TrialEntry | None = None
    _adopt_ended_runs(exp, sf, history, bool(_ladder(exp, config)[0]))
    # Ended trials are told first, then the interrupted ones claimed: a sampler matching tells to its
    # outstanding draws by point must not take a replayed tell for the claim of an equal point.
    ordered = sorted(history.values(), key=lambda e: e.number)
    for t in ordered:
        if t.status is not None:
            sampler.tell(t.params, TrialResult(t.status, t.value, t.run))
            if t.value is not None and _better(t.value, best.value if best else None, goal):
                best = t
    for t in ordered:
        if t.status is None:  # interrupted: re-run as it is, and the sampler must not propose it again
            requeue.append(t)
            if isinstance(sampler, Resumable):
                sampler.claim(t.params)
    sf.set_status("running")

    if config.preflight and not sf.settings.get("preflight_run"):
        from assay.runner.validate import smoke_run

        emit(SweepEvent("preflight", sf.id, 0, budget, 1))
        extra, adds = to_overrides({**config.space.fixed, **config.space.example()})
        smoke = smoke_run(lab, exp, f"{sf.id}-preflight", adds, extra, {"sweep": sf.id, "preflight": "true"})
        if smoke.status != "ok":
            sf.set_status("refused")
            raise RunError(
                f"Preflight smoke run of sweep {sf.id} ended '{smoke.status}' ({smoke.record.get('reason')}): no trial was started",
                f"See {smoke.path / 'logs' / 'output.log'}; fix it, then: assay sweep {exp.name} --resume {sf.id}",
            )
        sf.settings["preflight_run"] = smoke.record["id"]
        sf.save_settings()

    ex = executor or get_executor(config.executor, lab, config.parallel, **config.executor_options)
    owns_executor = executor is None
    ledger = _Ledger(lab, sf, config)
    done = sum(1 for t in history.values() if t.status is not None)
    next_no = max(history, default=0) + 1
    running: dict[Future[RunResult], TrialEntry] = {}
    durations = [t.duration for t in history.values() if t.duration]
    exhausted = False
    status = "done"
    started_at = {}

    ladder, refuse = _ladder(exp, config)
    outputs: dict[int, tuple[dict[str, Any], Any]] = {}  # trial -> (params, metrics), for the identical-metrics warning

    def submit(entry: TrialEntry) -> None:
        extra, adds = to_overrides({**config.space.fixed, **entry.params})
        spec = RunSpec(exp.name, _desc(entry.number, entry.params), adds, config.timeout,
                       tags={"sweep": sf.id, "trial": str(entry.number), **entry.oom_tags},
                       extra_params={**extra, **entry.oom_changes})
        watch = None
        if isinstance(sampler, Pruning) and getattr(ex, "supports_watch", True):
            params = entry.params
            watch = lambda step, value: sampler.report(params, step, value)  # noqa: E731
        fut = ex.submit(spec, watch)
        running[fut] = entry
        started_at[fut] = time.monotonic()

    restore = _sigterm_as_interrupt()
    try:
        while True:
            while len(running) < ex.slots and done + len(running) < budget and not exhausted:
                if ledger.stop_before_next(len(running)):
                    emit(SweepEvent("max_cost", sf.id, done, budget, len(running), note=ledger.stopped))
                    exhausted = True
                    break
                if requeue:
                    entry = requeue.pop(0)
                else:
                    params = sampler.ask()
                    if params is None:
                        exhausted = True
                        break
                    entry = TrialEntry(next_no, params)
                    next_no += 1
                    sf.append({"event": "start", "trial": entry.number, "params": entry.params})
                submit(entry)
                emit(SweepEvent("trial_started", sf.id, done, budget, len(running), best.value if best else None,
                                best.params if best else None, entry.number, entry.params))
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                entry = running.pop(fut)
                res = fut.result()  # a launch error (bad entry point) ends the sweep: every trial would hit it
                ledger.add(res.record)
                entry.status, entry.value, entry.run = res.status, _value(res, metric, config.value), res.record.get("id")
                entry.duration = res.record.get("duration") or (time.monotonic() - started_at.pop(fut, time.monotonic()))
                if res.status == "interrupted":  # stopped by us or the user: re-run on resume
                    status = "interrupted"
                    continue
                if res.status == "oom" and ladder and _climb(entry, res, ladder, refuse, sf):
                    submit(entry)  # the same point, one remedy further; the sampler hears only the outcome
                    emit(SweepEvent("oom_retry", sf.id, done, budget, len(running), best.value if best else None,
                                    best.params if best else None, entry.number, entry.params, res,
                                    note=f"rung {entry.oom_rung}: {entry.oom_tags['oom_remedy']}"))
                    continue
                sf.append({"event": "end", "trial": entry.number, "run": entry.run, "status": entry.status,
                           "value": entry.value, "duration": entry.duration})
                sampler.tell(entry.params, TrialResult(entry.status, entry.value, entry.run))
                done += 1
                if lost := sorted({k.lstrip("+") for k in config.space.dims} & set(res.record.get("params_unreached") or ())):
                    raise _ParamsLost(lost, entry.number, entry.run)
                if res.status == "ok":
                    outputs[entry.number] = (entry.params, res.record.get("metrics"))
                durations.append(entry.duration)
                if entry.value is not None and _better(entry.value, best.value if best else None, goal):
                    best = entry
                left = budget - done
                eta = (sum(durations) / len(durations)) * math.ceil(left / ex.slots) if durations and left > 0 else 0.0
                emit(SweepEvent("trial_finished", sf.id, done, budget, len(running), best.value if best else None,
                                best.params if best else None, entry.number, entry.params, res, eta))
            if status == "interrupted":
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        status = "interrupted"
        ex.shutdown(cancel=True)
        owns_executor = False
    except _ParamsLost as stop:
        ex.shutdown(cancel=True)
        owns_executor = False
        sf.set_status("refused")
        raise stop.error(exp, sf.id) from None
    finally:
        restore()
        if owns_executor:
            ex.shutdown()
    if status == "done" and exhausted and done < budget:
        status = "max_cost" if ledger.stopped else "exhausted"
    sf.settings["cost"] = ledger.totals()
    sf.settings["stopped"] = ledger.stopped if status == "max_cost" else None
    sf.set_status(status)
    trials = sorted(sf.trials().values(), key=lambda e: e.number)
    outcome = SweepOutcome(sf.id, sf.path, metric, goal, trials, best, status, config.value, _identical(outputs),
                           sf.settings["cost"], sf.settings["stopped"])
    emit(SweepEvent("done", sf.id, done, budget, 0, best.value if best else None, best.params if best else None))
    return outcome


class _Ledger:
    """What the sweep's runs have cost (its earlier runs, preflight and OOM retries included), and
    whether one more trial could take it past --max-cost: what is spent, plus a trial's mean use
    (of the trials ended so far, else the estimate) for each trial in flight and the new one."""

    def __init__(self, lab: Lab, sf: SweepFiles, config: SweepConfig) -> None:
        from assay.cost import lab_prices, parse_limit

        self.prices = lab_prices(lab)
        self.limit = parse_limit(config.max_cost, self.prices) if config.max_cost is not None else None
        self.spent, self.trials = _sweep_spend(lab, sf.id)
        self.estimate = sweep_estimate(lab, config, 1) if self.limit is not None and not self.trials else None
        self.stopped: str | None = None

    def add(self, record: dict[str, Any]) -> None:
        from assay.cost import spend_of

        one = spend_of(record)
        self.spent = self.spent + one
        if (record.get("tags") or {}).get("trial") is not None:
            self.trials.append(one)

    def stop_before_next(self, in_flight: int) -> bool:
        from assay.cost import mean_run, would_exceed

        if self.limit is None or self.stopped:
            return self.stopped is not None
        each = mean_run(self.trials) or (self.estimate.each if self.estimate else None)
        if not would_exceed(self.limit, self.spent, each, in_flight, self.prices):
            return False
        from assay.cost import format_amount

        spent = format_amount(self.spent.amount(self.limit.unit, self.prices), self.limit.unit, self.prices)
        self.stopped = (f"max cost: {spent} spent of {self.limit.describe(self.prices)}; one more trial "
                        f"(~{format_amount(each.amount(self.limit.unit, self.prices), self.limit.unit, self.prices) if each else '?'}"
                        f" each) could exceed it")
        return True

    def totals(self) -> dict[str, Any]:
        return self.spent.to_dict(self.prices)


def _sweep_spend(lab: Lab, sweep_id: str) -> tuple[Spend, list[Spend]]:
    """What the finished runs tagged sweep=<id> used: the total, and one Spend per trial run."""
    from assay.cost import Spend

    with lab.index() as index:
        rows = index.db.execute(
            "SELECT r.cpu_hours, r.gpu_hours, r.duration, EXISTS (SELECT 1 FROM tags x WHERE x.run_id=r.id AND x.key='trial') "
            "FROM runs r JOIN tags t ON t.run_id=r.id AND t.key='sweep' AND t.value=? WHERE r.status!='running'",
            (sweep_id,)).fetchall()
    total, trials = Spend(), []
    for cpu, gpu, duration, is_trial in rows:
        one = Spend(1, cpu or 0.0, gpu or 0.0, (duration or 0.0) / 3600)
        total = total + one
        if is_trial:
            trials.append(one)
    return total, trials


def sweep_estimate(lab: Lab, config: SweepConfig, trials: int) -> Any:
    """The expected use of `trials` trials (assay.cost.Estimate), or None when the experiment has
    no smoke run and no ok run to time. GPUs per trial: Ray's `gpus` option, else one per local
    slot when this machine has GPUs."""
    import math as _math

    from assay.cost import estimate
    from assay.sweep.executors import gpu_ids

    if config.executor == "ray":
        gpus = _math.ceil(float(config.executor_options.get("gpus") or 0))
    else:
        gpus = 1 if gpu_ids() else 0
    return estimate(lab, load_experiment(lab, config.experiment), trials, gpus)


def approve_sweep(lab: Lab, config: SweepConfig, *, yes: bool, ask: Callable[[str], bool] | None,
                  sf: SweepFiles | None = None) -> str | None:
    """The approval gate before a sweep (or its resume, `sf`): see assay.cost.approve.

    Raises:
        ConfigError: not approved (exit 2), or a grid over a continuous range.
    """
    from assay.cost import approve

    if lab.settings.get("approve_above") is None:
        return None
    if config.sampler == "grid" and not config.trials and sf is None:
        size = config.space.size()
        budget = size if size is not None else len(config.space.grid())  # grid(): ConfigError for a continuous range
    else:
        budget = int((sf.settings.get("trials") if sf else None) or config.trials or 0)
    left = budget - (sum(1 for t in sf.trials().values() if t.status is not None) if sf else 0)
    if left <= 0:
        return None
    rerun = f"assay sweep {config.experiment} " + (f"--resume {sf.id}" if sf else "...")
    return approve(lab, sweep_estimate(lab, config, left), what=f"The sweep of {config.experiment} ({left} trial(s))",
                   yes=yes, ask=ask, rerun=rerun)


class _ParamsLost(Exception):
    """A swept param never reached the script: every further trial would run the same thing."""

    def __init__(self, keys: list[str], trial: int, run: str | None) -> None:
        super().__init__(keys)
        self.keys, self.trial, self.run = keys, trial, run

    def error(self, exp: Experiment, sweep_id: str) -> ConfigError:
        from assay.runner.styles import env_var

        names = ", ".join(f"'{k}'" for k in self.keys)
        how = ("it is no placeholder of `entry:`" if exp.params_style == "template" else
               f"`params: {exp.params_style}` passes no arguments, and the script read neither assay.params() nor "
               + ", ".join(env_var(k) for k in self.keys))
        return ConfigError(
            f"Sweep {sweep_id} stopped after trial {self.trial} (run {self.run}): the swept param {names} never reached "
            f"the script '{exp.entry}' ({how}), so every trial would run the same thing",
            f"Set `params: argparse` (or equals, hydra, template) in {exp.file} so assay passes params as the script's "
            f"arguments, or adopt the script with `assay new NAME --from-script {exp.entry.split()[0]}`; then run the sweep again.")


def _identical(outputs: dict[int, tuple[dict[str, Any], Any]]) -> tuple[str, ...]:
    """Warn about trials with different params and bit-identical metrics (every value, every step count)."""
    import json

    groups: dict[str, list[int]] = {}
    for n, (_, metrics) in sorted(outputs.items()):
        if metrics:
            groups.setdefault(json.dumps(metrics, sort_keys=True, default=str), []).append(n)
    out = []
    for trials in groups.values():
        if len({json.dumps(outputs[n][0], sort_keys=True, default=str) for n in trials}) > 1:
            shown = ", ".join(str(n) for n in trials[:8]) + (", ..." if len(trials) > 8 else "")
            out.append(f"trials {shown} have different params but bit-identical metrics: the swept params may not "
                       "matter, or may not reach the script (see `params:` in experiment.yaml)")
    return tuple(out)


# A trial's run that ended with one of these is re-run on resume; any other end is its result.
_RERUN = frozenset({"running", "interrupted", "lost"})


def _adopt_ended_runs(exp: Experiment, sf: SweepFiles, history: dict[int, TrialEntry], ladder: bool) -> None:
    """Record the end of trials whose run ended but whose `end` line was never written (the sweep
    was stopped between the two), so resuming does not run their point a second time. An OOM is
    re-run when the ladder is on: the ladder's progress lived only in the stopped sweep."""
    from assay.errors import StoreError
    from assay.store import records

    open_trials = {str(t.number): t for t in history.values() if t.status is None}
    if not open_trials:
        return
    latest: dict[str, RunResult] = {}
    for folder in records.run_folders(exp.runs_dir):
        try:
            rec = records.read_record(folder)
        except (StoreError, OSError):  # an unreadable record is not this trial's result: it is re-run
            continue
        tags = rec.get("tags") or {}
        n = tags.get("trial")
        if tags.get("sweep") != sf.id or n not in open_trials:
            continue
        if n not in latest or (rec.get("started") or 0) >= (latest[n].record.get("started") or 0):
            latest[n] = RunResult(folder, rec)
    for n, res in sorted(latest.items(), key=lambda kv: int(kv[0])):
        status = res.record.get("status")
        if status not in records.FINISHED or status in _RERUN or (status == "oom" and ladder):
            continue
        t = open_trials[n]
        t.status, t.value, t.run, t.duration = status, _value(res, exp.metric), res.record.get("id"), res.record.get("duration")
        sf.append({"event": "end", "trial": t.number, "run": t.run, "status": t.status, "value": t.value,
                   "duration": t.duration})


def _climb(entry: TrialEntry, res: RunResult, ladder: list[Any], refuse: Any, sf: SweepFiles) -> bool:
    """Move `entry` to the next OOM remedy that applies (True), or say the ladder is spent (False).
    Each step, skipped or taken, is a line of trials.jsonl."""
    from assay.runner.validate import next_remedy

    rung, remedy, changes, skipped = next_remedy(ladder, entry.oom_rung, res.record.get("params") or {}, refuse)
    for step in skipped:
        sf.append({"event": "oom_skip", "trial": entry.number, "rung": step.rung, "remedy": step.remedy, "why": step.skipped})
    entry.oom_rung = rung
    if remedy is None:
        return False
    entry.oom_changes = {**entry.oom_changes, **changes}
    entry.oom_tags = {"oom_rung": str(rung), "oom_remedy": remedy.describe(), "oom_retry_of": str(res.record.get("id"))}
    sf.append({"event": "oom_retry", "trial": entry.number, "run": res.record.get("id"), "rung": rung,
               "remedy": remedy.describe(), "changes": changes})
    return True


def _sigterm_as_interrupt() -> Callable[[], None]:
    """SIGTERM to the sweep stops it like Ctrl-C (trials recorded, resumable), on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, old)

    return restore
