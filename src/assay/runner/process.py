"""Launching a command in its own process group, teeing its output to a log, watching its memory,
and stopping the whole group on timeout or interrupt (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    stopped_by: str | None  # "timeout" | "interrupt" | None
    peak_rss: int  # bytes, whole process tree
    peak_gpu_mem: int | None  # bytes, when NVML is available
    pid: int


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the launching assay process dies (Linux), so a killed
    `assay run` leaves no orphaned training job holding a GPU."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class _Pump(threading.Thread):
    """Reads the child's merged stdout/stderr: writes it to the log, hands complete lines to on_line."""

    def __init__(self, fd: int, log_path: Path, on_line: Callable[[str], None], follow: bool) -> None:
        super().__init__(daemon=True)
        self.fd, self.on_line, self.follow = fd, on_line, follow
        self.log = log_path.open("ab", buffering=0)
        self.error: BaseException | None = None

    def run(self) -> None:
        pending = b""
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.log.write(chunk)
                if self.follow:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                pending += chunk
                # Progress bars rewrite a line with \r: each \r-separated piece is a line for capture.
                *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
                for line in lines:
                    self.on_line(line.decode("utf-8", "replace"))
            if pending:
                self.on_line(pending.decode("utf-8", "replace"))
        except BaseException as exc:  # noqa: BLE001 - reported by the runner, never swallowed
            self.error = exc
        finally:
            os.fsync(self.log.fileno())
            self.log.close()
            os.close(self.fd)


class _MemoryWatch:
    """Peak RSS of the process tree (psutil) and peak GPU memory of its pids (NVML, if present)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.peak_gpu: int | None = None
        self.nvml = _nvml()

    def sample(self) -> None:
        ps = self.psutil
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except ps.Error:
            return
        total = 0
        for p in procs:
            with contextlib.suppress(ps.Error):
                total += p.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        if self.nvml is not None:
            used = self.nvml({p.pid for p in procs})
            if used is not None:
                self.peak_gpu = max(self.peak_gpu or 0, used)


_GPU_NODES = ("/dev/nvidiactl", "/dev/dxg")  # the driver's control device; WSL2's GPU device


def _nvml() -> Callable[[set[int]], int | None] | None:
    """A function summing the GPU memory used by a set of pids, or None without NVML/GPUs."""
    if "pynvml" not in sys.modules and not any(os.path.exists(d) for d in _GPU_NODES):
        return None  # no NVIDIA driver here: skip pynvml's ~18 ms import on every run
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - no driver, no library or no GPU: GPU memory is simply not recorded
        return None
    if not handles:
        return None

    def used(pids: set[int]) -> int | None:
        total = 0
        for h in handles:
            try:
                for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(h):
                    if proc.pid in pids and proc.usedGpuMemory:
                        total += proc.usedGpuMemory
            except pynvml.NVMLError:
                return None
        return total

    return used


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def run_process(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    on_line: Callable[[str], None],
    timeout: float | None,
    follow: bool = False,
    on_start: Callable[[int], None] | None = None,
    grace: float = GRACE_SECONDS,
) -> ProcessResult:
    """Run `cmd` to completion; see module docstring. Ctrl-C / SIGTERM stop the child, not us."""
    stop: list[str] = []
    # Trap Ctrl-C/SIGTERM before the script exists: one arriving in between would otherwise kill
    # assay and leave the run 'lost' instead of 'interrupted'.
    restore = _trap_signals(stop)
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=write_fd,
                                stderr=write_fd, start_new_session=True, preexec_fn=_die_with_parent)
    except BaseException:
        restore()
        raise
    finally:
        os.close(write_fd)
    pump = _Pump(read_fd, log_path, on_line, follow)
    pump.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    kill_at: float | None = None
    interval = 0.005
    rusage_rss = 0
    try:
        if on_start:
            on_start(proc.pid)
        watch = _MemoryWatch(proc.pid)
        while True:
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                rusage_rss = usage.ru_maxrss * 1024  # KiB on Linux
                break
            watch.sample()
            now = time.monotonic()
            if not stop and deadline is not None and now >= deadline:
                stop.append("timeout")
            if stop and kill_at is None:
                # Ctrl-C reaches the script as a Ctrl-C would; a timeout as SIGTERM. SIGKILL after grace.
                _signal_group(proc.pid, signal.SIGINT if stop[0] == "interrupt" else signal.SIGTERM)
                kill_at = now + grace
            if "kill" in stop and kill_at is not None:
                kill_at = min(kill_at, now)
            if kill_at is not None and now >= kill_at:
                _signal_group(proc.pid, signal.SIGKILL)
            if pump.is_alive():  # wakes as soon as the output closes, which is (nearly always) the exit
                pump.join(timeout=interval)
            else:
                time.sleep(interval)
            interval = min(interval * 1.5, 0.2)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)  # never leave a script running unwatched
        raise
    finally:
        restore()
    if stop:  # leftovers of the group (grandchildren that ignored SIGTERM)
        _signal_group(proc.pid, signal.SIGKILL)
    pump.join(timeout=10)
    if pump.error is not None:
        raise pump.error
    return ProcessResult(proc.returncode if proc.returncode is not None else -1, stop[0] if stop else None,
                         max(watch.peak_rss, rusage_rss), watch.peak_gpu, proc.pid)


def _trap_signals(stop: list[str]) -> Callable[[], None]:
    """Turn SIGINT/SIGTERM to assay into a graceful stop of the child (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        if not stop:
            stop.append("interrupt")
        elif signum == signal.SIGINT:  # a second Ctrl-C: no more grace
            stop.append("kill")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(s, h) for s, h in old.items()] and None
