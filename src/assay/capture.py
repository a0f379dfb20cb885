"""Metrics from a script's output, without code changes.

Formats (each a `MetricParser`) read generic `name: value` style lines and keep names as printed:
- ``colon``:  ``val_bpb: 0.9979`` on a line of its own (karpathy/autoresearch's summary block)
- ``equals``: ``step=10 loss=0.32 lr=3e-4`` pairs anywhere in a line (never inside ``SVC(C=10)``)
- ``json``:   loguru-style ``... metric {"loss": 0.3, "step": 10}``

Presets (each a `Preset`) read what common libraries already print, with names normalised by
`metric_name` (``val loss`` -> ``val_loss``): keras, transformers, lightning, nanogpt, xgboost,
lightgbm, sklearn, prose. A line a preset recognises is read by that preset alone.
An experiment picks them and adds regexes under ``capture:`` in experiment.yaml::

    capture:
      presets: [keras, sklearn]               # default: all; [] turns them off
      formats: [colon, equals, json]          # default: all three
      patterns: ['val acc (?P<val_acc>[\\d.]+)', '(?P<name>\\w+) -> (?P<value>\\S+)']
      ignore: ['^DEBUG']                      # lines never parsed
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable
from typing import Any, Protocol

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf|-inf|-Inf|infinity)"
_NAME = r"[A-Za-z_][\w./\-]*"
_COLON = re.compile(rf"^\s*({_NAME})\s*:\s*({_NUM})\s*$")
_PAIR = re.compile(rf"(?<![\w./\-])({_NAME})=({_NUM})(?=[\s,;)\]]|$)")
_JSON = re.compile(r"\bmetrics?\s+(\{.*\})\s*$")
_CALL = re.compile(r"[A-Za-z_][\w.]*\(")  # `SVC(`, `Namespace(`: what follows are arguments
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STEP_KEYS = ("step", "epoch", "iter", "iteration", "global_step")
SPEC_KEYS = ("presets", "formats", "patterns", "ignore")


def to_float(text: str) -> float:
    return float(text.lower().replace("infinity", "inf"))


@functools.lru_cache(maxsize=4096)  # the same few names come back on every line
def metric_name(text: str) -> str:
    """The one spelling every preset gives a name: lower case, spaces and dashes as `_`.

    >>> metric_name("Test accuracy"), metric_name("validation_0-logloss")
    ('test_accuracy', 'validation_0_logloss')
    """
    return re.sub(r"[\s\-]+", "_", text.strip().lower()).strip("_")


class MetricParser(Protocol):
    """Turns one line of a script's output into metrics.

    Called by the runner's output reader for every line (after splitting on \\n and \\r), in order.
    Returns {name: value} (possibly with a step key such as 'step' or 'epoch'); {} when the line
    holds none. Must not raise on any input.
    """

    def parse(self, line: str) -> dict[str, float]: ...


class Preset(Protocol):
    """Reads one library's output format. Called by `Capture` for every line, in order (a preset
    may keep state across lines, e.g. the epoch of a `Epoch 3/10` header).

    Returns None when the line is not in its format (other presets and the formats then read it),
    else (step or None, {normalised name: value}): an empty dict claims the line without metrics
    (a progress update, a library's info line). Must not raise on any input.
    """

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None: ...


class ColonParser:
    def parse(self, line: str) -> dict[str, float]:
        m = _COLON.match(line)
        return {m.group(1): to_float(m.group(2))} if m else {}


def _call_spans(line: str) -> list[tuple[int, int]]:
    """Spans of `Identifier(...)` in a line (to its end when unclosed): a constructor's or
    config's repr, whose `key=value` pairs are arguments, not metrics."""
    spans: list[tuple[int, int]] = []
    for m in _CALL.finditer(line):
        if spans and m.start() < spans[-1][1]:
            continue
        depth, end = 0, len(line)
        for i in range(m.end() - 1, len(line)):
            ch = line[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        spans.append((m.start(), end))
    return spans


class EqualsParser:
    def parse(self, line: str) -> dict[str, float]:
        if "=" not in line:
            return {}
        if "(" not in line:
            return {k: to_float(v) for k, v in _PAIR.findall(line)}
        spans = _call_spans(line)
        return {m.group(1): to_float(m.group(2)) for m in _PAIR.finditer(line)
                if not any(a <= m.start() < b for a, b in spans)}


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


def _num(text: str) -> float | None:
    try:
        return to_float(text)
    except ValueError:
        return None


# -- presets -------------------------------------------------------------------------------------

_KERAS_EPOCH = re.compile(r"^Epoch (\d+)/\d+\s*$")
_KERAS_BAR = re.compile(r"^[\s\x08]*(\d+)/(\d+) (?:\[[=>.]*\]|[━─]+|-)")
_KERAS_PAIR = re.compile(rf" - ([A-Za-z_][\w./]*): ({_NUM})(?= |$)")


class KerasPreset:
    """`model.fit` progress lines, Keras 2 and 3, verbose 1 or 2; the epoch from `Epoch 3/10`.

    Only an epoch's last line (`1875/1875 ...`) counts: the ones before hold running averages.
    Keras 3 draws that line before validation and again with the `val_` metrics: the redraw adds
    only those."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.last: tuple[int | None, dict[str, float]] | None = None  # the epoch's last line read so far

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if line.startswith("Epoch "):
            m = _KERAS_EPOCH.match(line)
            if m:
                self.epoch = int(m.group(1))
                return None, {}
            return None
        if "/" not in line or " - " not in line:
            return None
        m = _KERAS_BAR.match(line)
        if not m:
            return None
        if m.group(1) != m.group(2):
            return None, {}
        found = {metric_name(k): to_float(v) for k, v in _KERAS_PAIR.findall(line, m.end() - 1)}
        last, self.last = self.last, (self.epoch, found)
        if last and last[0] == self.epoch and last[1].keys() < found.keys() and all(found[k] == v for k, v in last[1].items()):
            return self.epoch, {k: v for k, v in found.items() if k not in last[1]}
        return self.epoch, found


_HF_ENTRY = rf"'[^'\\]+': (?:{_NUM}|'{_NUM}')"  # newer versions print values as strings: '0.5123'
_HF_DICT = re.compile(rf"^\s*\{{{_HF_ENTRY}(?:, {_HF_ENTRY})*\}}\s*$")
_HF_ITEM = re.compile(rf"'([^'\\]+)': '?({_NUM})'?")
_METRIC_WORDS = frozenset(
    "loss acc accuracy f1 precision recall auc roc bleu rouge rouge1 rouge2 rougel rougelsum perplexity ppl mse mae "
    "rmse wer cer runtime exact em matthews mcc pearson spearmanr spearman correlation score map mrr ndcg "
    "grad_norm".split()
)


def _looks_like_metrics(keys: Iterable[str]) -> bool:
    """A Trainer log or a metrics dict (a key `epoch`, or a key with a metric word such as
    `eval_f1`), not a printed params dict like {'lr': 0.1, 'batch_size': 32}."""
    for key in keys:
        if key == "epoch" or key == "grad_norm":
            return True
        if any(word in _METRIC_WORDS for word in re.split(r"[_/\-.]", key.lower())):
            return True
    return False


class TransformersPreset:
    """Hugging Face Trainer log lines: `{'loss': 0.5, 'learning_rate': 4e-05, 'epoch': 0.5}`.

    The step is the Trainer's logging point, counted from 1: each new `epoch` value starts one, and
    an eval log shares the point of the train log at the same epoch. A Trainer that logs once an
    epoch thus gets the epoch as its step; one that logs every few steps gets steps in order (its
    global step over `logging_steps`), where taking whole epochs as steps and counting the
    fractional ones in between would give one step two values. `epoch` is kept as a metric
    unless it equals the step."""

    def __init__(self) -> None:
        self.epoch: float | None = None
        self.point = 0

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if "{'" not in line:
            return None
        m = _HF_DICT.match(line)
        if not m:
            return None
        found = {metric_name(k): to_float(v) for k, v in _HF_ITEM.findall(line)}
        if not _looks_like_metrics(found):
            return None
        if "epoch" not in found:
            return None, found
        if found["epoch"] != self.epoch:
            self.epoch, self.point = found["epoch"], self.point + 1
        if found["epoch"] == self.point:
            del found["epoch"]
        return self.point, found


# No `$`: a bar's line has no newline until the bar closes, so what the script logs meanwhile on the other
# stream (`Trainer.fit stopped: ...`) lands after the `]` on the same line.
_TQDM = re.compile(r"^(?P<desc>[^|]*?):?\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+|\?)\s*\[(?P<info>[^\]]*)\]")
_LIGHTNING_EPOCH = re.compile(r"^Epoch (\d+)\b")
# Lightning's RichProgressBar (its default where rich is installed): `Epoch 1/4 ━━━━ 4/4 0:00:00 • 0:00:00 462.38it/s
# val_loss: 0.310 train_loss: 0.808`, its metrics wrapped onto the next lines when the console is narrow.
_RICH_BAR = re.compile(r"^Epoch (\d+)(?:/\d+)?\s.*?\s(\d+)/(\d+|\?) [\d:\-]+ • [\d:\-]+(?:\s+[\d.]+(?:it/s|s/it))?(.*)$")
_RICH_PAIR = re.compile(rf"([A-Za-z_][\w./\-]*): ({_NUM})(?=\s|$)")
_RICH_PAIRS = re.compile(rf"^\s*(?:[A-Za-z_][\w./\-]*: {_NUM}\s+)*[A-Za-z_][\w./\-]*: {_NUM}\s*$")
_RICH_SUMMARY = re.compile(r"^(?:Trainable params|Non-trainable params|Total params|Total estimated model params size \(MB\)"
                           r"|Modules in (?:train|eval) mode|Total FLOPs): ")  # RichModelSummary: the model's size, not results
_TABLE_HEAD = re.compile(r"^[\s│┃|]*(?:Test|Validate|Predict) metric\s")
_TABLE_ROW = re.compile(rf"^[\s│┃|]*([A-Za-z_][\w./\-]*)[\s│┃|]+({_NUM})[\s│┃|]*$")


class LightningPreset:
    """PyTorch Lightning's progress bar, tqdm (`Epoch 3: 100%|...| 938/938 [..., val_loss=0.3, train_loss=0.25]`)
    or rich (`Epoch 3/9 ━━━━ 938/938 0:00:12 • 0:00:00 75.10it/s val_loss: 0.300 train_loss: 0.250`),
    and its `Test metric` table. A bar counts when full. A value is taken when it changes: an
    epoch's bar first shows the values of the epoch before until validation and the epoch's end
    update them, so a value redrawn unchanged is not repeated, within an epoch or across one.
    Under a pipe, rich prints only the last epoch's bar, when training ends."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.in_table = False
        self.rich_epoch: int | None = None  # the epoch of a rich bar whose metrics may wrap onto the next lines

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if self.in_table:
            row = _TABLE_ROW.match(line)
            if row:
                return None, {metric_name(row.group(1)): to_float(row.group(2))}
            if line.strip(" ─━-═│┃|┏┓┗┛┡┩└┘┌┐╇╈┳┻╋┼"):
                self.in_table = False
                return None
            return None, {}
        if self.rich_epoch is not None:
            if ": " in line and _RICH_PAIRS.match(line):
                return self.rich_epoch, self._changed(_RICH_PAIR.findall(line))
            self.rich_epoch = None
        if "metric" in line and _TABLE_HEAD.match(line):
            self.in_table = True
            return None, {}
        if ("params" in line or " mode: " in line or "FLOPs" in line) and _RICH_SUMMARY.match(line):
            return None, {}
        if "%|" not in line:
            return self._rich(line) if line.startswith("Epoch ") and " • " in line else None
        m = _TQDM.match(line)
        if not m:
            return None
        epoch = _LIGHTNING_EPOCH.match(m.group("desc").strip())
        if not epoch:
            return None if m.group("desc").strip() == "" else (None, {})  # a bare tqdm bar is the script's own
        if m.group("n") != m.group("total"):
            return None, {}
        pairs = [part.partition("=")[::2] for part in m.group("info").split(", ")[1:]]
        return int(epoch.group(1)), self._changed(pairs)

    def _rich(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        m = _RICH_BAR.match(line.rstrip())
        if not m:
            return None
        if m.group(2) != m.group(3):
            return None, {}
        self.rich_epoch = int(m.group(1))
        return self.rich_epoch, self._changed(_RICH_PAIR.findall(m.group(4)))

    def _changed(self, pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
        found: dict[str, float] = {}
        for key, value in pairs:
            num = _num(value) if key and key != "v_num" else None
            if num is not None and self.sent.get(key) != num:
                found[metric_name(key)] = self.sent[key] = num
        return found


_PROGRESS = re.compile(r"^(step|iter|iteration) (\d+): (.+)$")
_PROGRESS_ITEM = re.compile(rf"^([A-Za-z][A-Za-z_ ]*?) ({_NUM})(ms|s|%)?$")


class NanoGPTPreset:
    """nanoGPT's `step 250: train loss 1.9234, val loss 2.0123` and `iter 10: loss 3.1234, time
    35.21ms, mfu 12.34%` (time in ms as `time_ms`; mfu in percent, skipped while nanoGPT prints
    its not-yet-measured -100.00%). Its `tokens per iteration will be: 480` is the configured batch, not a result."""

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if not line.startswith(("step ", "iter", "tokens per iteration will be: ")):
            return None
        if line[0] == "t":
            return None, {}
        m = _PROGRESS.match(line.rstrip())
        if not m:
            return None
        found: dict[str, float] = {}
        for item in m.group(3).split(", "):
            part = _PROGRESS_ITEM.match(item.strip())
            if not part:
                return None
            name, value = metric_name(part.group(1)), to_float(part.group(2))
            if part.group(3) in ("ms", "s"):
                name += "_" + part.group(3)
            if name == "mfu" and value < 0:
                continue
            found[name] = value
        return int(m.group(2)), found


_ROUND = re.compile(r"^\[(\d+)\]\t(.+)$")
_XGB_ITEM = re.compile(rf"^([A-Za-z_][\w.\-@]*):({_NUM})(?:\+({_NUM}))?$")


class XGBoostPreset:
    """XGBoost's evaluation lines: `[10]\\tvalidation_0-logloss:0.25\\tvalidation_1-logloss:0.28`
    (`xgb.cv`'s `mean+std` gives `<name>` and `<name>_std`)."""

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if not line.startswith("[") or not line[1:2].isdigit():
            return None
        m = _ROUND.match(line.rstrip())
        if not m:
            return None
        found: dict[str, float] = {}
        for item in m.group(2).split("\t"):
            part = _XGB_ITEM.match(item.strip())
            if not part:
                return None
            name = metric_name(part.group(1))
            found[name] = to_float(part.group(2))
            if part.group(3) is not None:
                found[name + "_std"] = to_float(part.group(3))
        return int(m.group(1)), found


_LGB_ITEM = re.compile(rf"^(.+?)'s (.+?): ({_NUM})(?: \+ ({_NUM}))?$")


class LightGBMPreset:
    """LightGBM's `[10]\\tvalid_0's l2: 0.31` (as `valid_0_l2`); its `[LightGBM] ...` lines are
    skipped, and so is the repeat of the best round after `best iteration is:`."""

    def __init__(self) -> None:
        self.repeat_next = False

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if line.startswith("[LightGBM]"):
            return None, {}
        if "est iteration is" in line:
            self.repeat_next = True
            return None, {}
        if not line.startswith("[") or not line[1:2].isdigit() or "'s " not in line:
            return None
        m = _ROUND.match(line.rstrip())
        if not m:
            return None
        found: dict[str, float] = {}
        for item in m.group(2).split("\t"):
            part = _LGB_ITEM.match(item.strip())
            if not part:
                return None
            name = metric_name(f"{part.group(1)}_{part.group(2)}")
            found[name] = to_float(part.group(3))
            if part.group(4) is not None:
                found[name + "_std"] = to_float(part.group(4))
        if self.repeat_next:
            self.repeat_next = False
            return None, {}
        return int(m.group(1)), found


_REPORT_HEAD = re.compile(r"^\s+precision\s+recall\s+f1-score\s+support\s*$")
_REPORT_ACC = re.compile(rf"^\s*accuracy\s+({_NUM})\s+\d+\s*$")
_REPORT_AVG = re.compile(rf"^\s*(macro|weighted|micro|samples) avg\s+({_NUM})\s+({_NUM})\s+({_NUM})\s+\d+\s*$")
_CV_STD = re.compile(rf"^\s*({_NUM}) ([A-Za-z][\w ]*?) with a standard deviation of ({_NUM})\s*$")


class SklearnPreset:
    """scikit-learn's `classification_report` summary rows (`accuracy`, `macro_avg_f1`,
    `weighted_avg_precision`, ...; per-class rows are skipped) and the cross-validation guide's
    `0.98 accuracy with a standard deviation of 0.02` (`accuracy`, `accuracy_std`)."""

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if "avg" in line:
            m = _REPORT_AVG.match(line)
            if m:
                kind = m.group(1)
                return None, {f"{kind}_avg_precision": to_float(m.group(2)), f"{kind}_avg_recall": to_float(m.group(3)),
                              f"{kind}_avg_f1": to_float(m.group(4))}
        elif "accuracy" in line:
            m = _REPORT_ACC.match(line)
            if m:
                return None, {"accuracy": to_float(m.group(1))}
        elif "precision" in line and _REPORT_HEAD.match(line):
            return None, {}
        if "standard deviation" in line:
            m = _CV_STD.match(line)
            if m:
                name = metric_name(m.group(2))
                return None, {name: to_float(m.group(1)), name + "_std": to_float(m.group(3))}
        return None


_PM = r"(?:\+/-|\+-|±)"
_PROSE = re.compile(
    rf"^\s*(?P<name>[A-Za-z][\w/\-]*(?: [A-Za-z][\w/\-]*){{0,5}})(?P<sep>\s*[:=]\s*)(?P<value>{_NUM})\s*%?"
    rf"\s*(?:\(\s*{_PM}\s*(?P<pm>{_NUM})\s*%?\s*\)|{_PM}\s*(?P<pm2>{_NUM})\s*%?)?\s*$"
)


class ProsePreset:
    """`Test accuracy = 0.969`, `Mean accuracy: 0.97 (+/- 0.02)` (as `mean_accuracy` and
    `mean_accuracy_pm`): a name of several words, or any name with a `+/-` figure. A one-word
    `Name: value` is left to the colon format, which keeps the name exactly as printed."""

    def parse(self, line: str) -> tuple[int | None, dict[str, float]] | None:
        if ":" not in line and "=" not in line:
            return None
        m = _PROSE.match(line)
        if not m:
            return None
        name, pm = m.group("name"), m.group("pm") or m.group("pm2")
        if " " not in name and pm is None:
            return None  # `loss: 0.3` is the colon format's; `max_iters = 5000` is a config file echoed
        key = metric_name(name)
        found = {key: to_float(m.group("value"))}
        if pm is not None:
            found[key + "_pm"] = to_float(pm)
        return None, found


PRESETS: dict[str, type] = {
    "keras": KerasPreset, "transformers": TransformersPreset, "lightning": LightningPreset, "nanogpt": NanoGPTPreset,
    "xgboost": XGBoostPreset, "lightgbm": LightGBMPreset, "sklearn": SklearnPreset, "prose": ProsePreset,
}

_REPR_OPEN = re.compile(r"[A-Za-z_][\w.]*\($")
_REPR_ARG = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\s*=|\)|$)")


def _names(spec: dict[str, Any], key: str, known: dict[str, type]) -> list[str]:
    from assay.errors import ConfigError, did_you_mean

    value = spec.get(key, list(known))
    if isinstance(value, str):
        value = list(known) if value == "all" else [value]
    if not isinstance(value, list):
        raise ConfigError(f"`capture.{key}` in experiment.yaml must be a list of names, not {value!r}",
                          f"Write `capture: {{{key}: [{', '.join(known)}]}}` or leave it out.")
    for name in value:
        if name not in known:
            raise ConfigError(
                f"Unknown capture {key[:-1]} '{name}' in experiment.yaml (known: {', '.join(known)})."
                + did_you_mean(str(name), known),
                f"Fix `capture.{key}` in experiment.yaml.",
            )
    return value


class Capture:
    """Applies an experiment's presets, formats and patterns to output lines and numbers the steps of each metric.

    Args:
        spec: experiment.yaml's `capture:` mapping.
        declared: the experiment's metric names; a preset's name that normalises to the same
            spelling is reported under the declared one (a declared `Val-Loss` takes `val loss`).
    """

    def __init__(self, spec: dict[str, Any] | None = None, declared: Iterable[str] = ()) -> None:
        from assay.errors import ConfigError, did_you_mean

        spec = spec or {}
        for key in spec:
            if key not in SPEC_KEYS:
                raise ConfigError(f"Unknown key 'capture.{key}' in experiment.yaml (known: {', '.join(SPEC_KEYS)})."
                                  + did_you_mean(str(key), SPEC_KEYS), "Fix `capture:` in experiment.yaml.")
        self.presets: list[Preset] = [PRESETS[name]() for name in _names(spec, "presets", PRESETS)]
        self.parsers: list[MetricParser] = [PARSERS[name]() for name in _names(spec, "formats", PARSERS)]
        try:
            self.patterns = [RegexParser(p) for p in spec.get("patterns", [])]
            self.ignore = [re.compile(p) for p in spec.get("ignore", [])]
        except re.error as exc:
            raise ConfigError(f"Bad regex in experiment.yaml capture: {exc}", "Fix `capture.patterns`/`capture.ignore`.") from None
        self.aliases = {metric_name(d): d for d in declared if metric_name(d) != d}
        self.counts: dict[str, int] = {}
        self.in_repr = False

    def parse(self, line: str) -> tuple[int | None, dict[str, float]]:
        """Metrics on one line and their step: the format's own (epoch, step=, [10]) or the metric's occurrence count."""
        # Called for every line a script prints: kept to cheap checks first (>= 100k lines/s).
        if not line or (self.ignore and any(r.search(line) for r in self.ignore)):
            return None, {}
        if "\x1b" in line:
            line = _ANSI.sub("", line)
            if not line:  # tqdm's lone cursor-up `\x1b[A` between two `\r`
                return None, {}
        if (self.in_repr or line[-1] == "(") and self._inside_repr(line):
            return None, {}
        step, claimed = None, None
        found: dict[str, float] = {}
        for preset in self.presets:
            claimed = preset.parse(line)
            if claimed is not None:
                step, found = claimed
                if self.aliases:
                    found = {self.aliases.get(k, k): v for k, v in found.items()}
                break
        else:
            for parser in self.parsers:
                got = parser.parse(line)
                if got:
                    found.update(got)
        for pattern in self.patterns:
            found.update(pattern.parse(line))
        if not found:
            return None, {}
        counts = self.counts
        if claimed is None:  # a preset gives its own step; in generic lines `step=`/`epoch:` is one
            for key in STEP_KEYS:
                if key in found and math.isfinite(found[key]):
                    step = int(found.pop(key))
                    break
            if not found:
                return None, {}
        if step is None:
            step = 0
            for k in found:
                n = counts.get(k, 0)
                if n > step:
                    step = n
        for k in found:
            counts[k] = step + 1
        return step, found

    def _inside_repr(self, line: str) -> bool:
        """True for the lines of a repr printed one argument a line (`TrainingArguments(` then
        `learning_rate=5e-05,` ... `)`): arguments, not metrics. Any other line ends it."""
        if self.in_repr:
            if _REPR_ARG.match(line):
                if line.lstrip().startswith(")"):
                    self.in_repr = False
                return True
            self.in_repr = False
        if line.endswith("(") and _REPR_OPEN.search(line):
            self.in_repr = True
            return True
        return False
