"""Telling crash, timeout, OOM, a kill, NaN and success apart from exit code, log tail and metrics."""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Mapping

from assay.store.records import Status

_OOM = re.compile(
    r"CUDA out of memory|OutOfMemoryError|\bMemoryError\b|RESOURCE_EXHAUSTED|std::bad_alloc"
    r"|Cannot allocate memory|out of memory",
    re.I,
)


def classify(
    returncode: int,
    stopped_by: str | None,
    log_tail: str,
    primary: str,
    primary_last: float | None,
    *,
    oom_kills: int | None = None,
    seen: Mapping[str, float | None] | None = None,
) -> tuple[Status, str]:
    """Return (status, reason) for a finished process. Order matters: what we did to the process
    first, then what the process (or the kernel, `oom_kills`: how many processes of the run's
    cgroup its OOM killer ended during the run, None when unreadable) said about it, then its metric.
    `seen` (each captured or logged metric's last value) explains a missing primary metric."""
    if stopped_by == "timeout":
        return Status.TIMEOUT, "stopped after exceeding its timeout"
    if stopped_by in ("interrupt", "kill"):
        return Status.INTERRUPTED, "stopped by the user (Ctrl-C or SIGTERM to assay)"
    if returncode != 0:
        if _OOM.search(log_tail):
            line = next((ln.strip() for ln in reversed(log_tail.splitlines()) if _OOM.search(ln)), "")
            return Status.OOM, f"out of memory: {line[:200]}"
        if returncode == -signal.SIGKILL:
            if oom_kills:
                return Status.OOM, f"killed by the kernel's OOM killer (cgroup memory events: {oom_kills} OOM kill(s) during the run)"
            return Status.KILLED, "killed by signal 9 (SIGKILL): the kernel's OOM killer or a manual kill"
        if returncode < 0:
            name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else str(-returncode)
            return Status.FAILED, f"killed by signal {name}"
        if primary_last is not None and not math.isfinite(primary_last):
            return Status.NAN, f"{primary} became {primary_last} and the script exited with code {returncode}"
        last = next((ln.strip() for ln in reversed(log_tail.splitlines()) if ln.strip()), "")
        return Status.FAILED, f"exit code {returncode}: {last[:200]}"
    if primary_last is None:
        return Status.FAILED, missing_metric_reason(primary, seen or {}, log_tail)
    if not math.isfinite(primary_last):
        return Status.NAN, f"{primary} is {primary_last}"
    return Status.OK, ""


_VALUE = r"[-+]?[\d.]+(?:[eE][-+]?\d+)?"
_NUMBER_AFTER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def near_names(primary: str, names: list[str]) -> list[str]:
    """Names that are probably the primary metric under another spelling: the same but for case
    or `_`/space/`-`, containing it (`test_accuracy`), or a few edits away (`val_acc`)."""
    import difflib

    def fold(name: str) -> str:
        return re.sub(r"[\s\-_]+", "_", name.lower())

    key = fold(primary)
    same = [n for n in names if fold(n) == key]
    within = [n for n in names if n not in same and (key in fold(n) or (len(fold(n)) > 2 and fold(n) in key))]
    close = [n for n in difflib.get_close_matches(primary, names, n=3, cutoff=0.75) if n not in same + within]
    return (same + within + close)[:3]


def missing_metric_reason(primary: str, seen: Mapping[str, float | None], log_tail: str) -> str:
    """Why a run that exited 0 has no primary metric, on one line (it goes into results.tsv too):
    what was captured, the likely intended name, and the `capture:` line that would take it."""
    names = sorted(seen)
    head = f"exited 0 but never reported the primary metric '{primary}'"
    near = near_names(primary, names)
    if near:
        shown = ", ".join(f"{n}={_fmt(seen[n])}" for n in near)
        head += f"; saw {shown} \u2014 did you mean {near[0]}?"
    elif names:
        head += f"; saw {', '.join(names[:6])}{f' (+{len(names) - 6} more)' if len(names) > 6 else ''}"
    else:
        head += "; no metric was captured from its output"
    pattern = _pattern_from_output(primary, near, log_tail)
    head += "" if head.endswith("?") else "."
    if pattern:
        return f"{head} To take it, add to experiment.yaml: `capture: {{patterns: [{pattern}]}}`"
    if near:
        return f"{head} Set `metric: {near[0]}` in experiment.yaml, or print `{primary}: <value>`."
    return f"{head} Print `{primary}: <value>`, log it with assay.log, or add `capture: {{patterns: [...]}}` to experiment.yaml."


def _pattern_from_output(primary: str, near: list[str], log_tail: str) -> str:
    """A YAML-quoted regex that takes `primary` from the last output line naming it (or a near
    name) before a number, e.g. 'Accuracy: (?P<accuracy>...)'; '' when no line does or the name
    cannot be a regex group."""
    if not primary.isidentifier():
        return ""
    labels = [re.compile(re.escape(label).replace("_", "[ _-]"), re.I) for label in [*near, primary]]
    for line in reversed(log_tail.splitlines()[-200:]):
        for label in labels:
            m = label.search(line)
            if not m:
                continue
            num = _NUMBER_AFTER.search(line, m.end())
            if not num or num.start() - m.end() > 40:
                continue
            value = r"[\d.]+" if re.fullmatch(r"[\d.]+", num.group()) else _VALUE  # the short form when it fits
            regex = re.escape(line[m.start():num.start()]).replace("\\ ", " ") + f"(?P<{primary}>{value})"
            return "'" + regex.replace("'", "''") + "'"
    return ""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
