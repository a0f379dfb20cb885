"""Experiments: the machine-readable experiment file, scaffolding, and success/failure criteria."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from assay.config import dump_yaml, load_yaml, write_atomic
from assay.errors import ConfigError, did_you_mean
from assay.lab import EXPERIMENT_NAME, Lab

EXPERIMENT_FILE = "experiment.yaml"
GOALS = ("max", "min")
# Metric names that are better when smaller; used when a secondary metric has no declared goal.
_LOWER_IS_BETTER = re.compile(r"(loss|err|error|bpb|ppl|perplexity|mse|mae|rmse|wer|cer|latency|time)", re.I)
# Files that belong to one experiment's history, never copied by `assay new --from`.
_NOT_STRUCTURE = {"runs", "JOURNAL.md", "README.md", "IGNORED_RUNS.md", "results.tsv", "__pycache__", "plots"}


def guess_goal(metric: str) -> str:
    """'min' for names that read as costs (loss, error, bpb, latency...), else 'max'."""
    return "min" if _LOWER_IS_BETTER.search(metric) else "max"


@dataclass(frozen=True)
class Criterion:
    """`metric op value`, e.g. `val_f1 >= 0.80`; or a comparison of two configurations,
    `val_f1[loss=log_loss] > val_f1[loss=hinge] + 0.005`: then `left` and `right` select the runs
    (params equal to these) and the criterion is on the difference left - right, against `value`."""

    metric: str
    op: str
    value: float
    text: str
    left: dict[str, str] | None = None
    right: dict[str, str] | None = None

    @property
    def comparative(self) -> bool:
        return self.left is not None

    def holds(self, x: float) -> bool:
        return {">=": x >= self.value, ">": x > self.value, "<=": x <= self.value, "<": x < self.value,
                "==": x == self.value}[self.op]


_NUMBER = r"[-+]?[\d.]+(?:[eE][-+]?\d+)?"
_CRITERION = re.compile(rf"^\s*([A-Za-z_][\w./\-]*)\s*(>=|<=|==|>|<)\s*({_NUMBER})\s*$")
_SIDE = r"([A-Za-z_][\w./\-]*)\[([^\]]*)\]"
_COMPARISON = re.compile(rf"^\s*{_SIDE}\s*(>=|<=|>|<)\s*{_SIDE}\s*(?:([+-])\s*([\d.]+(?:[eE][-+]?\d+)?))?\s*$")


def _selector(text: str, part: str, source: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ConfigError(f"Cannot read the run selector [{text}] in '{part}' ({source})",
                              "Select runs by params, e.g. val_f1[loss=log_loss, alpha=1e-4] > val_f1[loss=hinge, alpha=1e-4].")
        out[key.strip()] = value.strip()
    if not out:
        raise ConfigError(f"Empty run selector in '{part}' ({source})", "Name the params that pick each side, e.g. [loss=hinge].")
    return out


def parse_criteria(text: str | None, source: str) -> list[Criterion]:
    """'val_f1 >= 0.8 and val_loss < 0.5' -> criteria (all must hold)."""
    if not text:
        return []
    out = []
    for part in re.split(r"\s+and\s+|\s*&&\s*", text.strip()):
        if c := _COMPARISON.match(part):
            metric, left, op, other, right, sign, margin = c.groups()
            if other != metric:
                raise ConfigError(f"'{part}' in {source} compares {metric} with {other}",
                                  "Compare one metric between two sets of runs, e.g. val_f1[lr=0.1] > val_f1[lr=0.01].")
            value = float(margin or 0) * (-1 if sign == "-" else 1)
            out.append(Criterion(metric, op, value, part.strip(), _selector(left, part, source), _selector(right, part, source)))
            continue
        m = _CRITERION.match(part)
        if not m:
            raise ConfigError(
                f"Cannot read criterion '{part}' in {source}",
                "Write criteria as metric op number, e.g. \"val_f1 >= 0.80\", or compare runs: "
                "\"val_f1[loss=log_loss] > val_f1[loss=hinge]\" (join several with 'and').",
            )
        out.append(Criterion(m.group(1), m.group(2), float(m.group(3)), part.strip()))
    return out


@dataclass(frozen=True)
class Experiment:
    """One question: its hypothesis, the metric that decides it, and how to run it."""

    name: str
    path: Path
    hypothesis: str
    metric: str
    goal: str
    entry: str
    success: str | None = None
    failure: str | None = None
    secondary: dict[str, str] = field(default_factory=dict)
    timeout: str | None = None
    capture: dict[str, Any] = field(default_factory=dict)
    data: tuple[str, ...] = ()  # files/folders the runs read, fingerprinted even outside the lab
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.path / EXPERIMENT_FILE

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def code_paths(self) -> list[str]:
        """`code:` paths outside the experiment folder that its runs execute (e.g. `../model.py`):
        part of each run's code version, so an edit there makes a new configuration."""
        code = self.raw.get("code") or []
        return [str(p) for p in ([code] if isinstance(code, str) else code)]

    @property
    def workdir(self) -> Path:
        """Where runs start: `workdir:` (relative to the experiment folder, or absolute), else the
        experiment folder. An adopted script runs in its own folder, so its relative paths work."""
        wd = self.raw.get("workdir")
        return Path(os.path.normpath(self.path / str(wd))) if wd else self.path

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    def goal_of(self, metric: str) -> str:
        """Direction of any metric: declared for primary/secondary, guessed from the name otherwise."""
        if metric == self.metric:
            return self.goal
        if metric in self.secondary:
            return self.secondary[metric]
        return guess_goal(metric)

    def default_params(self) -> dict[str, Any]:
        if not self.config_path.exists():
            return {}
        data = load_yaml(self.config_path)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.config_path} must hold a mapping of parameters, not {type(data).__name__}")
        return data

    @property
    def success_criteria(self) -> list[Criterion]:
        return parse_criteria(self.success, f"{self.file} (success)")

    @property
    def failure_criteria(self) -> list[Criterion]:
        return parse_criteria(self.failure, f"{self.file} (failure)")


def _from_dict(data: Any, path: Path) -> Experiment:
    file = path / EXPERIMENT_FILE
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a mapping", "See `assay new --help` for its fields, or recreate it.")
    metric = data.get("metric")
    if isinstance(metric, dict):
        mname, goal = metric.get("name"), metric.get("goal", "max")
    else:
        mname, goal = metric, data.get("goal", "max")
    if not mname:
        raise ConfigError(f"{file} has no primary metric", "Add `metric: {name: val_f1, goal: max}`.")
    if goal not in GOALS:
        raise ConfigError(f"Goal '{goal}' in {file} must be max or min", "Set `metric.goal: max` or `min`.")
    secondary = data.get("secondary_metrics") or {}
    if isinstance(secondary, list):
        secondary = {str(m): guess_goal(str(m)) for m in secondary}
    exp = Experiment(
        name=path.name,
        path=path,
        hypothesis=str(data.get("hypothesis", "")),
        metric=str(mname),
        goal=str(goal),
        entry=str(data.get("entry", "train.py")),
        success=data.get("success"),
        failure=data.get("failure"),
        secondary={str(k): str(v) for k, v in secondary.items()},
        timeout=None if data.get("timeout") is None else str(data.get("timeout")),
        capture=dict(data.get("capture") or {}),
        data=_data_paths(data.get("data"), file),
        raw=data,
    )
    # Validate criteria now: a typo is found before a run is spent, not when the verdict is due.
    parse_criteria(exp.success, f"{file} (success)")
    parse_criteria(exp.failure, f"{file} (failure)")
    return exp


def _data_paths(value: Any, file: Path) -> tuple[str, ...]:
    """`data:` as a tuple of path strings (one path or a list of them)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) and x.strip() for x in items):
        raise ConfigError(f"`data:` in {file} must be a path or a list of paths, not {value!r}",
                          "Write e.g. `data: [/datasets/cifar10, ../shared/vocab.txt]` (relative to the experiment folder).")
    return tuple(items)


def list_experiments(lab: Lab) -> list[str]:
    if not lab.experiments_dir.is_dir():
        return []
    return sorted(p.name for p in lab.experiments_dir.iterdir()
                  if EXPERIMENT_NAME.fullmatch(p.name) and (p / EXPERIMENT_FILE).is_file())


def load_experiment(lab: Lab, name: str) -> Experiment:
    """Read experiments/NAME/experiment.yaml; an unknown name lists the known ones."""
    path = lab.experiment_dir(name)
    if not (path / EXPERIMENT_FILE).is_file():
        known = list_experiments(lab)
        raise ConfigError(
            f"Unknown experiment '{name}' (known: {', '.join(known) or 'none'})." + did_you_mean(name, known),
            f"Create it with `assay new {name} --hypothesis \"...\" --metric METRIC --goal max`.",
        )
    return _from_dict(load_yaml(path / EXPERIMENT_FILE), path)


TRAIN_TEMPLATE = '''\
"""{name}: {hypothesis}

Run with `assay run {name} DESC key=value ...`; also runs by hand (`python train.py`).
Params come from config.yaml (overridden on the command line); print or log the metric.
"""

import sys

import assay

# This file is the scaffold `assay new` wrote: it trains nothing, so it refuses to report a
# number under your metric's name. Write your training and evaluation below, then delete these lines.
sys.exit("this is the scaffold from `assay new`: edit train.py (train, evaluate, log {metric}) and delete the sys.exit line")

params = assay.params()
run = assay.init()
for epoch in range(params["epochs"]):
    # ... train one epoch, evaluate, then log what decides the hypothesis:
    score = ...
    assay.log({{"{metric}": score}}, step=epoch)

# A `{metric}: 0.91` line is also read by any tool that greps stdout.
print(f"{metric}: {{score:.4f}}")
assay.finish()
'''


def new_experiment(
    lab: Lab,
    name: str,
    hypothesis: str,
    metric: str | None = None,
    goal: str | None = None,
    success: str | None = None,
    failure: str | None = None,
    secondary: list[str] | None = None,
    from_: str | None = None,
    entry: str | None = None,
    timeout: str | None = None,
    *,
    extra: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
) -> Experiment:
    """Scaffold experiments/NAME/ (experiment.yaml, README.md, JOURNAL.md, config.yaml, train.py).

    With `from_`, copies that experiment's scripts and config ("same structure as baseline") and
    inherits its metric, entry point and timeout unless given. `extra` adds keys to
    experiment.yaml; `files` replaces the scaffold's config.yaml and train.py (`--from-script`).

    Raises:
        ConfigError: bad name, missing metric/goal, an existing experiment, unreadable criteria.
    """
    path = lab.experiment_dir(name)  # refuses unsafe names
    if (path / EXPERIMENT_FILE).exists():
        raise ConfigError(f"Experiment '{name}' already exists at {path}", f"Pick another name or edit {path / EXPERIMENT_FILE}.")
    base = load_experiment(lab, from_) if from_ else None
    metric = metric or (base.metric if base else None)
    goal = goal or (base.goal if base else None)
    if not metric:
        raise ConfigError("An experiment needs exactly one primary metric", "Pass --metric NAME --goal max|min.")
    if goal not in GOALS:
        raise ConfigError(f"--goal must be max or min, got '{goal}'", f"Pass --goal max (or min) for {metric}.")
    parse_criteria(success, "--success")
    parse_criteria(failure, "--failure")

    data: dict[str, Any] = {
        "hypothesis": hypothesis,
        "metric": {"name": metric, "goal": goal},
        "secondary_metrics": {m.split(":")[0]: (m.split(":")[1] if ":" in m else guess_goal(m)) for m in (secondary or [])},
        "success": success,
        "failure": failure,
        "entry": entry or (base.entry if base else "train.py"),
        "timeout": timeout or (base.timeout if base else "30m"),
        "created": datetime.now().isoformat(timespec="seconds"),
    }
    data.update(extra or {})
    if base:
        data["derived_from"] = base.name
        for key in ("capture", "smoke", "oom_ladder", "locked"):
            if key in base.raw:
                data[key] = base.raw[key]

    path.mkdir(parents=True, exist_ok=True)
    if base:
        for item in base.path.iterdir():
            if item.name in _NOT_STRUCTURE or item.name == EXPERIMENT_FILE or item.name.startswith("."):
                continue
            dst = path / item.name
            if item.is_dir():
                shutil.copytree(item, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(item, dst)
    elif files is not None:
        for fname, text in files.items():
            (path / fname).write_text(text, encoding="utf-8")
    else:
        (path / "config.yaml").write_text("# Default parameters; override with key=value on `assay run`.\nseed: 0\nepochs: 5\n", encoding="utf-8")
        (path / "train.py").write_text(TRAIN_TEMPLATE.format(name=name, hypothesis=hypothesis, metric=metric), encoding="utf-8")
    write_atomic(path / EXPERIMENT_FILE, dump_yaml({k: v for k, v in data.items() if v not in (None, {}, [])}))
    crit = "\n".join(f"- {k}: `{v}`" for k, v in (("Success", success), ("Failure", failure)) if v) or "- (none yet: decide them before running)"
    (path / "README.md").write_text(
        f"# {name}\n\n## Hypothesis\n\n{hypothesis}\n\n## Decides it\n\nPrimary metric: `{metric}` ({goal}).\n\n"
        f"{crit}\n" + (f"\nSame structure as `{base.name}`.\n" if base else ""),
        encoding="utf-8",
    )
    (path / "JOURNAL.md").write_text(f"# Journal: {name}\n\n", encoding="utf-8")
    (path / "runs").mkdir(exist_ok=True)
    return load_experiment(lab, name)
