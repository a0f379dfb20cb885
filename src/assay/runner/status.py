"""Telling crash, timeout, OOM, a kill, NaN and success apart from exit code, log tail and metrics."""

from __future__ import annotations

import math
import re
import signal

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
) -> tuple[Status, str]:
    """Return (status, reason) for a finished process. Order matters: what we did to the process
    first, then what the process (or the kernel, `oom_kills`: how many processes of the run's
    cgroup its OOM killer ended during the run, None when unreadable) said about it, then its metric."""
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
        return Status.FAILED, f"exited 0 but never reported the primary metric '{primary}'"
    if not math.isfinite(primary_last):
        return Status.NAN, f"{primary} is {primary_last}"
    return Status.OK, ""
