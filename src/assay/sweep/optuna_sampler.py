"""Bayesian search through Optuna (TPE by default, other samplers by class name), with pruning.

The Optuna study lives in memory; the sweep's files are the truth. On resume the driver tells
every stored trial again, and they become `create_trial` entries of a fresh study (the same idea
as Optuna's journal storage: replay an append-only log).
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from typing import Any

from assay.errors import ConfigError, PluginError
from assay.sweep.samplers import TrialResult, point_key
from assay.sweep.space import Choice, SearchSpace

_NEEDS = {"CmaEsSampler": "cmaes", "GPSampler": "torch"}
PRUNERS = ("median", "percentile", "hyperband", "halving", "none")


class OptunaSampler:
    """ask/tell over an in-memory Optuna study; report() drives its pruner."""

    def __init__(self, space: SearchSpace, goal: str = "max", seed: int = 0, kind: str = "TPESampler",
                 pruner: str = "median", startup_trials: int = 5, warmup_steps: int = 1, **options: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # library code does not print
        cls = getattr(optuna.samplers, kind, None)
        if cls is None or not isinstance(cls, type):
            known = [n for n in dir(optuna.samplers) if n.endswith("Sampler") and not n.startswith("Base")]
            raise PluginError(f"Optuna has no sampler '{kind}' (known: {', '.join(known)})", "Pass e.g. --sampler optuna:CmaEsSampler.")
        need = _NEEDS.get(kind)
        if need and importlib.util.find_spec(need) is None:  # Optuna imports them only at the first ask
            raise PluginError(f"optuna.samplers.{kind} needs the package '{need}', which is not installed", f"pip install {need}")
        try:
            with warnings.catch_warnings():  # QMC/GP are marked experimental; library code does not print
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = cls(seed=seed, **options)
        except TypeError as exc:
            raise PluginError(f"Cannot create optuna.samplers.{kind} with options {options}: {exc}",
                              "Check the sampler's options in the Optuna documentation.") from None
        self.distributions = {k: _distribution(k, d) for k, d in space.dims.items()}
        self.study = optuna.create_study(direction="maximize" if goal == "max" else "minimize", sampler=sampler,
                                         pruner=_pruner(pruner, startup_trials, warmup_steps))
        self.pending: dict[str, Any] = {}  # point key -> optuna Trial
        self.lock = threading.Lock()  # report() arrives from the trials' watcher threads

    def ask(self) -> dict[str, Any] | None:
        with self.lock:
            trial = self.study.ask(self.distributions)
            params = dict(trial.params)
            self.pending[point_key(params)] = trial
            return params

    def tell(self, params: dict[str, Any], result: TrialResult) -> None:
        from optuna.trial import TrialState, create_trial

        state = {"ok": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(result.status, TrialState.FAIL)
        value = result.value if state == TrialState.COMPLETE and result.value is not None else None
        if state == TrialState.COMPLETE and value is None:
            state = TrialState.FAIL
        with self.lock:
            trial = self.pending.pop(point_key(params), None)
            if trial is not None:
                self.study.tell(trial, value, state=state)
                return
            known = {k: v for k, v in params.items() if k in self.distributions}
            try:
                self.study.add_trial(create_trial(state=state, value=value, params=known,
                                                  distributions={k: self.distributions[k] for k in known}))
            except ValueError:
                # A stored point outside today's space (the sweep file was edited): it cannot inform
                # the model, and the trial's run is still on disk and in `assay compare`.
                return

    def report(self, params: dict[str, Any], step: int, value: float) -> bool:
        with self.lock:
            trial = self.pending.get(point_key(params))
            if trial is None:
                return False
            trial.report(value, step)
            return bool(trial.should_prune())


def _distribution(key: str, dim: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dim, Choice):
        bad = [v for v in dim.values if v is not None and not isinstance(v, (bool, int, float, str))]
        if bad:
            raise ConfigError(f"Optuna cannot search over the value {bad[0]!r} of '{key}'",
                              "Use scalar choices (numbers, strings, booleans) or the grid/random sampler.")
        return CategoricalDistribution(list(dim.values))
    if dim.integer:
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=int(dim.step or 1))
    return FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)


def _pruner(name: str, startup_trials: int, warmup_steps: int) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise PluginError(f"Unknown pruner '{name}' (known: {', '.join(PRUNERS)})", "Pass --pruner median or --pruner none.")
