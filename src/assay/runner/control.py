"""Where a run's process runs: the launch seam, and control of a running trial from outside.

`start_run` makes the run folder and the record; a `Launcher` only runs the command and returns
how it ended. The default runs it here (`LocalLauncher`, run_process); executors bring their own:
the local pool adds a stop from outside and a watch of the primary metric, Ray runs the command
on a worker and brings the run's files back. Both share `TrialControl` and `signal_group`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from assay.runner.process import GRACE_SECONDS, SAMPLE_SECONDS, ProcessResult, run_process, signal_group
from assay.store import records

if TYPE_CHECKING:
    from assay.capture import Capture

__all__ = ["GRACE_SECONDS", "LaunchRequest", "Launcher", "LocalLauncher", "ProcessResult", "TrialControl", "Watch",
           "signal_group"]

# (step, value of the primary metric) -> True to stop the trial now (pruning).
Watch = Callable[[int, float], bool]


@dataclass(frozen=True, kw_only=True)
class LaunchRequest:
    """One run's process, as `start_run` asks a launcher for it.

    The script writes its files under `run_dir` (ASSAY_RUN_DIR in `env`); a launcher that runs it
    elsewhere brings them back there before it returns. Its output goes to `log_path` and, line by
    line, to `on_line` (which appends the metrics `capture` finds to `metrics_path`).
    """

    command: tuple[str, ...]
    cwd: Path  # the experiment's working directory
    env: Mapping[str, str]  # the child's whole environment
    run_dir: Path  # the run folder in the lab
    source: Path  # the experiment folder: the code the command runs (shipped to remote workers)
    timeout: float | None  # seconds; then SIGTERM, SIGKILL after the grace
    on_line: Callable[[str], None]  # each complete output line, in order
    capture: Capture | None = None  # how on_line finds metrics in a line (remote launchers parse on the worker)
    follow: bool = False  # also copy the output to our stdout
    on_start: Callable[[int], None] | None = None  # the script's pid, once it runs (remote: its pid there)
    on_sample: Callable[[dict[str, float]], None] | None = None  # sys/* metrics; None: do not sample
    sample_every: float = SAMPLE_SECONDS

    @property
    def log_path(self) -> Path:
        return self.run_dir / records.LOG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / records.METRICS_FILE


@runtime_checkable
class Launcher(Protocol):
    """Runs one run's process. Called by `start_run` from the thread that owns the run, once per
    run, with the folder made and the record saying 'running'.

    Returns how the process ended (a crash is a return code, a timeout or a stop is `stopped_by`);
    raises OSError when the command cannot start or its output cannot be written, RunError when
    the place it runs in fails (a lost worker). It must not write run.json: start_run does.
    """

    def launch(self, request: LaunchRequest) -> ProcessResult: ...


class LocalLauncher:
    """The command here, as a child process (what `assay run` does)."""

    def launch(self, request: LaunchRequest) -> ProcessResult:
        return run_process(list(request.command), request.cwd, dict(request.env), request.log_path, request.on_line,
                           request.timeout, request.follow, request.on_start,
                           on_sample=request.on_sample, sample_every=request.sample_every)


class TrialControl:
    """One trial's process as its executor sees it: stop it from outside (prune, cancel) while it runs.

    A launcher calls `started(pid)` when the process runs here (a remote one never does: `stop`
    then only marks the trial, and the launcher stops it where it runs) and `finished()` when it ended.
    """

    def __init__(self, metric: str, watch: Watch | None) -> None:
        self.metric, self.watch = metric, watch
        self.pid: int | None = None
        self.stopped: str | None = None  # "pruned" | "cancelled"
        self.pruned_at: tuple[int, float] | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()

    def started(self, pid: int) -> None:
        with self.lock:
            self.pid = pid
            late = self.stopped
        if late:  # stopped before the process existed
            signal_group(pid, signal.SIGTERM)

    def finished(self) -> None:
        self.done.set()

    def prune(self, step: int, value: float) -> None:
        self.pruned_at = (step, value)
        self.stop("pruned")

    def stop(self, why: str) -> None:
        with self.lock:
            if self.stopped or self.done.is_set():
                return
            self.stopped = why
            pid = self.pid
        if pid is not None:
            signal_group(pid, signal.SIGTERM)  # SIGKILL after the grace a timeout gets, unless it ended by then
            threading.Thread(target=self._kill_later, args=(pid,), daemon=True).start()

    def _kill_later(self, pid: int) -> None:
        if not self.done.wait(GRACE_SECONDS):
            signal_group(pid, signal.SIGKILL)
