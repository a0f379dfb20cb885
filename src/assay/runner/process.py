"""Launching a command in its own process group, teeing its output to a log, watching its memory,
and stopping the whole group on timeout or interrupt (SIGTERM, then SIGKILL).

When the command ends, processes it left behind are ended too, including daemons that escaped
its session with `setsid` or a double fork: they are found by a per-run marker in their
environment, by the command's session, and by the snapshots of its process tree taken while it ran.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GRACE_SECONDS = 5.0
LEFTOVER_GRACE_SECONDS = 1.0  # SIGTERM to processes left behind, then SIGKILL
LINE_CAP = 1 << 20  # longer output lines are logged but not parsed for metrics (keeps reading linear)
DRAIN_SECONDS = 2.0  # output still read after the command ended, while something keeps writing it
MARKER_ENV = "ASSAY_PROCESS_MARKER"  # inherited by every process the command starts, escaped or not


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    stopped_by: str | None  # "timeout" | "interrupt" | None
    peak_rss: int  # bytes, whole process tree
    peak_gpu_mem: int | None  # bytes, when NVML is available
    pid: int
    oom_kills: int | None = None  # OOM kills in our cgroup during the run (None: its memory events are unreadable)
    leftovers: tuple[str, ...] = ()  # "pid name" of processes left behind by the command and ended by us
    cpu_seconds: float | None = None  # user+system CPU time of the process tree (None: not measured)
    gpus: int | None = None  # GPUs the run was given (None: not known to the launcher)


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the launching assay process dies (Linux), so a killed
    `assay run` leaves no orphaned training job holding a GPU."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class _Pump(threading.Thread):
    """Reads the child's merged stdout/stderr: writes every byte to the log, hands complete lines of
    up to `line_cap` bytes to on_line (a longer line is only logged: parsing it would cost more
    than it could be worth, and holding it would make reading quadratic).

    Reading ends at end of output, or once `finish()` was called and the output is idle (or still
    flowing after DRAIN_SECONDS): a process outside our reach may hold the pipe open forever."""

    def __init__(self, fd: int, log_path: Path, on_line: Callable[[str], None], follow: bool,
                 line_cap: int = LINE_CAP) -> None:
        super().__init__(daemon=True)
        self.fd, self.on_line, self.follow, self.line_cap = fd, on_line, follow, line_cap
        self.log = log_path.open("ab", buffering=0)
        self.error: BaseException | None = None
        self.finishing = threading.Event()
        self.drain_until = float("inf")
        self.pending = bytearray()
        self.overlong = False  # the current line passed line_cap: skip it up to its end

    def finish(self) -> None:
        """The command has ended: stop reading once its output goes quiet."""
        self.drain_until = time.monotonic() + DRAIN_SECONDS
        self.finishing.set()

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        try:
            while True:
                if not poller.poll(50 if self.finishing.is_set() else 200):
                    if self.finishing.is_set():
                        break
                    continue
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.log.write(chunk)
                if self.follow:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                self._split(chunk)
                if time.monotonic() > self.drain_until:
                    break
            if self.pending and not self.overlong:
                self.on_line(self.pending.decode("utf-8", "replace"))
        except BaseException as exc:  # noqa: BLE001 - reported by the runner, never swallowed
            self.error = exc
        finally:
            os.fsync(self.log.fileno())
            self.log.close()
            os.close(self.fd)

    def _split(self, chunk: bytes) -> None:
        """Cut a chunk into lines, carrying the unfinished one; each byte is looked at a bounded
        number of times, whatever the line lengths."""
        # Progress bars rewrite a line with \r: each \r-separated piece is a line for capture.
        # (A \r\n split across two chunks gives an extra empty line, which holds no metric.)
        *lines, last = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        for part in lines:
            if not self.overlong and len(self.pending) + len(part) <= self.line_cap:
                self.pending += part
                self.on_line(self.pending.decode("utf-8", "replace"))
            self.pending.clear()
            self.overlong = False
        if self.overlong:
            return
        if len(self.pending) + len(last) > self.line_cap:
            self.pending.clear()
            self.overlong = True
        else:
            self.pending += last


class _MemoryWatch:
    """Peak RSS of the process tree (psutil) and peak GPU memory of its pids (NVML, if present)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.peak_gpu: int | None = None
        self.nvml = _nvml()
        self.seen: dict[int, Any] = {}  # pid -> psutil.Process of every descendant seen (see _leftovers)
        self.rss = 0  # bytes, at the last sample
        self.gpu_mem: int | None = None
        self.cpu_seconds: dict[int, float] = {}  # pid -> user+system CPU seconds at the last sample
        # pid -> CPU seconds of every descendant at its last sample: counts processes that exit
        # without being waited for by the tree (daemons), which the root's rusage leaves out
        self.cpu_seen: dict[int, float] = {}
        self.gpu_devices: set[int] = set()  # devices NVML saw the tree on (counted when CUDA_VISIBLE_DEVICES is unset)

    def sample(self) -> None:
        ps = self.psutil
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except ps.Error:
            return
        for p in procs[1:]:
            self.seen.setdefault(p.pid, p)
            with contextlib.suppress(ps.Error):
                t = p.cpu_times()
                self.cpu_seen[p.pid] = t.user + t.system
        total = 0
        for p in procs:
            with contextlib.suppress(ps.Error):
                total += p.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        self.rss = total
        if self.nvml is not None:
            used = self.nvml({p.pid for p in procs}, self.gpu_devices)
            self.gpu_mem = used
            if used is not None:
                self.peak_gpu = max(self.peak_gpu or 0, used)

    def system(self, elapsed: float) -> dict[str, float]:
        """The `sys/*` metrics now: CPU % of the tree over the last `elapsed` seconds (100 = one
        core), RSS and GPU memory in MB, GPU utilisation % of the devices the tree uses."""
        ps = self.psutil
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except ps.Error:
            return {}
        used, now = 0.0, {}
        for p in procs:
            with contextlib.suppress(ps.Error):
                t = p.cpu_times()
                now[p.pid] = t.user + t.system
                used += now[p.pid] - self.cpu_seconds.get(p.pid, 0.0 if self.cpu_seconds else now[p.pid])
        self.cpu_seconds = now
        out = {"sys/cpu_percent": round(max(0.0, used) / elapsed * 100, 1) if elapsed > 0 else 0.0,
               "sys/rss_mb": round(self.rss / 2**20, 1)}
        if self.gpu_mem is not None:
            out["sys/gpu_mem_mb"] = round(self.gpu_mem / 2**20, 1)
            util = _gpu_util({p.pid for p in procs})
            if util is not None:
                out["sys/gpu_util"] = util
        return out


def _gpu_util(pids: set[int]) -> float | None:
    """Mean utilisation % of the GPUs running one of `pids` (NVML is initialised by _nvml)."""
    import pynvml

    rates = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            if any(p.pid in pids for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)):
                rates.append(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
    except pynvml.NVMLError:
        return None
    return float(sum(rates) / len(rates)) if rates else None


SAMPLE_SECONDS = 5.0  # how often the sys/* metrics of a run are written

_GPU_NODES = ("/dev/nvidiactl", "/dev/dxg")  # the driver's control device; WSL2's GPU device


def _nvml() -> Callable[..., int | None] | None:
    """A function summing the GPU memory used by a set of pids (and adding the indices of the
    devices they use to its optional second argument), or None without NVML/GPUs."""
    if "pynvml" not in sys.modules and not any(os.path.exists(d) for d in _GPU_NODES):
        return None  # no NVIDIA driver here: skip pynvml's ~18 ms import on every run
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - no driver, no library or no GPU: GPU memory is simply not recorded
        return None
    if not handles:
        return None

    def used(pids: set[int], devices: set[int] | None = None) -> int | None:
        total = 0
        for i, h in enumerate(handles):
            try:
                for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(h):
                    if proc.pid in pids and devices is not None:
                        devices.add(i)
                    if proc.pid in pids and proc.usedGpuMemory:
                        total += proc.usedGpuMemory
            except pynvml.NVMLError:
                return None
        return total

    return used


def oom_kill_count() -> int | None:
    """How many processes of our memory cgroup the kernel's OOM killer has ended so far (cgroup v2
    memory.events, else v1 memory.oom_control); None when neither is readable. A run's script
    stays in our cgroup, so an increase over the run says its SIGKILL came from the OOM killer."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2; inside a cgroup namespace the mount root is our own cgroup
            candidates += [f"/sys/fs/cgroup{path.rstrip('/')}/memory.events", "/sys/fs/cgroup/memory.events"]
        elif "memory" in controllers.split(","):
            candidates += [f"/sys/fs/cgroup/memory{path.rstrip('/')}/memory.oom_control",
                           "/sys/fs/cgroup/memory/memory.oom_control"]
    for file in candidates:
        try:
            text = Path(file).read_text()
        except OSError:
            continue
        for row in text.splitlines():
            key, _, value = row.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def _leftovers(root: int, marker: str, seen: dict[int, Any], since: float) -> list[Any]:
    """Processes the command started that are still alive after it ended: in its session, holding
    its marker in their environment (setsid and double-forked daemons too), or seen in its tree.
    Only our own processes created after the command started: a reused pid is never one of them."""
    import psutil

    found: dict[int, Any] = {}
    needle = f"{MARKER_ENV}={marker}".encode() + b"\0"
    uid = os.getuid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (root, os.getpid()):
            continue
        pid = int(name)
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            ours = os.getsid(pid) == root
            if not ours:
                with open(f"/proc/{name}/environ", "rb") as fh:
                    ours = needle in fh.read()
        except OSError:  # gone, or not ours to read
            continue
        if ours:
            with contextlib.suppress(psutil.Error):
                found[pid] = psutil.Process(pid)
    for pid, proc in seen.items():
        found.setdefault(pid, proc)  # is_running, in _alive, also compares the start time: a reused pid is not it
    out = []
    for proc in found.values():
        with contextlib.suppress(psutil.Error):
            if proc.create_time() >= since - 1 and _alive(proc):
                out.append(proc)
    return out


def _end_leftovers(procs: list[Any]) -> tuple[str, ...]:
    """SIGTERM, then SIGKILL after LEFTOVER_GRACE_SECONDS; returns "pid name" of each."""
    import psutil

    names = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            names.append(f"{proc.pid} {proc.name()}")
            proc.terminate()
    deadline, pause = time.monotonic() + LEFTOVER_GRACE_SECONDS, 0.002
    while procs and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
        procs = [p for p in procs if _alive(p)]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return tuple(names)


def _alive(proc: Any) -> bool:
    """Running and not a zombie (an orphan's zombie waits for a reaper that is not us)."""
    import psutil

    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def signal_group(pid: int, sig: int) -> None:
    """Send `sig` to the process group `pid` leads (a run's script and its children); gone is fine."""
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
    grace: float | None = None,
    on_sample: Callable[[dict[str, float]], None] | None = None,
    sample_every: float = SAMPLE_SECONDS,
) -> ProcessResult:
    """Run `cmd` to completion; see module docstring. Ctrl-C / SIGTERM stop the child, not us.

    `on_sample` gets the `sys/*` metrics (CPU %, RSS, GPU utilisation and memory) every
    `sample_every` seconds while the script runs. `grace`: seconds between SIGTERM and SIGKILL
    (default GRACE_SECONDS, read at the call so that a setting made after import applies)."""
    grace = GRACE_SECONDS if grace is None else grace
    stop: list[str] = []
    # Trap Ctrl-C/SIGTERM before the script exists: one arriving in between would otherwise kill
    # assay and leave the run 'lost' instead of 'interrupted'.
    restore = _trap_signals(stop)
    marker = uuid.uuid4().hex
    env = {**env, MARKER_ENV: marker}
    oom_before = oom_kill_count()
    launched = time.time()
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
    rusage_cpu = 0.0
    try:
        if on_start:
            on_start(proc.pid)
        watch = _MemoryWatch(proc.pid)
        last_sample = time.monotonic()
        if on_sample:
            watch.system(0.0)  # the CPU-time baseline
        while True:
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                rusage_rss = usage.ru_maxrss * 1024  # KiB on Linux
                rusage_cpu = usage.ru_utime + usage.ru_stime  # the script and the children it waited for
                break
            watch.sample()
            now = time.monotonic()
            if on_sample and now - last_sample >= sample_every:
                on_sample(watch.system(now - last_sample))
                last_sample = now
            if not stop and deadline is not None and now >= deadline:
                stop.append("timeout")
            if stop and kill_at is None:
                # Ctrl-C reaches the script as a Ctrl-C would; a timeout as SIGTERM. SIGKILL after grace.
                signal_group(proc.pid, signal.SIGINT if stop[0] == "interrupt" else signal.SIGTERM)
                kill_at = now + grace
            if "kill" in stop and kill_at is not None:
                kill_at = min(kill_at, now)
            if kill_at is not None and now >= kill_at:
                signal_group(proc.pid, signal.SIGKILL)
            if pump.is_alive():  # wakes as soon as the output closes, which is (nearly always) the exit
                pump.join(timeout=interval)
            else:
                time.sleep(interval)
            interval = min(interval * 1.5, 0.2)
    except BaseException:
        signal_group(proc.pid, signal.SIGKILL)  # never leave a script running unwatched
        raise
    finally:
        restore()
    if stop:  # leftovers of the group (grandchildren that ignored SIGTERM)
        signal_group(proc.pid, signal.SIGKILL)
    oom_after = oom_kill_count()
    leftovers = _end_leftovers(_leftovers(proc.pid, marker, watch.seen, launched))
    pump.finish()
    pump.join(timeout=10)
    if pump.error is not None:
        raise pump.error
    return ProcessResult(proc.returncode if proc.returncode is not None else -1, stop[0] if stop else None,
                         max(watch.peak_rss, rusage_rss), watch.peak_gpu, proc.pid,
                         oom_kills=None if oom_before is None or oom_after is None else oom_after - oom_before,
                         leftovers=leftovers, cpu_seconds=max(rusage_cpu, sum(watch.cpu_seen.values())),
                         gpus=_given_gpus(env, watch.gpu_devices))


def _given_gpus(env: dict[str, str], used: set[int]) -> int:
    """GPUs the run was given: those CUDA_VISIBLE_DEVICES names, else (unset: it could see every
    GPU) the devices NVML saw its processes on; 0 on a machine without GPUs."""
    from assay.cost import visible_gpus

    given = visible_gpus(env)
    return len(used) if given is None else given


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

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
