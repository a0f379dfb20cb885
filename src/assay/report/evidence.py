"""An experiment's runs as read from their folders (the files are the truth), grouped by configuration.

Every later step (verdict, plots, report) starts here, so all of them exclude the same ignored
runs, use the same value per run and cite the same files.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay import identity
from assay.errors import ConfigError, StoreError
from assay.experiment import Experiment
from assay.store import records

VALUES = ("last", "best")


@dataclass(frozen=True)
class RunView:
    """One run folder: its record, and why it is left out (ignored, not finished ok), if it is."""

    path: Path
    record: dict[str, Any]
    ignored: str | None = None

    @property
    def id(self) -> str:
        return str(self.record.get("id") or records.run_id(self.path))

    @property
    def status(self) -> str:
        return str(self.record.get("status", "?"))

    @property
    def seed(self) -> Any:
        return self.record.get("seed", (self.record.get("params") or {}).get("seed"))

    def value(self, metric: str, which: str = "last") -> float | None:
        """The run's `last` (final) or `best` value of `metric`, or None when it never logged it."""
        summary = (self.record.get("metrics") or {}).get(metric) or {}
        v = summary.get(which)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def config_key(self, pool_code: bool = False) -> str:
        """Entry point, code version and params without the seed: runs sharing it are repeats of
        one configuration (assay.identity)."""
        return identity.config_key(self.record, pool_code=pool_code)


@dataclass
class Config:
    """Runs of one configuration (same entry point, code version and params; any seed)."""

    params: dict[str, Any]
    runs: list[RunView] = field(default_factory=list)
    entry: str | None = None
    code: str | None = None  # the code version's fingerprint (None: unknown, or pooled)
    code_label: str = "?"  # short: commit, `*` when dirty

    def label(self, varying: list[str]) -> str:
        if not varying:
            return "all runs"
        return ", ".join(f"{k}={self.pseudo(k)}" for k in varying)

    def pseudo(self, key: str) -> str:
        """A param's value, or for `entry` and `code` the configuration's entry point and code version."""
        if key == "entry":
            return str(self.entry)
        if key == "code":
            return self.code_label
        return _short(self.params.get(key))


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def check_value(which: str) -> str:
    if which not in VALUES:
        raise ConfigError(f"Unknown value '{which}' (known: last, best)",
                          "Pass --value last (the run's final value) or --value best (its best step).")
    return which


def load_runs(exp: Experiment) -> list[RunView]:
    """Every run folder of `exp` in start order; unreadable folders raise (they would be silently missing)."""
    from assay.journal import ignored_runs

    ignored = ignored_runs(exp.path)
    out: list[RunView] = []
    if not exp.runs_dir.is_dir():
        return out
    for path in records.run_folders(exp.runs_dir):
        if not (path / records.RECORD_FILE).exists():
            continue
        try:
            record = records.read_record(path)
        except StoreError as exc:
            raise StoreError(exc.message, f"Fix or move {path} aside, or list it in IGNORED_RUNS.md "
                                          f"(`assay ignore {records.run_id(path)} --why ...`).") from None
        out.append(RunView(path, record, ignored.get(path.name)))
    out.sort(key=lambda r: (r.record.get("started") or 0, r.path.name))
    return out


def runs_from_index(index: Any, exp: Experiment, metrics: list[str]) -> list[RunView]:
    """The finished runs of `exp` as the index has them, with the `metrics` asked for: what
    load_runs reads from thousands of run.json files, in a few queries (for the dashboard).
    Running runs are left out: no verdict counts them."""
    from assay.journal import ignored_runs
    from assay.store.summary import finished_runs

    reasons = ignored_runs(exp.path)
    out = []
    for run in finished_runs(index, exp.name, metrics):
        path, flagged = Path(run.pop("path")), run.pop("ignored")
        ignored = reasons.get(path.name) or ("ignored" if flagged else None)
        run["params"] = _nest(run["params"])
        out.append(RunView(path, run, ignored))
    out.sort(key=lambda r: (r.record.get("started") or 0, r.path.name))
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """The index keeps params flattened (`optim.lr`); records nest them, and configurations are
    grouped by the record's form."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return flat  # a key both a leaf and a parent: keep the flat form
        node[leaf] = value
    return out


def usable(runs: list[RunView]) -> list[RunView]:
    """Runs that count as evidence: not ignored and finished ok."""
    return [r for r in runs if r.ignored is None and r.status == "ok"]


def group_configs(runs: list[RunView], pool_code: bool = False) -> tuple[list[Config], list[str]]:
    """(configurations in first-seen order, names of what varies between them: params, and
    `entry` / `code` when runs of several entry points or code versions are present).

    A configuration is (entry point, code version, params): runs of other code never pool with it
    unless `pool_code`. One run per seed within a configuration (identity.dedupe_seeds).
    """
    groups: dict[str, Config] = {}
    kept = list(identity.dedupe_seeds(runs, key=lambda r: r.config_key(pool_code), seed=lambda r: r.seed))
    for r in kept:
        key = r.config_key(pool_code)
        if key not in groups:
            entry, code, params = json.loads(key)
            groups[key] = Config(params, entry=entry, code=code,
                                 code_label="pooled" if pool_code else identity.code_label(r.record))
        groups[key].runs.append(r)
    configs = list(groups.values())
    keys = sorted({k for c in configs for k in c.params})
    varying = [k for k in keys if len({json.dumps(c.params.get(k), sort_keys=True, default=str) for c in configs}) > 1]
    varying += [k for k in ("entry", "code") if len({getattr(c, k) for c in configs}) > 1]
    return configs, varying


@dataclass(frozen=True)
class Spread:
    """Mean, standard deviation and a two-sided confidence interval of the mean."""

    n: int
    mean: float
    std: float | None
    lo: float | None
    hi: float | None
    sigma_source: str  # "repeats" (this configuration's seeds), "pooled" (other configurations), "bootstrap"
    #                    (over one run's examples, when seeds show no noise: see verdict.judge), "none"

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "ci": [self.lo, self.hi] if self.lo is not None else None,
                "sigma_source": self.sigma_source}


def t_crit(p: float, df: int) -> float:
    """Student-t quantile (see assay.stats.t_quantile)."""
    from assay.stats import t_quantile

    return t_quantile(p, df)


def spread(values: list[float], confidence: float, pooled: tuple[float | None, int] = (None, 0)) -> Spread:
    """CI of the mean with Student's t; a single run borrows the pooled seed noise of other configurations."""
    n = len(values)
    mean = statistics.fmean(values)
    if n >= 2:
        sd, df, source = statistics.stdev(values), n - 1, "repeats"
    elif pooled[0] is not None and pooled[1] >= 1:
        sd, df, source = pooled[0], pooled[1], "pooled"
    else:
        return Spread(n, mean, None, None, None, "none")
    half = t_crit(1 - (1 - confidence) / 2, df) * sd / math.sqrt(n)
    return Spread(n, mean, sd if n >= 2 else None, mean - half, mean + half, source)


def rel(path: Path, base: Path) -> str:
    """`path` relative to `base` when inside it (how reports and sidecars cite files)."""
    try:
        return str(path.relative_to(base))  # the common case, without touching the disk
    except ValueError:
        pass
    try:  # through symlinks (a lab reached by two paths)
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
