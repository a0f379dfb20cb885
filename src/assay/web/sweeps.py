"""The sweep pages: an experiment's sweeps, and one sweep's trials, best-so-far and param importance.

Everything is read from the sweep's own files (experiments/NAME/sweeps/<id>/sweep.json and
trials.jsonl, through assay.sweep.state), so a trial's value is the one `assay sweep ... --json`
printed: the sweep's `value` setting (the last or the best step of the primary metric) applied
when the trial ended.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from assay.errors import ConfigError
from assay.lab import Lab
from assay.sweep.state import TRIALS_FILE, SweepFiles, TrialEntry, list_sweeps, open_sweep

_IMPORTANCE: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any]]] = {}
_LOCK = threading.Lock()


class UnknownSweep(ConfigError, LookupError):
    """A sweep id in a URL that the experiment does not hold (HTTP 404)."""


def _better(a: float, b: float | None, goal: str) -> bool:
    return b is None or (a > b if goal == "max" else a < b)


def _best(trials: list[TrialEntry], goal: str) -> TrialEntry | None:
    """The trial with the best value. On an exact tie the lower trial number wins here, where the
    sweep's own summary keeps the trial that finished first (the same unless parallel trials tie)."""
    best: TrialEntry | None = None
    for t in trials:
        if t.value is not None and _better(t.value, best.value if best else None, goal):
            best = t
    return best


def _trial_json(t: TrialEntry) -> dict[str, Any]:
    return {"trial": t.number, "params": t.params, "status": t.status or "running", "value": t.value,
            "run": t.run, "duration": t.duration}


def sweeps(lab: Lab, name: str) -> dict[str, Any]:
    """The sweeps of experiment `name`, newest first: id, status, sampler, budget, counts, best value."""
    from assay.web.data import experiment

    exp = experiment(lab, name)
    out = []
    for sid in reversed(list_sweeps(exp.path)):
        try:
            sf = open_sweep(exp.path, sid)
        except (ConfigError, OSError) as exc:  # a corrupt sweep.json is listed, not fatal to the page
            out.append({"id": sid, "error": getattr(exc, "message", str(exc))})
            continue
        trials = sorted(sf.trials().values(), key=lambda e: e.number)
        s = sf.settings
        goal = s.get("goal", exp.goal)
        best = _best(trials, goal)
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.status or "running"] = counts.get(t.status or "running", 0) + 1
        out.append({"id": sid, "status": s.get("status"), "sampler": s.get("sampler"), "budget": s.get("trials"),
                    "created": s.get("created"), "metric": s.get("metric", exp.metric), "goal": goal,
                    "value": s.get("value", "best"), "params": list((s.get("space") or {}).get("params") or {}),
                    "trials": len(trials), "counts": counts, "best": best.value if best else None,
                    "best_trial": best.number if best else None})
    return {"experiment": name, "metric": exp.metric, "goal": exp.goal, "sweeps": out}


def _open(lab: Lab, name: str, sweep_id: str) -> tuple[Any, SweepFiles]:
    from assay.web.data import _NAME, experiment

    exp = experiment(lab, name)
    known = list_sweeps(exp.path)
    if not _NAME.match(sweep_id) or sweep_id not in known:
        raise UnknownSweep(f"Unknown sweep '{sweep_id}' of experiment '{name}' (known: {', '.join(known) or 'none'})",
                           "Pick one from the experiment's sweeps tab.")
    return exp, open_sweep(exp.path, sweep_id)


def sweep(lab: Lab, name: str, sweep_id: str) -> dict[str, Any]:
    """One sweep: its settings and space, every trial (number, params, status, value, run), the best
    trial, the best value so far after each trial (in trial order), and the params' importance.

    Returns:
        {"id", "status", "metric", "goal", "value", "sampler", "budget", "space": {param: {kind, ...}},
        "trials": [...], "best": trial or None, "best_so_far": [{"trial", "value"}], "importance": ...}.
    """
    exp, sf = _open(lab, name, sweep_id)
    s = sf.settings
    goal = s.get("goal", exp.goal)
    trials = sorted(sf.trials().values(), key=lambda e: e.number)
    best = _best(trials, goal)
    so_far: list[dict[str, Any]] = []
    running: float | None = None
    for t in trials:
        if t.value is not None and _better(t.value, running, goal):
            running = t.value
        so_far.append({"trial": t.number, "value": running})
    space = (s.get("space") or {}).get("params") or {}
    return {"id": sf.id, "experiment": name, "status": s.get("status"), "metric": s.get("metric", exp.metric), "goal": goal,
            "value": s.get("value", "best"),  # sweeps stored before `value` existed scored trials by their best step
            "sampler": s.get("sampler"), "budget": s.get("trials"), "created": s.get("created"), "seed": s.get("seed"),
            "space": {k: _axis(d) for k, d in space.items()}, "fixed": (s.get("space") or {}).get("fixed") or {},
            "units": exp.units(s.get("metric", exp.metric)),
            "trials": [_trial_json(t) for t in trials], "best": _trial_json(best) if best else None,
            "best_so_far": so_far, "importance": importance(sf, goal)}


def _axis(d: dict[str, Any]) -> dict[str, Any]:
    """How the page draws a param's axis: a range (log or linear) or a list of values."""
    if "values" in d:
        vals = list(d["values"])
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
        return {"kind": "numeric" if numeric else "categorical", "values": vals,
                "log": numeric and min(vals) > 0 and max(vals) / min(vals) >= 100}
    return {"kind": "numeric", "low": d.get("low"), "high": d.get("high"), "log": bool(d.get("log")),
            "integer": d.get("type") == "int"}


def importance(sf: SweepFiles, goal: str) -> dict[str, Any]:
    """fANOVA importance of each swept param for the trials' values (Optuna's evaluator over an
    in-memory study rebuilt from the trials), cached until trials.jsonl changes.

    Returns:
        {"method": "fanova", "values": {param: share}, "trials": n} or {"method": None, "note": why not}.
    """
    try:
        st = (sf.path / TRIALS_FILE).stat()
        stamp: tuple[Any, ...] = (st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = (None,)
    key = (str(sf.path), goal)
    with _LOCK:
        hit = _IMPORTANCE.get(key)
    if hit and hit[0] == stamp:
        return hit[1]
    out = _fanova(sf, goal)
    with _LOCK:
        if len(_IMPORTANCE) > 64:
            _IMPORTANCE.clear()
        _IMPORTANCE[key] = (stamp, out)
    return out


def _fanova(sf: SweepFiles, goal: str) -> dict[str, Any]:
    try:
        import optuna
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances
        from optuna.trial import TrialState, create_trial
    except ImportError:
        return {"method": None, "note": "Optuna is not installed, so no importance is computed: pip install optuna"}
    from assay.sweep.optuna_sampler import _distribution
    from assay.sweep.space import space_from_mapping

    space_d = sf.settings.get("space") or {}
    try:
        space = space_from_mapping(space_d.get("params") or {}, space_d.get("fixed") or {}, sf.path / "sweep.json")
        dists = {k: _distribution(k, d) for k, d in space.dims.items()}
    except ConfigError as exc:
        return {"method": None, "note": f"The sweep's space cannot be given to Optuna: {exc.message}"}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if goal == "max" else "minimize")
    used = 0
    for t in sorted(sf.trials().values(), key=lambda e: e.number):
        if t.value is None or not math.isfinite(t.value) or set(t.params) != set(dists):
            continue
        try:
            study.add_trial(create_trial(state=TrialState.COMPLETE, value=t.value, params=t.params, distributions=dists))
        except ValueError:  # a point outside the stored space (the sweep file was edited)
            continue
        used += 1
    varying = [k for k, d in dists.items() if not d.single()]
    if used < 2 or not varying:
        return {"method": None, "note": f"Importance needs at least 2 trials with a value over a varying param ({used} so far)."}
    try:
        values = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=varying)
    except (RuntimeError, ValueError) as exc:  # e.g. every value identical
        return {"method": None, "note": f"fANOVA could not be computed: {exc}"}
    return {"method": "fanova", "values": {k: float(v) for k, v in values.items()}, "trials": used}
