"""The cost ledger: what each run used, what a sweep or loop has spent, limits and approval.

Every run records `cost` in its run.json:

    {"cpu_hours": 0.012, "gpu_hours": 0.5, "gpu_count": 2, "money": 1.25, "currency": "USD"}

- cpu_hours: user + system CPU time of the run's process tree (the script, the children it waited
  for, and any descendant seen while it ran), in hours.
- gpu_hours: wall-clock hours x GPUs given to the run (the devices its CUDA_VISIBLE_DEVICES names;
  when unset, the devices its processes were seen on); 0 without GPUs.
- money: gpu_hours x `cost_per_gpu_hour` + cpu_hours x `cost_per_cpu_hour` from the [lab] table of
  assay.toml, in `currency` (default USD); null when no price is set.

A limit (`--max-cost`, `approve_above`) is an amount in one unit: `$20` or `20USD` (money, needs a
price), `10gpu-h`, `5cpu-h`; a bare number is money when a price is set, else GPU-hours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import ConfigError

if TYPE_CHECKING:
    from assay.experiment import Experiment
    from assay.lab import Lab

MONEY, GPU_H, CPU_H = "money", "gpu-h", "cpu-h"
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}


@dataclass(frozen=True)
class Prices:
    """What an hour costs. `run_hour` prices a run's wall-clock hour whatever it used (the loop's
    --cost-per-hour); the lab's assay.toml sets the others."""

    gpu_hour: float | None = None
    cpu_hour: float | None = None
    currency: str = "USD"
    run_hour: float | None = None

    @property
    def priced(self) -> bool:
        return any(p is not None for p in (self.gpu_hour, self.cpu_hour, self.run_hour))

    def money(self, cpu_hours: float, gpu_hours: float, wall_hours: float = 0.0) -> float | None:
        if not self.priced:
            return None
        return (gpu_hours * (self.gpu_hour or 0.0) + cpu_hours * (self.cpu_hour or 0.0)
                + wall_hours * (self.run_hour or 0.0))


def lab_prices(lab: Lab) -> Prices:
    """The prices in the lab's assay.toml ([lab] cost_per_gpu_hour, cost_per_cpu_hour, currency).

    Raises:
        ConfigError: a price that is not a non-negative number.
    """
    s = lab.settings
    currency = s.get("currency", "USD")
    if not isinstance(currency, str) or not currency.strip():
        raise ConfigError(f"currency = {currency!r} in {lab.root / 'assay.toml'} must be a currency code",
                          'Set currency = "USD" under [lab].')
    return Prices(_price(lab, "cost_per_gpu_hour"), _price(lab, "cost_per_cpu_hour"), currency.strip())


def _price(lab: Lab, key: str) -> float | None:
    v = lab.settings.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ConfigError(f"{key} = {v!r} in {lab.root / 'assay.toml'} must be a non-negative number",
                          f"Set it under [lab], e.g. {key} = 2.5")
    return float(v)


def visible_gpus(env: Mapping[str, str]) -> int | None:
    """How many GPUs CUDA_VISIBLE_DEVICES in `env` names (CUDA stops at the first invalid entry,
    e.g. -1); None when it is unset (the process may see every GPU)."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    n = 0
    for part in value.split(","):
        part = part.strip()
        if not part or part.startswith("-"):
            break
        n += 1
    return n


def run_cost(*, duration: float, cpu_seconds: float | None, gpus: int | None, prices: Prices) -> dict[str, Any]:
    """The `cost` of a run.json."""
    cpu_h = (cpu_seconds or 0.0) / 3600
    gpu_count = gpus or 0
    gpu_h = max(0.0, duration) / 3600 * gpu_count
    money = prices.money(cpu_h, gpu_h)
    return {"cpu_hours": round(cpu_h, 9), "gpu_hours": round(gpu_h, 9), "gpu_count": gpu_count,
            "money": None if money is None else round(money, 9), "currency": prices.currency if money is not None else None}


@dataclass(frozen=True)
class Spend:
    """What a set of runs used, summed."""

    runs: int = 0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    wall_hours: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.runs + other.runs, self.cpu_hours + other.cpu_hours, self.gpu_hours + other.gpu_hours,
                     self.wall_hours + other.wall_hours)

    def scaled(self, k: float) -> Spend:
        return Spend(round(self.runs * k), self.cpu_hours * k, self.gpu_hours * k, self.wall_hours * k)

    def amount(self, unit: str, prices: Prices) -> float:
        if unit == GPU_H:
            return self.gpu_hours
        if unit == CPU_H:
            return self.cpu_hours
        return prices.money(self.cpu_hours, self.gpu_hours, self.wall_hours) or 0.0

    def to_dict(self, prices: Prices) -> dict[str, Any]:
        """The `cost` totals of `assay sweep --json` and sweep.json."""
        money = prices.money(self.cpu_hours, self.gpu_hours, self.wall_hours)
        return {"runs": self.runs, "cpu_hours": round(self.cpu_hours, 6), "gpu_hours": round(self.gpu_hours, 6),
                "money": None if money is None else round(money, 6), "currency": prices.currency if money is not None else None}


def spend_of(record: Mapping[str, Any]) -> Spend:
    """One run's use, from its record (a run recorded before the ledger counts its wall time only)."""
    raw = record.get("cost")
    cost: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    duration = record.get("duration")
    wall = float(duration) / 3600 if isinstance(duration, (int, float)) and not isinstance(duration, bool) else 0.0
    return Spend(1, _num(cost.get("cpu_hours")), _num(cost.get("gpu_hours")), wall)


def total(records: Iterable[Mapping[str, Any]]) -> Spend:
    out = Spend()
    for r in records:
        out = out + spend_of(r)
    return out


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0.0


@dataclass(frozen=True)
class Limit:
    """An amount of one unit: money (in the prices' currency), GPU-hours or CPU-hours."""

    amount: float
    unit: str
    text: str = ""

    def describe(self, prices: Prices) -> str:
        return format_amount(self.amount, self.unit, prices)


def format_amount(amount: float, unit: str, prices: Prices) -> str:
    if unit == MONEY:
        return f"{amount:.2f} {prices.currency}"
    return f"{amount:.3g} {unit}"


_LIMIT = re.compile(r"^\s*(?P<pre>[$€£])?\s*(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)\s*(?P<unit>[A-Za-z_\- ]*)\s*$")


def parse_limit(text: str | float | int, prices: Prices, source: str = "--max-cost") -> Limit:
    """`$20`, `20USD`, `10gpu-h`, `5cpu-h`, or a bare number (money when priced, else GPU-hours).

    Raises:
        ConfigError: unreadable, negative, or money without a price in assay.toml.
    """
    raw = str(text)
    m = _LIMIT.match(raw)
    unit_text = (m.group("unit") if m else "").strip().lower().replace("_", "-").replace(" ", "")
    units = {"gpu-h": GPU_H, "gpuh": GPU_H, "gpu-hours": GPU_H, "gpu-hour": GPU_H,
             "cpu-h": CPU_H, "cpuh": CPU_H, "cpu-hours": CPU_H, "cpu-hour": CPU_H}
    if m is None or (unit_text and unit_text not in units and unit_text != prices.currency.lower()):
        raise ConfigError(f"Cannot read the cost {raw!r} ({source})",
                          "Write an amount with its unit: '$20', '20USD', '10gpu-h' or '5cpu-h'.")
    amount = float(m.group("num"))
    if m.group("pre") or unit_text == prices.currency.lower():
        unit = MONEY
    elif unit_text:
        unit = units[unit_text]
    else:
        unit = MONEY if prices.priced else GPU_H
    if unit == MONEY and not prices.priced:
        raise ConfigError(f"The cost {raw!r} ({source}) is money, but assay.toml sets no price",
                          "Set cost_per_gpu_hour = 2.5 (and cost_per_cpu_hour) under [lab] in assay.toml, "
                          "or give the limit in hours: '10gpu-h' or '5cpu-h'.")
    return Limit(amount, unit, raw)


def priced_limit(lab: Lab, max_cost: str | float | None, run_hour: float | None = None) -> tuple[Prices, Limit | None]:
    """The lab's prices (plus `run_hour`, a price per hour of a run's wall time) and `max_cost` parsed
    against them (None: no limit).

    Raises:
        ConfigError: a bad price in assay.toml or an unreadable limit.
    """
    import dataclasses

    prices = lab_prices(lab)
    if run_hour is not None:
        prices = dataclasses.replace(prices, run_hour=run_hour)
    return prices, parse_limit(max_cost, prices) if max_cost is not None else None


def would_exceed(limit: Limit, spent: Spend, each: Spend | None, in_flight: int, prices: Prices) -> bool:
    """Whether starting one more run could take the ledger past `limit`: what is spent, plus the
    expected use of the runs in flight and of the new one (`each`: a run's expected use, None when
    nothing is known yet: then only what is spent counts)."""
    used = spent.amount(limit.unit, prices)
    if used >= limit.amount:
        return True
    if each is None:
        return False
    return used + each.amount(limit.unit, prices) * (in_flight + 1) > limit.amount


def mean_run(spends: list[Spend]) -> Spend | None:
    """The mean use of one run, None without runs."""
    if not spends:
        return None
    s = Spend()
    for x in spends:
        s = s + x
    return s.scaled(1 / s.runs) if s.runs else None


# ------------------------------------------------------------------ estimates and approval


@dataclass(frozen=True)
class Estimate:
    """The expected use of `runs` runs of about `run_hours` each, `gpus` GPUs per run; `basis`
    says where the run time came from."""

    runs: int
    run_hours: float
    gpus: int
    cpu_per_hour: float  # CPU-hours per wall-hour of a run (cores busy), from earlier runs; 1 when unknown
    basis: str

    @property
    def spend(self) -> Spend:
        wall = self.run_hours * self.runs
        return Spend(self.runs, wall * self.cpu_per_hour, wall * self.gpus, wall)

    @property
    def each(self) -> Spend:
        return Spend(1, self.run_hours * self.cpu_per_hour, self.run_hours * self.gpus, self.run_hours)


def estimate(lab: Lab, exp: Experiment, runs: int, gpus: int, recent: int = 10) -> Estimate | None:
    """The expected use of `runs` runs of `exp` with `gpus` GPUs each.

    A run's time is the experiment's latest ok smoke run scaled to the full step count (start-up +
    time per step x steps) when `smoke:` names the step param, else the mean duration of its
    `recent` latest ok runs (smoke runs left out); None when neither exists.
    """
    from assay.config import flatten

    with lab.index() as index:
        rows = index.db.execute(
            "SELECT r.path, r.duration, r.cpu_hours, EXISTS (SELECT 1 FROM tags t WHERE t.run_id=r.id AND t.key='smoke' "
            "AND t.value='true') FROM runs r WHERE r.experiment=? AND r.status='ok' AND r.ignored=0 AND r.duration>0 "
            "ORDER BY r.started DESC LIMIT 200", (exp.name,)).fetchall()
    full = [(d, c) for _, d, c, smoke in rows if not smoke][:recent]
    busy = [c * 3600 / d for d, c in full if c is not None and d]
    cpu_per_hour = sum(busy) / len(busy) if busy else 1.0
    smoke_path = next((p for p, _, _, smoke in rows if smoke), None)
    if smoke_path is not None:
        hours = _from_smoke(smoke_path, flatten(exp.default_params()))
        if hours is not None:
            return Estimate(runs, hours, gpus, cpu_per_hour, "the latest smoke run's throughput")
    if full:
        mean = sum(d for d, _ in full) / len(full) / 3600
        return Estimate(runs, mean, gpus, cpu_per_hour, f"the mean duration of the {len(full)} latest ok run(s)")
    return None


def _from_smoke(path: str, defaults: dict[str, Any]) -> float | None:
    from pathlib import Path

    from assay.errors import StoreError
    from assay.store.records import read_record

    try:
        m = read_record(Path(path)).get("smoke") or {}
    except StoreError:
        return None
    per_step, key = m.get("seconds_per_step"), m.get("steps_key")
    steps = defaults.get(key) if key else None
    if not isinstance(per_step, (int, float)) or not isinstance(steps, (int, float)) or isinstance(steps, bool):
        return None
    return (float(m.get("startup_seconds") or 0.0) + per_step * float(steps)) / 3600


def approve(lab: Lab, est: Estimate | None, *, what: str, yes: bool, ask: Callable[[str], bool] | None,
            rerun: str) -> str | None:
    """The approval gate: when the lab sets `approve_above` and `est` exceeds it (or no estimate is
    possible), go on only with `yes` or a yes from `ask` (the terminal's prompt; None without a
    TTY). Returns a line saying what was approved (None when no approval was needed).

    Raises:
        ConfigError: not approved (exit 2); the message holds the estimate and the flag to pass.
    """
    threshold = lab.settings.get("approve_above")
    if threshold is None:
        return None
    prices = lab_prices(lab)
    limit = parse_limit(threshold, prices, f"approve_above in {lab.root / 'assay.toml'}")
    if est is None:
        line = (f"{what}: no cost estimate is possible (no smoke run and no ok run of this experiment yet), "
                f"and assay.toml sets approve_above = {threshold!r}")
    else:
        amount = est.spend.amount(limit.unit, prices)
        if amount <= limit.amount:
            return None
        line = (f"{what} is estimated at {format_amount(amount, limit.unit, prices)} ({est.runs} run(s) of "
                f"~{est.run_hours * 60:.1f} min, {est.gpus} GPU(s) each, from {est.basis}), above approve_above = "
                f"{limit.describe(prices)}")
    if yes:
        return f"{line}: approved by --yes"
    if est is not None and ask is not None:
        if ask(f"{line}. Proceed?"):
            return f"{line}: approved"
        raise ConfigError(f"{line}: not approved, nothing was run", f"Approve it with --yes: {rerun} --yes")
    raise ConfigError(f"{line}; pass --yes to approve it", f"{rerun} --yes")
