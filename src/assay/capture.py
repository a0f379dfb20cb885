"""Metrics from a script's output, without code changes.

Built-in parsers (each a `MetricParser`):
- ``colon``:  ``val_bpb: 0.9979`` on a line of its own (karpathy/autoresearch's summary block)
- ``equals``: ``step=10 loss=0.32 lr=3e-4`` pairs anywhere in a line
- ``json``:   loguru-style ``... metric {"loss": 0.3, "step": 10}``
An experiment picks parsers and adds regexes under ``capture:`` in experiment.yaml::

    capture:
      formats: [colon, equals, json]          # default: all three
      patterns: ['val acc (?P<val_acc>[\\d.]+)', '(?P<name>\\w+) -> (?P<value>\\S+)']
      ignore: ['^Namespace\\(']               # lines never parsed
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Protocol

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf|-inf|-Inf|infinity)"
_NAME = r"[A-Za-z_][\w./\-]*"
_COLON = re.compile(rf"^\s*({_NAME})\s*:\s*({_NUM})\s*$")
_PAIR = re.compile(rf"(?<![\w./\-])({_NAME})=({_NUM})(?=[\s,;)\]]|$)")
_JSON = re.compile(r"\bmetrics?\s+(\{.*\})\s*$")
STEP_KEYS = ("step", "epoch", "iter", "iteration", "global_step")


def to_float(text: str) -> float:
    return float(text.lower().replace("infinity", "inf"))


class MetricParser(Protocol):
    """Turns one line of a script's output into metrics.

    Called by the runner's output reader for every line (after splitting on \\n and \\r), in order.
    Returns {name: value} (possibly with a step key such as 'step' or 'epoch'); {} when the line
    holds none. Must not raise on any input.
    """

    def parse(self, line: str) -> dict[str, float]: ...


class ColonParser:
    def parse(self, line: str) -> dict[str, float]:
        m = _COLON.match(line)
        return {m.group(1): to_float(m.group(2))} if m else {}


class EqualsParser:
    def parse(self, line: str) -> dict[str, float]:
        if "=" not in line:
            return {}
        return {k: to_float(v) for k, v in _PAIR.findall(line)}


class JsonParser:
    def parse(self, line: str) -> dict[str, float]:
        if "metric" not in line:
            return {}
        m = _JSON.search(line)
        if not m:
            return {}
        try:
            data = json.loads(m.group(1))
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class RegexParser:
    """A user pattern: named groups `name` + `value`, or one group per metric name."""

    def __init__(self, pattern: str) -> None:
        self.regex = re.compile(pattern)

    def parse(self, line: str) -> dict[str, float]:
        m = self.regex.search(line)
        if not m:
            return {}
        groups = m.groupdict()
        try:
            if "name" in groups and "value" in groups:
                return {groups["name"]: to_float(groups["value"])}
            return {k: to_float(v) for k, v in groups.items() if v is not None}
        except ValueError:
            return {}


PARSERS: dict[str, type] = {"colon": ColonParser, "equals": EqualsParser, "json": JsonParser}


class Capture:
    """Applies an experiment's parsers to output lines and numbers the steps of each metric."""

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        from assay.errors import ConfigError, did_you_mean

        spec = spec or {}
        formats = spec.get("formats", list(PARSERS))
        self.parsers: list[MetricParser] = []
        for name in formats:
            if name not in PARSERS:
                raise ConfigError(
                    f"Unknown capture format '{name}' in experiment.yaml (known: {', '.join(PARSERS)})."
                    + did_you_mean(name, PARSERS),
                    "Fix `capture.formats` in experiment.yaml.",
                )
            self.parsers.append(PARSERS[name]())
        try:
            self.parsers += [RegexParser(p) for p in spec.get("patterns", [])]
            self.ignore = [re.compile(p) for p in spec.get("ignore", [])]
        except re.error as exc:
            raise ConfigError(f"Bad regex in experiment.yaml capture: {exc}", "Fix `capture.patterns`/`capture.ignore`.") from None
        self.counts: dict[str, int] = {}

    def parse(self, line: str) -> tuple[int | None, dict[str, float]]:
        """Metrics on one line and their step: explicit (step=/epoch=) or the metric's occurrence count."""
        if not line or any(r.search(line) for r in self.ignore):
            return None, {}
        found: dict[str, float] = {}
        for parser in self.parsers:
            found.update(parser.parse(line))
        if not found:
            return None, {}
        step = None
        for key in STEP_KEYS:
            if key in found and math.isfinite(found[key]):
                step = int(found.pop(key))
                break
        if not found:
            return None, {}
        if step is None:
            step = max(self.counts.get(k, 0) for k in found)
        for k in found:
            self.counts[k] = step + 1
        return step, found
