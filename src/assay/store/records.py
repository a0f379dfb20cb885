"""Run folders and their files: run.json (atomic), metrics.jsonl (append-only), logs/, git.patch.

A run folder is `runs/YYYY-MM-DDTHH-MM-SS-<desc>/`, created exclusively (a same-second collision
gets -2, -3, ...), so no run ever overwrites another, and it holds its run.json from the moment it
appears under that name.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from assay.config import write_atomic
from assay.errors import StoreError

RECORD_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "logs/output.log"
PATCH_FILE = "git.patch"
RECORD_VERSION = 1
SUBDIRS = ("logs", "plots", "checkpoints", "data")
class Status(StrEnum):
    """A run's status. A StrEnum: equal to its text, and written to run.json and the index as it."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"  # non-zero exit, or exited 0 without the primary metric
    TIMEOUT = "timeout"
    OOM = "oom"  # CUDA OOM, MemoryError, or the kernel's OOM killer (cgroup evidence)
    KILLED = "killed"  # SIGKILL without OOM evidence: the OOM killer or a manual kill
    NAN = "nan"  # the primary metric is NaN or infinite
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM to assay
    LOST = "lost"  # the process died without writing a final record
    PRUNED = "pruned"  # stopped early by a sweep's pruner


STATUSES = tuple(s.value for s in Status)
FINISHED = frozenset(STATUSES) - {Status.RUNNING.value}
HOST = socket.gethostname()


@dataclass(frozen=True)
class RunRecord:
    """run.json: what ran, how it was asked for, and how it ended.

    Every writer builds or amends one of these (`with_`), and `write_record` is the only way to
    disk, so a record has one shape wherever it is made: the launcher, a standalone or interactive
    run, a lost-run mark, a smoke run's throughput, a sweep's pruning, the loop's refusal, a rerun.
    Readers get the JSON form (`read_record`, `RunResult.record`). Keys a newer assay wrote are
    kept in `extra` and written back unchanged.
    """

    experiment: str | None
    desc: str
    started: float
    status: Status = Status.RUNNING
    id: str | None = None  # `<experiment>/<folder>`, set when the folder's name is claimed
    record_version: int = RECORD_VERSION
    reason: str | None = None
    command: list[str] = field(default_factory=list)
    entry: str | None = None
    cwd: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)  # as typed
    seed: Any = None
    timeout: float | None = None
    primary_metric: str | None = None
    goal: str | None = None
    group: str | None = None  # the runs of one --repeat
    tags: dict[str, str] = field(default_factory=dict)
    ended: float | None = None
    duration: float | None = None
    exit_code: int | None = None
    peak_rss: int | None = None
    peak_gpu_mem: int | None = None
    cost: dict[str, Any] | None = None  # the ledger: cpu_hours, gpu_hours, gpu_count, money, currency (assay.cost)
    metrics: dict[str, dict[str, Any]] | None = None  # per metric: last, last_step, best, best_step, count
    artifacts: list[str] | None = None
    log_tail: str | None = None
    git: dict[str, Any] | None = None
    code: dict[str, Any] | None = None  # the code version (identity.code_fingerprint)
    env: dict[str, Any] | None = None
    data: dict[str, dict[str, Any]] | None = None
    logged_params: dict[str, Any] | None = None
    warnings: list[str] | None = None
    params_unreached: list[str] | None = None
    smoke: dict[str, Any] | None = None
    rerun_of: str | None = None
    owner_pid: int | None = None
    owner_started: float | None = None
    child_pid: int | None = None
    host: str | None = None
    standalone: bool | None = None
    interactive: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> RunRecord:
        """A copy with `changes` (the record is frozen: an amendment is a new record)."""
        import dataclasses

        return dataclasses.replace(self, **changes)

    @property
    def finished(self) -> bool:
        return self.status != Status.RUNNING

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field set, and a finished run's outcome fields even when empty."""
        out: dict[str, Any] = {}
        for f in _FIELDS:
            v = getattr(self, f)
            if v is not None or f in _ALWAYS or (f in _OUTCOME and self.finished):
                out[f] = v
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record of a run.json (or of its JSON form); unknown keys go to `extra`."""
        known = {k: v for k, v in data.items() if k in _FIELD_SET}
        status = known.get("status", Status.RUNNING)
        known["status"] = Status(status) if status in STATUSES else status
        known.setdefault("experiment", None)
        known.setdefault("desc", "")
        known.setdefault("started", 0.0)
        return cls(**known, extra={k: v for k, v in data.items() if k not in _FIELD_SET and k != "extra"})


_FIELDS = tuple(f for f in RunRecord.__dataclass_fields__ if f != "extra")
_FIELD_SET = frozenset(_FIELDS)
_ALWAYS = frozenset({"record_version", "id", "experiment", "desc", "status", "command", "entry", "cwd", "params",
                     "overrides", "seed", "timeout", "primary_metric", "goal", "group", "tags", "started"})
_OUTCOME = frozenset({"reason", "exit_code", "ended", "duration", "peak_rss", "peak_gpu_mem", "metrics", "artifacts",
                      "log_tail", "git", "code", "env"})


def slug(text: str) -> str:
    s = re.sub(r"[^\w.\-]+", "-", text.strip()).strip("-.")
    return s[:60] or "run"


def unique_dir(parent: Path, base: str) -> Path:
    """Create parent/base, or base-2, base-3, ... when taken (created atomically: never reused)."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise StoreError(f"Could not create a folder for '{base}' in {parent}", f"Clean up {parent}.")


STAGING_PREFIX = ".new-"  # a run folder being built; hidden from every listing


def create_run_dir(runs_dir: Path, desc: str, record: RunRecord, when: datetime | None = None) -> tuple[Path, RunRecord]:
    """Create a fresh run folder holding `record` as its run.json; never reuses one. Returns the
    folder and the record with its id (`<experiment>/<folder>`) set.

    The folder is built under a hidden staging name and renamed into place, and a rename is
    atomic: a kill at any point leaves a complete run or a hidden `.new-*` folder (which
    `assay reindex` removes), never a run folder without a record. Renaming onto a taken,
    non-empty name fails, so two launches in the same second cannot claim one folder.
    """
    import errno
    import tempfile

    stamp = (when or datetime.now()).strftime("%Y-%m-%dT%H-%M-%S")
    base = f"{stamp}-{slug(desc)}"
    runs_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=runs_dir))
    for sub in SUBDIRS:
        (staging / sub).mkdir()
    for n in range(1, 10_000):
        path = runs_dir / (base if n == 1 else f"{base}-{n}")
        if path.exists():
            continue
        record = record.with_(id=run_id(path))
        write_record(staging, record)
        try:
            os.rename(staging, path)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue  # taken between the check and the rename
            raise
        return path, record
    raise StoreError(f"Could not create a folder for '{base}' in {runs_dir}", f"Clean up {runs_dir}.")


def run_folders(runs_dir: Path) -> list[Path]:
    """The run folders under `runs_dir`, oldest name first (staging folders left out)."""
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(STAGING_PREFIX))


def remove_stale_staging(runs_dir: Path, older_than_s: float = 60.0) -> list[Path]:
    """Remove `.new-*` folders of launches killed before their script started; returns them.

    Such a folder never held a script's output (the script starts after the rename); a recent
    one may belong to a launch in progress and is left alone.
    """
    import shutil

    removed = []
    for p in runs_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            if p.is_dir() and time.time() - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p)
                removed.append(p)
        except FileNotFoundError:
            continue
    return removed


def run_id(path: Path) -> str:
    """`<experiment>/<folder>` for runs inside a lab (path is .../<experiment>/runs/<folder>)."""
    return f"{path.parent.parent.name}/{path.name}"


def write_record(path: Path, record: RunRecord) -> None:
    """Write run.json atomically (readers see the old or the new record, never a torn one)."""
    write_atomic(path / RECORD_FILE, json.dumps(record.to_dict(), indent=1, default=str, allow_nan=True) + "\n")


def read_record(path: Path) -> dict[str, Any]:
    file = path / RECORD_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{file} is missing", "The run folder is incomplete; `assay reindex` lists such folders.") from None
    except ValueError as exc:
        raise StoreError(f"{file} is corrupt: {exc}", "Restore it from a backup or `assay ignore` the run.") from None
    if not isinstance(data, dict):
        raise StoreError(f"{file} is corrupt: not a JSON object")
    if data.get("record_version", 1) > RECORD_VERSION:
        raise StoreError(f"{file} was written by a newer assay", "Upgrade: pip install -U assay")
    return data


def iter_events(path: Path) -> Iterator[dict[str, Any]]:
    """Events of metrics.jsonl in order; a torn or corrupt line is skipped, never fatal."""
    file = path / METRICS_FILE
    try:
        fh = file.open("rb")
    except FileNotFoundError:
        return
    with fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # torn last line of a killed writer
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event


def torn_tail(path: Path) -> int:
    """Bytes after the last newline of metrics.jsonl: a torn last line that readers skip (0 if clean)."""
    try:
        with (path / METRICS_FILE).open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0 or fh.seek(size - 1) >= 0 and fh.read(1) == b"\n":
                return 0  # the common case costs one byte read
            fh.seek(max(0, size - 65_536))
            tail = fh.read()
    except FileNotFoundError:
        return 0
    return len(tail) - tail.rfind(b"\n") - 1


def metric_series(path: Path, keys: set[str] | None = None) -> dict[str, list[tuple[int, float, float]]]:
    """{metric: [(step, value, time), ...]} from the metrics file.

    A metric logged through the API wins over the same name captured from printed output (scripts
    often do both: `assay.log(...)` per epoch and a final `val_f1: 0.91` line for grep). Metrics
    imported from trackers (src "mlflow", "wandb", "trackio", "tensorboard") rank with the API
    here, and their importer never writes a name the API logged: API > tracker > printed output.
    """
    api: dict[str, list[tuple[int, float, float]]] = {}
    out: dict[str, list[tuple[int, float, float]]] = {}
    for ev in iter_events(path):
        m = ev.get("m")
        if not isinstance(m, dict):
            continue
        step, t = ev.get("step"), ev.get("t", 0.0)
        dest = out if ev.get("src") == "out" else api
        for k, v in m.items():
            if (keys is None or k in keys) and isinstance(v, (int, float)) and not isinstance(v, bool):
                series = dest.setdefault(k, [])
                series.append((len(series) if step is None else step, _float(v), t))
    return {**out, **api}


def _float(v: int | float) -> float:
    try:
        return float(v)
    except OverflowError:  # an int logged past 1e308 (assay.log({"x": 10**400})) reads as infinite
        return math.inf if v > 0 else -math.inf


def summarize(path: Path, goal_of: Callable[[str], str]) -> dict[str, Any]:
    """Fold the metrics file into {metrics: {key: last/best/best_step/count}, params, tags, artifacts}."""
    metrics: dict[str, dict[str, Any]] = {}
    for k, series in metric_series(path).items():
        maximize = goal_of(k) == "max"
        best = best_step = None
        for step, v, _ in series:
            if math.isfinite(v) and (best is None or (v > best if maximize else v < best)):
                best, best_step = v, step
        metrics[k] = {"last": series[-1][1], "last_step": series[-1][0], "best": best, "best_step": best_step,
                      "count": len(series)}
    logged_params: dict[str, Any] = {}
    tags: dict[str, str] = {}
    artifacts: list[str] = []
    for ev in iter_events(path):
        if "m" in ev:
            continue
        if isinstance(ev.get("params"), dict):
            logged_params.update(ev["params"])
        elif isinstance(ev.get("tags"), dict):
            tags.update(ev["tags"])
        elif "artifact" in ev:
            artifacts.append(str(ev["artifact"]))
    return {"metrics": metrics, "logged_params": logged_params, "tags": tags, "artifacts": artifacts}


def log_tail(path: Path, lines: int = 30, max_bytes: int = 16_384) -> str:
    file = path / LOG_FILE
    try:
        with file.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    parts = re.split(r"\r\n|\n|\r", data.rstrip())
    return "\n".join(parts[-lines:])


def new_events(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The complete metric events appended to `path` after byte `offset`, and the offset after
    them: a line still being written waits for its newline (the next call reads it)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = [ln for ln in data[:end].splitlines() if ln.strip()]
    try:  # one C-level parse of the whole chunk is ~3x faster than a call per line
        events = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:  # a corrupt line somewhere: parse line by line and skip it
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return [ev for ev in events if isinstance(ev, dict)], offset + end


# ------------------------------------------------------------------ liveness


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None if it does not exist."""
    if sys.platform == "linux":  # /proc directly: psutil's import would sit on every run's start-up path
        try:
            return _proc_start_time(pid)
        except (OSError, ValueError, IndexError):
            pass
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


_BOOT_TIME: list[float] = []


def _proc_start_time(pid: int) -> float | None:
    """psutil's create_time on Linux: field 22 of /proc/PID/stat (clock ticks after boot) + boot time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # fields after "(comm)" start at field 3
    if not _BOOT_TIME:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                _BOOT_TIME.append(float(line.split()[1]))
    return _BOOT_TIME[0] + ticks / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int | None, started: float | None) -> bool:
    """True if `pid` is the same process that wrote the record (pids are reused)."""
    if not pid:
        return False
    t = process_start_time(int(pid))
    return t is not None and (started is None or abs(t - float(started)) < 1.0)


def mark_lost_if_dead(path: Path, record: dict[str, Any], goal_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """A 'running' record whose writer is gone becomes 'lost' (the metrics logged so far are kept)."""
    if record.get("status") != "running" or process_alive(record.get("owner_pid"), record.get("owner_started")):
        return record
    if record.get("host") not in (None, HOST):
        return record  # launched on another machine sharing this folder: its pid means nothing here
    lost = RunRecord.from_dict(record).with_(
        status=Status.LOST, reason="the process that ran it is gone and left no final record (killed or machine lost)",
        metrics=summarize(path, goal_of or (lambda k: "max"))["metrics"], log_tail=log_tail(path))
    if os.access(path, os.W_OK):  # a read-only lab shows the run as lost without recording it
        for tmp in path.glob(f".{RECORD_FILE}.*.tmp"):  # a write its dead owner never finished (never read)
            tmp.unlink(missing_ok=True)
        write_record(path, lost)
    return lost.to_dict()
