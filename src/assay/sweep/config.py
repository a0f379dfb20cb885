"""Sweep files: the schema of sweep.yaml and how it and explicit options make a SweepConfig.

    params:            # the search space (required); nested mappings for dotted keys
      lr: [1e-4, 3e-4]
      wd: log(1e-5, 1e-2)
    fixed: {epochs: 3} # overrides every trial shares
    sampler: grid      # and trials, parallel, executor, address, seed, preflight, pruner, timeout,
                       # sampler_options, executor_options, max_cost

Options given explicitly (the command line's, the API's) win over the file's keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.sweep.space import SearchSpace

# sweep.yaml's keys.
FILE_KEYS = {"params", "fixed", "sampler", "trials", "parallel", "executor", "address", "seed", "preflight", "pruner",
             "timeout", "sampler_options", "executor_options", "max_cost"}


@dataclass(frozen=True)
class SweepConfig:
    """What to sweep and how. `trials` is the budget (default: the whole grid; required otherwise)."""

    experiment: str
    space: SearchSpace
    sampler: str = "grid"
    trials: int | None = None
    parallel: int | None = None
    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    sampler_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    preflight: bool = False
    timeout: str | None = None
    oom_ladder: bool | None = None  # None: on when the experiment has an `oom_ladder:` section
    approve_locked: tuple[str, ...] = ()
    value: str = "last"  # which value of a trial's primary metric scores it: its final (last) or best step
    max_cost: str | None = None  # stop launching trials before the sweep's runs would cost more (assay.cost units)

    @classmethod
    def from_file(cls, path: Path, *, experiment: str, extra: list[str] | None = None, **overrides: Any) -> SweepConfig:
        """The sweep a sweep.yaml describes (see `from_file`)."""
        return from_file(path, experiment=experiment, extra=extra, **overrides)

    @classmethod
    def from_options(cls, experiment: str, space: SearchSpace, **options: Any) -> SweepConfig:
        """A sweep from explicit options (see `from_options`)."""
        return from_options(experiment, space, **options)


def load_sweep_file(path: Path) -> dict[str, Any]:
    """sweep.yaml as a mapping, its keys checked.

    Raises:
        ConfigError: not a mapping with `params:`, or an unknown key (with did-you-mean).
    """
    from assay.config import load_yaml
    from assay.errors import ConfigError, did_you_mean

    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise ConfigError(f"{path} must be a mapping with a `params:` section",
                          "Write e.g.\n  params:\n    lr: [1e-4, 3e-4]\n    batch: [32, 64]\n  sampler: grid")
    for key in data:
        if key not in FILE_KEYS:
            raise ConfigError(f"Unknown key '{key}' in {path} (known: {', '.join(sorted(FILE_KEYS))})." + did_you_mean(key, FILE_KEYS),
                              f"Fix or remove '{key}'.")
    return data


def from_file(path: Path, *, experiment: str, extra: list[str] | None = None, **overrides: Any) -> SweepConfig:
    """The SweepConfig a sweep.yaml describes; `extra` are `key=v1,v2` items added to its space, and
    `overrides` (the options of `from_options`; None leaves the file's value) win over its keys."""
    from assay.sweep.space import space_from_args, space_from_mapping

    data = load_sweep_file(path)
    space = space_from_mapping(data["params"], data.get("fixed"), path, path.read_text(encoding="utf-8"))
    if extra:
        more = space_from_args(extra)
        space = SearchSpace({**space.dims, **more.dims}, {**space.fixed, **more.fixed}, {**space.sources, **more.sources})
    return from_options(experiment, space, file=data, **overrides)


def from_options(experiment: str, space: SearchSpace, *, sampler: str | None = None, trials: int | None = None,
                 parallel: int | None = None, executor: str | None = None, address: str | None = None,
                 pruner: str | None = None, seed: int | None = None, preflight: bool | None = None,
                 timeout: str | None = None, oom_ladder: bool | None = None,
                 approve_locked: tuple[str, ...] | None = None, value: str = "last", max_cost: str | None = None,
                 file: dict[str, Any] | None = None) -> SweepConfig:
    """A SweepConfig from explicit options, each None one taken from `file` (a sweep.yaml's keys), else its default."""
    data = file or {}
    sampler_options = dict(data.get("sampler_options") or {})
    chosen_pruner = pruner or data.get("pruner")
    if chosen_pruner:
        sampler_options["pruner"] = chosen_pruner
    executor_options = dict(data.get("executor_options") or {})
    addr = address or data.get("address")
    if addr:
        executor_options["address"] = addr
    return SweepConfig(
        experiment, space, sampler or data.get("sampler") or "grid", trials or data.get("trials"),
        parallel or data.get("parallel"), executor or data.get("executor") or "local", executor_options, sampler_options,
        seed if seed is not None else int(data.get("seed", 0)),
        preflight if preflight is not None else bool(data.get("preflight", False)),
        timeout or data.get("timeout"),
        oom_ladder if oom_ladder is not None else data.get("oom_ladder"),
        tuple(approve_locked or data.get("approve_locked") or ()), value,
        None if (max_cost or data.get("max_cost")) is None else str(max_cost or data.get("max_cost")))
