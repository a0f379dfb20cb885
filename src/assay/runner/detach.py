"""Runs in the background: `assay run --detach` starts one and returns as soon as its run folder
exists; `assay wait` waits for runs to end, however they were started.

A detached run is an ordinary `assay run` in its own session (a closed terminal or an ended parent
does not stop it) whose own output (its start and summary lines) goes to `logs/assay.log` in the
run folder. It owns its run record as any `assay run` does, so a detached run whose process dies is
marked lost like any other.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import RunError
from assay.experiment import goal_lookup
from assay.lab import Lab
from assay.store import records

DETACHED_LOG = "logs/assay.log"  # the detached `assay run`'s own output, in its run folder
HANDOFF_ENV = "ASSAY_DETACH_HANDOFF"  # where the detached `assay run` says which folder it made
START_DEADLINE_S = 60.0
POLL_S = 0.1


@dataclass(frozen=True)
class Detached:
    """A run started in the background: its id, folder, the `assay run` process and its output file."""

    id: str
    path: Path
    pid: int
    log: Path

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "pid": self.pid, "log": str(self.log), "status": "running"}


@dataclass(frozen=True)
class NotStarted:
    """The background `assay run` ended before it made a run folder (a bad param, an unknown experiment):
    its exit code and its own output, which says why."""

    exit_code: int
    output: str


def start_detached(lab: Lab, argv: list[str], deadline_s: float = START_DEADLINE_S) -> Detached | NotStarted:
    """Start `assay ARGV` (an `assay run` without --detach) in its own session and return once its run
    folder exists, or once it ended without one.

    Raises:
        RunError: it neither made a folder nor ended within `deadline_s` (it is left running).
    """
    folder = lab.state_dir / "detached"
    folder.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{time.time_ns()}"
    log, handoff = folder / f"{token}.log", folder / f"{token}.json"
    env = {**os.environ, "ASSAY_LAB": str(lab.root), HANDOFF_ENV: str(handoff)}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assay.cli.main", *argv], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + deadline_s
    while True:
        ended = proc.poll()
        if handoff.exists():
            data = json.loads(handoff.read_text(encoding="utf-8"))
            handoff.unlink()
            return Detached(data["id"], Path(data["path"]), proc.pid, Path(data["log"]))
        if ended is not None:
            output = log.read_text(encoding="utf-8", errors="replace")
            log.unlink(missing_ok=True)
            return NotStarted(ended, output)
        if time.monotonic() > deadline:
            raise RunError(f"The background run made no run folder within {deadline_s:.0f}s (pid {proc.pid})",
                           f"Its output so far is in {log}; stop it with `kill {proc.pid}`.")
        time.sleep(POLL_S)  # the other process is starting; bounded by the deadline


class HandOff:
    """The RunObserver of a detached `assay run`: when its first run folder exists, moves the process's
    output file into it and tells the waiting parent the folder. Wraps the usual observer."""

    def __init__(self, inner: Any, handoff: Path) -> None:
        self.inner = inner
        self.handoff: Path | None = handoff

    def started(self, path: Path, record: dict[str, Any]) -> None:
        self.inner.started(path, record)
        if self.handoff is None:
            return  # a retry of the OOM ladder: the parent already knows the first run
        handoff, self.handoff = self.handoff, None
        log = handoff.with_suffix(".log")
        target = path / DETACHED_LOG
        with contextlib.suppress(OSError):  # another file system: the output stays in .assay/detached/
            os.replace(log, target)  # this process's stdout follows the file: it is the same open file
            log = target
        data = {"id": records.run_id(path), "path": str(path), "log": str(log)}
        tmp = handoff.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, handoff)

    def ended(self, result: Any) -> None:
        self.inner.ended(result)


@dataclass(frozen=True)
class Waited:
    """The runs `wait_for_runs` watched, as their records were when it returned (each with `path`)."""

    runs: list[dict[str, Any]]
    timed_out: bool


def wait_for_runs(lab: Lab, refs: list[str], timeout: float | None = None) -> Waited:
    """Wait until every run `refs` names has ended (or was lost: its process died), at most `timeout`
    seconds. References are resolved first, so `last` is the newest run when the wait began.

    Raises:
        UnknownRunError: a reference names no run, or several.
    """
    from assay.store.query import find_run

    paths = list(dict.fromkeys(find_run(lab, ref) for ref in refs))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        recs = [_current(lab, p) for p in paths]
        running = [r for r in recs if r["status"] == records.Status.RUNNING.value]
        if not running or (deadline is not None and time.monotonic() >= deadline):
            return Waited(recs, bool(running))
        time.sleep(POLL_S)  # the runs belong to other processes; bounded by the deadline, if any


def _current(lab: Lab, path: Path) -> dict[str, Any]:
    """A run's record now; a running run whose process is gone is recorded (and indexed) as lost."""
    before = records.read_record(path)
    rec = records.mark_lost_if_dead(path, before, goal_lookup(lab.root, before.get("experiment") or ""))
    if rec["status"] != before["status"]:
        with lab.index() as index:
            if not index.readonly:
                index.upsert(path, rec)
    return {**_NOT_ENDED, **rec, "path": str(path)}  # a running run has no outcome yet: the keys say so


_NOT_ENDED: dict[str, Any] = {"reason": None, "exit_code": None, "ended": None, "duration": None, "metrics": {}}
