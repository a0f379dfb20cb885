"""Samplers: which point of the search space to try next.

The plug-in point is `Sampler` (ask/tell); built-ins are in SAMPLERS (name -> factory), third
parties register a factory under the entry-point group `assay.samplers` (loaded only when named).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from assay.errors import PluginError
from assay.sweep.space import SearchSpace


@dataclass(frozen=True)
class TrialResult:
    """What the driver tells a sampler about a finished trial. `value` is the run's best primary
    metric (None unless status is ok); status is a run status, or 'pruned'."""

    status: str
    value: float | None
    run_id: str | None = None


@runtime_checkable
class Sampler(Protocol):
    """Proposes points. The sweep driver calls, from one thread at a time:

    - ask() when a slot is free: a new point (a dict of dotted param -> value), or None when the
      sampler has nothing more to propose (a finished grid). Several asks may be pending at once.
    - tell(params, result) when a trial ends; also on resume, once per finished trial of the
      stored history, for points this sampler never proposed (it must accept them).
    Neither may raise for a trial's failure; a failed trial is a result like any other.
    """

    def ask(self) -> dict[str, Any] | None: ...

    def tell(self, params: dict[str, Any], result: TrialResult) -> None: ...


@runtime_checkable
class Pruning(Protocol):
    """Optional: samplers that can stop a running trial from its intermediate metric values."""

    def report(self, params: dict[str, Any], step: int, value: float) -> bool:
        """Record `value` at `step` for the pending trial `params`; True means: stop it now."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """Optional: samplers that must not propose again a point the driver re-runs on resume."""

    def claim(self, params: dict[str, Any]) -> None:
        """Called on resume, before the first ask(), once per stored trial that started and never
        ended (interrupted): the driver re-runs `params` itself and tell()s its result when it ends."""
        ...


def point_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class GridSampler:
    """Every combination once, in the order written; already-told points are skipped (resume)."""

    def __init__(self, space: SearchSpace, goal: str = "max", seed: int = 0, **options: Any) -> None:
        _no_options("grid", options)
        self.points = space.grid()
        self.seen: set[str] = set()

    def ask(self) -> dict[str, Any] | None:
        for p in self.points:
            k = point_key(p)
            if k not in self.seen:
                self.seen.add(k)
                return dict(p)
        return None

    def tell(self, params: dict[str, Any], result: TrialResult) -> None:
        self.seen.add(point_key(params))

    def claim(self, params: dict[str, Any]) -> None:
        self.seen.add(point_key(params))


class RandomSampler:
    """Independent uniform draws (log-uniform for log ranges). Draw i depends only on (seed, i), so
    a resumed sweep proposes the same points an uninterrupted one would have."""

    def __init__(self, space: SearchSpace, goal: str = "max", seed: int = 0, **options: Any) -> None:
        _no_options("random", options)
        self.space, self.seed, self.drawn = space, seed, 0
        self.pending: dict[str, int] = {}  # point key -> how many of our draws of it are not told yet

    def ask(self) -> dict[str, Any] | None:
        rng = random.Random(f"{self.seed}:{self.drawn}")
        self.drawn += 1
        p = {k: d.sample(rng) for k, d in self.space.dims.items()}
        k = point_key(p)
        self.pending[k] = self.pending.get(k, 0) + 1
        return p

    def tell(self, params: dict[str, Any], result: TrialResult) -> None:
        k = point_key(params)
        if self.pending.get(k):
            self.pending[k] -= 1
        else:  # replayed history: account for the draw that produced it (two draws may give one point)
            self.drawn += 1

    def claim(self, params: dict[str, Any]) -> None:
        k = point_key(params)
        self.drawn += 1  # the draw that produced it; its tell comes when the re-run ends
        self.pending[k] = self.pending.get(k, 0) + 1


def _no_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise PluginError(f"Sampler '{name}' takes no options, got {', '.join(sorted(options))}",
                          "Remove them, or use an Optuna sampler (tpe, cmaes, gp, qmc) which accepts pruner/startup options.")


_OPTUNA_SAMPLER = "assay.sweep.optuna_sampler:OptunaSampler"  # loads optuna: only when a sweep names it


def _optuna(kind: str) -> Callable[..., Sampler]:
    def make(space: SearchSpace, goal: str = "max", seed: int = 0, **options: Any) -> Sampler:
        from assay import plugins

        sampler: Sampler = plugins.load(_OPTUNA_SAMPLER)(space, goal, seed, kind=kind, **options)
        return sampler

    return make


SAMPLERS: dict[str, Callable[..., Sampler]] = {
    "grid": GridSampler,
    "random": RandomSampler,
    "tpe": _optuna("TPESampler"),
    "optuna": _optuna("TPESampler"),
    "cmaes": _optuna("CmaEsSampler"),
    "gp": _optuna("GPSampler"),
    "qmc": _optuna("QMCSampler"),
    "optuna-random": _optuna("RandomSampler"),
}


def get_sampler(name: str | Sampler, space: SearchSpace, goal: str = "max", seed: int = 0, **options: Any) -> Sampler:
    """A sampler by name (a built-in, `optuna:ClassName`, or an `assay.samplers` entry point), or
    the instance itself.

    Raises:
        PluginError: unknown name (the message lists the known ones).
    """
    if not isinstance(name, str):
        return name
    if name.startswith("optuna:"):
        return _optuna(name.split(":", 1)[1])(space, goal, seed, **options)
    from assay import plugins

    return plugins.factory("assay.samplers", name, SAMPLERS, "sampler", "Pass --sampler grid, random or tpe.",
                           also_known=", optuna:<SamplerClass>")(space, goal, seed, **options)
