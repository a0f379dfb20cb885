"""Experiments: the machine-readable experiment file, scaffolding, and success/failure criteria."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.config import dump_yaml, flatten, load_yaml, parse_duration, write_atomic
from assay.errors import AssayError, ConfigError, did_you_mean
from assay.lab import EXPERIMENT_NAME, Lab, find_lab

if TYPE_CHECKING:
    from assay.sweep.space import SearchSpace

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
    params_style: str = "env"  # `params:`: how params reach the script (runner.styles)
    runs_root: Path | None = None  # where run folders go when the code runs from another copy (see `at`)

    @property
    def file(self) -> Path:
        return self.path / EXPERIMENT_FILE

    @property
    def runs_dir(self) -> Path:
        return self.runs_root or self.path / "runs"

    def at(self, path: Path) -> Experiment:
        """This experiment as checked out at `path` (a git worktree's copy of its folder): code,
        config and workdir come from there; run folders still land in this lab's runs/."""
        from dataclasses import replace

        return replace(_from_dict(load_yaml(path / EXPERIMENT_FILE), path), runs_root=self.runs_dir)

    @property
    def locked(self) -> set[str]:
        """`locked:` keys: an OOM remedy never changes them without approval."""
        return set(_keys(self.raw.get("locked")))

    @property
    def has_oom_ladder(self) -> bool:
        """True when experiment.yaml has an `oom_ladder:` section (the ladder is on by default then)."""
        return "oom_ladder" in self.raw

    def units(self, metric: str) -> str | None:
        """The unit of `metric` from `units: {metric: unit}`, for axis titles."""
        units = self.raw.get("units")
        return str(units[metric]) if isinstance(units, dict) and units.get(metric) is not None else None

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
        data = load_yaml(self.config_path, names=True)
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
    from assay.runner.styles import parse_style  # assay.runner imports this module

    file = path / EXPERIMENT_FILE
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a mapping", "See `assay new --help` for its fields, or recreate it.")
    _check_fields(data, file)
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
        params_style=parse_style(data.get("params"), file),
    )
    # Validate criteria now: a typo is found before a run is spent, not when the verdict is due.
    parse_criteria(exp.success, f"{file} (success)")
    parse_criteria(exp.failure, f"{file} (failure)")
    return exp


def _check_fields(data: dict[str, Any], file: Path) -> None:
    """Refuse fields of the wrong type, which would be read silently otherwise (`metric: 5` as a
    metric named '5', `entry: yes` as the script 'True'), and an entry point shlex cannot split."""
    metric = data.get("metric")
    texts: dict[str, Any] = {k: data[k] for k in ("entry", "hypothesis", "success", "failure", "goal")
                             if data.get(k) is not None}
    if isinstance(metric, dict):
        texts.update({f"metric.{k}": metric[k] for k in ("name", "goal") if metric.get(k) is not None})
    elif metric is not None:
        texts["metric"] = metric
    secondary = data.get("secondary_metrics")
    if isinstance(secondary, list):
        texts.update({f"secondary_metrics[{i}]": m for i, m in enumerate(secondary)})
    elif isinstance(secondary, dict):
        texts.update({f"secondary_metrics.{k}": v for k, v in secondary.items()})
    elif secondary is not None:
        texts["secondary_metrics"] = secondary
    for key, value in texts.items():
        if not isinstance(value, str):
            raise ConfigError(f"`{key}` in {_where(file, key)} must be text, not {value!r} ({type(value).__name__})",
                              f"Write it as a quoted string in {file.name}, e.g. {key.split('[')[0]}: \"...\".")
    if data.get("capture") is not None and not isinstance(data["capture"], dict):
        raise ConfigError(f"`capture` in {_where(file, 'capture')} must be a mapping, not {data['capture']!r}",
                          "Write e.g. `capture: {patterns: ['loss=(?P<value>\\S+)']}`.")
    if "entry" in texts:
        import shlex

        try:
            shlex.split(texts["entry"])
        except ValueError as exc:  # "No closing quotation", "No escaped character"
            raise ConfigError(f"Cannot read `entry: {texts['entry']}` in {_where(file, 'entry')}: {exc}",
                              "Close the quote, or quote the whole value in YAML and the script name inside it.") from None


def _where(file: Path, key: str) -> str:
    """file:line of a top-level key (the first line that starts with it), or the file alone."""
    top = re.split(r"[.\[]", key, maxsplit=1)[0]
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return str(file)
    pattern = re.compile(rf"['\"]?{re.escape(top)}['\"]?\s*:")
    n = next((i for i, ln in enumerate(lines, 1) if pattern.match(ln)), None)
    return f"{file}:{n}" if n else str(file)


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


def _scaffold_file(entry: str) -> str:
    """The file the scaffold writes for `entry`: the entry's own script when it names one in the
    experiment folder (train.ipynb, app.py, main.py), else train.py (a command line's script)."""
    import shlex

    try:
        first = shlex.split(entry)[0]
    except (ValueError, IndexError):
        return "train.py"
    return first if first.endswith((".py", ".ipynb")) and "/" not in first else "train.py"


def _scaffold(file: str, name: str, hypothesis: str, metric: str) -> str:
    """A Jupyter notebook for .ipynb, a marimo app for app.py, else the train.py script (all refuse to run until edited)."""
    if file.endswith(".ipynb"):
        from assay.integrations.notebook import scaffold

        return scaffold(name, hypothesis, metric, file)
    if file == "app.py":
        from assay.integrations.marimo_notebook import scaffold as marimo_scaffold

        return marimo_scaffold(name, hypothesis, metric, file)
    return TRAIN_TEMPLATE.replace("edit train.py", f"edit {file}").format(name=name, hypothesis=hypothesis, metric=metric)


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

    The script follows `entry`: `train.ipynb` (any .ipynb) gets a Jupyter notebook with a
    `parameters` cell, `app.py` a marimo app, another .py name the train.py script under that name.

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
        for key in ("capture", "smoke", "oom_ladder", "locked", "params", "hydra"):
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
        file = _scaffold_file(data["entry"])
        (path / file).write_text(_scaffold(file, name, hypothesis, metric), encoding="utf-8")
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

# ------------------------------------------------------------------ optional sections of experiment.yaml
# Every section of the experiment file is read here, so a reader of the file learns its schema in one
# module: smoke (a scaled-down run), oom_ladder (remedies tried while a run ends 'oom'), locked (keys a
# remedy may not change without approval), units (axis labels), code (paths that are part of the code
# version), confirm (the held-out evaluation of a loop's result), loop_space (where the loop's params
# proposer may search) and the core fields above.

SMOKE_LIMIT = "60s"
DEFAULT_MARGIN = 0.3
STEP_KEYS = ("max_steps", "steps", "num_steps", "total_steps", "iters", "iterations", "epochs", "num_epochs", "n_epochs")
BATCH_KEYS = ("batch_size", "batch", "bs", "per_device_train_batch_size", "train_batch_size", "micro_batch_size")
ACCUM_KEYS = ("grad_accum", "gradient_accumulation_steps", "accum_steps", "grad_accum_steps", "accumulation_steps")
CHECKPOINT_KEYS = ("gradient_checkpointing", "grad_checkpointing", "activation_checkpointing")
_SMOKE_FIELDS = {"params", "steps", "limit", "margin"}
_SMOKE_EXAMPLE = "smoke:\n    params: {epochs: 1}\n    steps: epochs\n    limit: 60s"


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


@dataclass(frozen=True)
class Remedy:
    """One rung: halve some keys, double others, set others. A rung that halves is climbed again
    while the run still runs out of memory, until the halved keys would go below `min` (as
    accelerate's find_executable_batch_size does), then the ladder moves on."""

    halve: tuple[str, ...] = ()
    double: tuple[str, ...] = ()
    set: dict[str, Any] = field(default_factory=dict)
    min: int = 1  # floor of the halved keys

    @property
    def repeats(self) -> bool:
        return bool(self.halve)

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
            if v // 2 < self.min:
                raise ConfigError(f"Cannot halve '{k}' below {self.min} (it is {v})")
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
        if not isinstance(step, dict) or not step or set(step) - {"halve", "double", "set", "min"}:
            raise ConfigError(f"Cannot read rung {i} of `oom_ladder` in {exp.file}: {step!r}",
                              "Each rung is a mapping of halve: KEY, double: KEY and/or set: {KEY: VALUE} (min: N, the floor of halve).")
        floor = step.get("min", 1)
        if not isinstance(floor, int) or isinstance(floor, bool) or floor < 1:
            raise ConfigError(f"`min` of rung {i} of `oom_ladder` in {exp.file} must be an integer >= 1, got {floor!r}",
                              "Write e.g. {halve: batch_size, double: grad_accum, min: 4}.")
        sets = step.get("set") or {}
        if not isinstance(sets, dict):
            raise ConfigError(f"`set` of rung {i} of `oom_ladder` in {exp.file} must be a mapping, got {sets!r}",
                              "Write set: {gradient_checkpointing: true}.")
        r = Remedy(_keys(step.get("halve")), _keys(step.get("double")), flatten(sets), floor)
        for k in (*r.halve, *r.double, *r.set):
            if k not in known:
                raise ConfigError(f"Unknown parameter '{k}' in rung {i} of `oom_ladder` in {exp.file} "
                                  f"(known: {', '.join(sorted(known))})." + did_you_mean(k, known),
                                  f"Fix the name, or add '{k}' to {exp.config_path.name}.")
        rungs.append(r)
    return rungs


_CONFIRM_FIELDS = {"params", "entry", "seeds"}
_CONFIRM_EXAMPLE = "confirm:\n    params: {split: test}\n    seeds: 5"
DEFAULT_CONFIRM_SEEDS = 5


@dataclass(frozen=True)
class ConfirmSettings:
    """How to evaluate on a split the loop never sees: these params and/or this entry point, `seeds` times."""

    params: dict[str, Any]
    entry: str | None
    seeds: int

    def describe(self) -> str:
        parts = [" ".join(f"{k}={v}" for k, v in self.params.items())] if self.params else []
        parts += [f"entry {self.entry}"] if self.entry else []
        return f"{', '.join(parts)}, {self.seeds} seeds"


def confirm_settings(exp: Experiment) -> ConfirmSettings | None:
    """The experiment's `confirm:` section; None when it declares none.

    Its params must be keys of config.yaml (where their defaults, e.g. `split: val`, are what the
    loop's own runs use), so a typo cannot quietly evaluate on the validation split again.

    Raises:
        ConfigError: a malformed section: unknown fields, neither params nor entry, seeds < 2.
    """
    raw = exp.raw.get("confirm")
    if raw is None:
        return None
    where = _where(exp.file, "confirm")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"`confirm` in {where} must be a mapping, got {raw!r}", f"Write it as\n  {_CONFIRM_EXAMPLE}")
    if unknown := sorted(set(map(str, raw)) - _CONFIRM_FIELDS):
        raise ConfigError(f"Unknown field '{unknown[0]}' in `confirm` in {where} (known: {', '.join(sorted(_CONFIRM_FIELDS))})."
                          + did_you_mean(unknown[0], _CONFIRM_FIELDS), f"Write it as\n  {_CONFIRM_EXAMPLE}")
    params = raw.get("params") or {}
    entry = raw.get("entry")
    seeds = raw.get("seeds", DEFAULT_CONFIRM_SEEDS)
    if not isinstance(params, dict):
        raise ConfigError(f"`confirm.params` in {where} must be a mapping, got {params!r}", f"Write it as\n  {_CONFIRM_EXAMPLE}")
    if entry is not None and (not isinstance(entry, str) or not entry.strip()):
        raise ConfigError(f"`confirm.entry` in {where} must be a script or command, got {entry!r}",
                          "Write e.g. `confirm: {entry: evaluate.py}`.")
    if not params and entry is None:
        raise ConfigError(f"`confirm` in {where} names neither params nor an entry point: it would re-run the validation split",
                          f"Write it as\n  {_CONFIRM_EXAMPLE}")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 2:
        raise ConfigError(f"`confirm.seeds` in {where} must be an integer >= 2 (an interval needs repeats), got {seeds!r}",
                          "Write e.g. `seeds: 5`.")
    params = flatten(params)
    defaults = flatten(exp.default_params())
    if missing := sorted(k for k in params if k not in defaults):
        raise ConfigError(f"Unknown parameter '{missing[0]}' in `confirm.params` in {where} (not in {exp.config_path.name}; "
                          f"known: {', '.join(sorted(defaults)) or 'none'})." + did_you_mean(missing[0], list(defaults)),
                          f"Add it to {exp.config_path.name} with the value the loop uses, e.g. {missing[0]}: val.")
    if entry is None and all(defaults[k] == v for k, v in params.items()):
        raise ConfigError(f"`confirm.params` in {where} ({', '.join(f'{k}={v}' for k, v in params.items())}) equal the defaults "
                          f"in {exp.config_path.name}: that is the split the loop already decides on",
                          "Name the held-out split, e.g. `confirm: {params: {split: test}}`.")
    return ConfirmSettings(params, entry, seeds)


_LOOP_SPACE_EXAMPLE = "loop_space:\n    max_features: interval(0.1, 1.0)\n    min_samples_leaf: range(1, 10)\n    lr: {low: 1e-5, high: 1e-2, log: true}"


def loop_space(exp: Experiment) -> SearchSpace | None:
    """The experiment's `loop_space:`, where `assay loop run --propose params` searches; None when
    it declares none. The same syntax as sweep.yaml's `params:` (lists, {low, high, log, type,
    step}, or inline `interval(a,b)`, `log(a,b)`, `range(a,b)`, `choice(...)`); every key must be
    a param of config.yaml, checked by the proposer, which edits that file.

    Raises:
        ConfigError: not a mapping, or a malformed dimension.
    """
    from assay.sweep.space import space_from_mapping

    raw = exp.raw.get("loop_space")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"`loop_space` in {_where(exp.file, 'loop_space')} must be a mapping of params to ranges, got {raw!r}",
                          f"Write it as\n  {_LOOP_SPACE_EXAMPLE}")
    return space_from_mapping(raw, file=exp.file, text=exp.file.read_text(encoding="utf-8"))


def goal_lookup(lab_root: Path | None, experiment: str | None) -> Callable[[str], str]:
    """The experiment's goal_of, or the name-based guess when its file is missing or unreadable
    (a broken experiment file must not lose or hide a run's metrics)."""
    if lab_root is not None and experiment:
        try:
            return load_experiment(find_lab(lab_root), experiment).goal_of
        except AssayError:
            pass
    return guess_goal
