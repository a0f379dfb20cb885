"""A sweep's files: experiments/NAME/sweeps/<id>/sweep.json (its settings, whole-file atomic) and
trials.jsonl (append-only: one `start` and, when it ends, one `end` line per trial).

The files are the truth: a resumed sweep replays trials.jsonl, re-runs trials that started but
never ended (interrupted, or the sweep process died) and skips those that ended; a trial whose
run ended but whose `end` line was never written takes its run's result instead of running again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from assay.config import write_atomic
from assay.errors import ConfigError, StoreError

SWEEP_FILE = "sweep.json"
TRIALS_FILE = "trials.jsonl"


@dataclass
class TrialEntry:
    number: int
    params: dict[str, Any]
    status: str | None = None  # None: started, never ended
    value: float | None = None
    run: str | None = None
    duration: float | None = None
    # The OOM ladder's progress on this trial (in memory: a resumed trial starts again from rung 0)
    oom_rung: int = 0
    oom_changes: dict[str, Any] = field(default_factory=dict)
    oom_tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SweepFiles:
    """The folder of one sweep and what its files say."""

    path: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.path.name

    def save_settings(self) -> None:
        write_atomic(self.path / SWEEP_FILE, json.dumps(self.settings, indent=1, default=str) + "\n")

    def set_status(self, status: str) -> None:
        self.settings["status"] = status
        self.settings["updated"] = time.time()
        self.save_settings()

    def append(self, event: dict[str, Any]) -> None:
        """One line, flushed and fsynced: a trial's start/end survives a crash right after."""
        line = json.dumps({"t": round(time.time(), 3), **event}, default=str) + "\n"
        fd = os.open(self.path / TRIALS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def trials(self) -> dict[int, TrialEntry]:
        """Replay trials.jsonl; a torn last line (killed writer) is ignored."""
        out: dict[int, TrialEntry] = {}
        try:
            data = (self.path / TRIALS_FILE).read_bytes()
        except FileNotFoundError:
            return out
        for raw in data.split(b"\n")[:-1]:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            n = ev.get("trial")
            if not isinstance(n, int):
                continue
            if ev.get("event") == "start":
                out[n] = TrialEntry(n, dict(ev.get("params") or {}))
            elif ev.get("event") == "end" and n in out:
                e = out[n]
                e.status, e.value, e.run, e.duration = ev.get("status"), ev.get("value"), ev.get("run"), ev.get("duration")
        return out


def sweeps_dir(exp_path: Path) -> Path:
    return exp_path / "sweeps"


def create_sweep(exp_path: Path, settings: dict[str, Any]) -> SweepFiles:
    """A new sweep folder named by the time (a same-second collision gets -2, -3, ...)."""
    from assay.store.records import unique_dir

    path = unique_dir(sweeps_dir(exp_path), datetime.now().strftime("%Y%m%d-%H%M%S"))
    sf = SweepFiles(path, {**settings, "id": path.name, "created": time.time(), "status": "running"})
    sf.save_settings()
    return sf


def list_sweeps(exp_path: Path) -> list[str]:
    root = sweeps_dir(exp_path)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / SWEEP_FILE).is_file())


def open_sweep(exp_path: Path, sweep_id: str | None) -> SweepFiles:
    """An existing sweep by id (default: the newest).

    Raises:
        ConfigError: no such sweep (the message lists the known ids).
    """
    known = list_sweeps(exp_path)
    if sweep_id is None:
        if not known:
            raise ConfigError(f"No sweep to resume in {sweeps_dir(exp_path)}", "Start one: assay sweep NAME lr=1e-4,3e-4")
        sweep_id = known[-1]
    path = sweeps_dir(exp_path) / sweep_id
    if sweep_id not in known:
        raise ConfigError(f"Unknown sweep '{sweep_id}' (known: {', '.join(known) or 'none'})",
                          f"Pass one of them to --resume, or start a new sweep ({sweeps_dir(exp_path)}).")
    try:
        settings = json.loads((path / SWEEP_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise StoreError(f"{path / SWEEP_FILE} is corrupt: {exc}", "Start a new sweep; its runs stay in the store.") from None
    return SweepFiles(path, settings)
