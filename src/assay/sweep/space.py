"""Search spaces: which params a sweep varies, over which values, checked against config.yaml.

Two spellings, one result:

    # sweep.yaml                                 # inline (Hydra-like; `-m` is accepted and ignored)
    params:                                      lr=1e-4,3e-4,1e-3 batch=32,64
      lr: [1e-4, 3e-4, 1e-3]                     lr=choice(1e-4,3e-4) wd=log(1e-5,1e-2)
      wd: {low: 1e-5, high: 1e-2, log: true}     layers=range(2,8) dropout=interval(0,0.5)
      layers: {low: 2, high: 8}                  epochs=3            (one value: fixed, not swept)
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.config import flatten, parse_value
from assay.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Choice:
    """A finite list of values, tried in order by the grid."""

    values: tuple[Any, ...]

    def grid(self) -> tuple[Any, ...]:
        return self.values

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def describe(self) -> str:
        return ",".join(str(v) for v in self.values)


@dataclass(frozen=True)
class Range:
    """A numeric interval [low, high]; `log` samples uniformly in log space; `step` makes it gridable."""

    low: float
    high: float
    log: bool = False
    integer: bool = False
    step: float | None = None

    def grid(self) -> tuple[Any, ...] | None:
        if self.step is None:
            return None
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        vals = [self.low + i * self.step for i in range(n)]
        return tuple(int(round(v)) if self.integer else round(v, 12) for v in vals)

    def sample(self, rng: random.Random) -> Any:
        if self.step is not None:
            return rng.choice(self.grid() or (self.low,))
        if self.log:
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            v = rng.uniform(self.low, self.high)
        return int(round(v)) if self.integer else v

    def describe(self) -> str:
        return f"{'log' if self.log else 'interval'}({self.low},{self.high})" + (f" step {self.step}" if self.step else "")


Dimension = Choice | Range


@dataclass(frozen=True)
class SearchSpace:
    """Swept dimensions plus fixed overrides; `sources` says where each key was written (for errors)."""

    dims: dict[str, Dimension]
    fixed: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination, in the order written (first key slowest), or ConfigError for ranges."""
        axes = []
        for key, dim in self.dims.items():
            values = dim.grid()
            if values is None:
                raise ConfigError(
                    f"Grid search cannot enumerate the continuous range '{key}' ({dim.describe()}, from {self.sources.get(key, '?')})",
                    f"Give '{key}' a list of values or a `step`, or use --sampler random / tpe with --trials N.",
                )
            axes.append([(key, v) for v in values])
        return [dict(combo) for combo in itertools.product(*axes)]

    def size(self) -> int | None:
        """Number of grid points, or None when a dimension is continuous."""
        n = 1
        for dim in self.dims.values():
            g = dim.grid()
            if g is None:
                return None
            n *= len(g)
        return n

    def example(self) -> dict[str, Any]:
        """The first point of the space (first choice, low end): what a preflight smoke run uses."""
        return {k: (d.values[0] if isinstance(d, Choice) else (int(d.low) if d.integer else d.low)) for k, d in self.dims.items()}

    def to_dict(self) -> dict[str, Any]:
        dims: dict[str, Any] = {}
        for k, d in self.dims.items():
            if isinstance(d, Choice):
                dims[k] = {"values": list(d.values)}
            else:
                dims[k] = {"low": d.low, "high": d.high, "log": d.log, "type": "int" if d.integer else "float", "step": d.step}
        return {"params": dims, "fixed": self.fixed}


# ------------------------------------------------------------------ parsing

_FUNC = re.compile(r"^\s*(choice|range|interval|log|tag)\((.*)\)\s*$", re.S)


def _split_args(text: str) -> list[str]:
    """Split on top-level commas: 'a,[1,2],b' -> ['a', '[1,2]', 'b']."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out]


def _number(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"Bound {value!r} of '{key}' ({source}) is not a number", f"Write numeric bounds, e.g. {key}=interval(0.0,0.5).")
    return value


def _make_range(key: str, low: Any, high: Any, source: str, log: bool = False, integer: bool | None = None,
                step: Any = None) -> Range:
    lo, hi = _number(low, key, source), _number(high, key, source)
    if integer is None:
        integer = isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int))
    if not lo < hi:
        raise ConfigError(f"Range of '{key}' ({source}) has low {lo} >= high {hi}", "Write the smaller bound first.")
    if log and lo <= 0:
        raise ConfigError(f"Log range of '{key}' ({source}) needs low > 0, got {lo}", f"Use e.g. {key}=log(1e-5,{hi}).")
    if step is not None and _number(step, key, source) <= 0:
        raise ConfigError(f"Step of '{key}' ({source}) must be positive, got {step}", "Use a positive step or leave it out.")
    return Range(lo, hi, log, integer, step)


def parse_inline_value(key: str, text: str, source: str) -> Dimension | None:
    """'1e-4,3e-4' -> Choice; 'range(1,5)' -> ints 1..4 (Hydra: stop exclusive; a stepped integer Range); 'interval(a,b)' /
    'log(a,b)' / 'tag(log,interval(a,b))' -> Range; a single value -> None (a fixed override)."""
    m = _FUNC.match(text)
    if m:
        fn, args = m.group(1), _split_args(m.group(2))
        if fn == "choice":
            return Choice(tuple(parse_value(a) for a in args))
        if fn == "tag":
            if len(args) != 2 or args[0] != "log":
                raise ConfigError(f"Cannot read '{key}={text}' ({source})", f"Write {key}=tag(log,interval(1e-5,1e-2)).")
            inner = parse_inline_value(key, args[1], source)
            if not isinstance(inner, Range):
                raise ConfigError(f"tag(log, ...) of '{key}' ({source}) needs an interval", f"Write {key}=tag(log,interval(1e-5,1e-2)).")
            return _make_range(key, inner.low, inner.high, source, log=True, integer=inner.integer)
        vals = [parse_value(a) for a in args]
        if fn == "range":
            if not 1 <= len(vals) <= 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                raise ConfigError(f"Cannot read '{key}={text}' ({source}): range() takes 1-3 integers",
                                  f"Write {key}=range(2,8) (8 excluded) or {key}=interval(2,8) for a continuous range.")
            ints = range(*vals)
            if len(ints) >= 2 and ints.step > 0:
                # An integer range with a step, not a list of its values: the grid and random samplers
                # see the same values, while Optuna gets an ordered IntDistribution (a categorical of
                # 100,000 values costs TPE about a second per ask, and ignores that 5 lies between 4 and 6).
                return Range(ints[0], ints[-1], integer=True, step=ints.step)
            return Choice(tuple(ints))
        if len(vals) != 2:
            raise ConfigError(f"Cannot read '{key}={text}' ({source}): {fn}() takes two bounds", f"Write {key}={fn}(low,high).")
        return _make_range(key, vals[0], vals[1], source, log=fn == "log", integer=False if fn != "log" else None)
    parts = _split_args(text)
    if len(parts) == 1:
        return None
    return Choice(tuple(parse_value(p) for p in parts))


_EXP_FLOAT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")


def _fix_yaml(v: Any) -> Any:
    """YAML 1.1 reads 1e-3 as a string (it wants 1.0e-3); practitioners mean a float."""
    return float(v) if isinstance(v, str) and _EXP_FLOAT.fullmatch(v) else v


def _dim_from_yaml(key: str, spec: Any, source: str) -> Dimension | None:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"'{key}' has an empty list of values ({source})", f"List at least one value for '{key}'.")
        return Choice(tuple(_fix_yaml(v) for v in spec))
    if isinstance(spec, dict):
        spec = {k: _fix_yaml(v) for k, v in spec.items()}
        if "values" in spec:
            return Choice(tuple(_fix_yaml(v) for v in spec["values"]))
        unknown = set(spec) - {"low", "high", "log", "type", "step"}
        if unknown or "low" not in spec or "high" not in spec:
            raise ConfigError(
                f"Cannot read the range of '{key}' ({source}): {spec}",
                f"Write {key}: {{low: 1e-5, high: 1e-2, log: true}} (type: int|float, step optional) or a list of values.",
            )
        typ = spec.get("type")
        if typ not in (None, "int", "float"):
            raise ConfigError(f"Type '{typ}' of '{key}' ({source}) must be int or float", f"Write type: int or type: float for '{key}'.")
        return _make_range(key, spec["low"], spec["high"], source, bool(spec.get("log", False)),
                           None if typ is None else typ == "int", spec.get("step"))
    if isinstance(spec, str) and not _EXP_FLOAT.fullmatch(spec):
        return parse_inline_value(key, spec, source)
    return None  # a scalar: fixed


def _line_of(text: str, key: str) -> int | None:
    leaf = key.split(".")[-1].lstrip("+")
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"^\s*['\"]?\+?{re.escape(leaf)}['\"]?\s*:", line):
            return i
    return None


def space_from_mapping(params: dict[str, Any], fixed: dict[str, Any] | None = None, file: Path | None = None,
                       text: str = "") -> SearchSpace:
    """Build a space from sweep.yaml's `params:` (nested mappings allowed for dotted keys)."""
    dims: dict[str, Dimension] = {}
    fixed_out = {k: _fix_yaml(v) for k, v in flatten(fixed or {}).items()}
    sources: dict[str, str] = {}
    for key, spec in _flatten_params(params).items():
        line = _line_of(text, key) if text else None
        source = f"{file}:{line}" if file and line else str(file or "sweep file")
        sources[key] = source
        dim = _dim_from_yaml(key, spec, source)
        if dim is None:
            fixed_out[key] = _fix_yaml(spec)
        else:
            dims[key] = dim
    return SearchSpace(dims, fixed_out, sources)


def _flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Like config.flatten, but a mapping that is itself a range spec ({low, high} / {values}) is a leaf."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not ({"low", "high", "values"} & set(v)):
            out.update(_flatten_params(v, key + "."))
        else:
            out[key] = v
    return out


def space_from_args(items: list[str]) -> SearchSpace:
    """Build a space from inline `key=v1,v2` items (`-m` / `--multirun` tokens are skipped)."""
    dims: dict[str, Dimension] = {}
    fixed: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for item in items:
        if item in ("-m", "--multirun"):
            continue
        key, sep, text = item.partition("=")
        if not sep or not re.fullmatch(r"\+?[A-Za-z_][\w\-]*(\.[A-Za-z_][\w\-]*)*", key):
            raise ConfigError(f"Cannot read sweep argument '{item}' from the command line: expected key=v1,v2,...",
                              "Write e.g. lr=1e-4,3e-4,1e-3 batch=32,64, or pass a sweep.yaml file.")
        sources[key] = f"command line '{item}'"
        dim = parse_inline_value(key, text, sources[key])
        if dim is None:
            fixed[key] = parse_value(text)
        else:
            dims[key] = dim
    return SearchSpace(dims, fixed, sources)


def validate_space(space: SearchSpace, defaults: dict[str, Any], config_source: str) -> None:
    """Every swept or fixed key must exist in config.yaml (a '+key' adds one deliberately)."""
    known = set(flatten(defaults))
    for key in [*space.dims, *space.fixed]:
        if key.startswith("+") or key in known or any(k.startswith(key + ".") for k in known):
            continue
        where = space.sources.get(key, "the sweep")
        raise ConfigError(
            f"Unknown parameter '{key}' in {where} (not in {config_source}; known: {', '.join(sorted(known)) or 'none'})."
            + did_you_mean(key, known),
            f"Fix the name, add '{key}' to {config_source}, or write +{key} to add it for this sweep only.",
        )
    if not space.dims:
        raise ConfigError("The sweep varies no parameter", "Give at least one key several values, e.g. lr=1e-4,3e-4,1e-3.")


def to_overrides(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split a point into extra_params (known keys) and '+key=value' overrides (new keys)."""
    import json

    extra: dict[str, Any] = {}
    adds: list[str] = []
    for k, v in params.items():
        if k.startswith("+"):
            adds.append(f"{k}={v if isinstance(v, str) else json.dumps(v)}")
        else:
            extra[k] = v
    return extra, adds
