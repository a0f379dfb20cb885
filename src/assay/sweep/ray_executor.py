"""The Ray executor: trials as Ray tasks with CPU/GPU resources; the driver owns the store.

A task runs the script in a scratch folder on its worker and returns the process result and every
file the run produced (log, metrics.jsonl, plots, ...). The driver writes them into the run folder,
captures metrics from the returned output and writes the record and the index, so workers never
touch the lab's SQLite file. Workers need the experiment's scripts and Python at the same paths
(a shared filesystem, as on most clusters; trivially true for a local Ray instance).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.errors import PluginError, RunError
from assay.lab import Lab
from assay.runner.process import ProcessResult
from assay.store import records
from assay.sweep.executors import ThreadedExecutor, _Control

MAX_RETURNED_BYTES = 512 * 1024 * 1024  # files bigger than this stay on the worker (named in the log)
_remote_lock = threading.Lock()
_remote_fn: Any = None


class _WorkerWatch:
    """On the worker: each new value of the primary metric (logged through the API into the scratch
    metrics.jsonl, or printed and captured) goes to the driver's mailbox; when the driver's sampler
    says prune, the script's process group is stopped (SIGTERM, SIGKILL after the grace)."""

    def __init__(self, mailbox: Any, key: str, metric: str, capture: Any, metrics_file: Path) -> None:
        self.mailbox, self.key, self.metric, self.capture, self.file = mailbox, key, metric, capture, metrics_file
        self.pid: int | None = None
        self.pruned = False
        self.api = False  # as locally: once the API logs the metric, printed values of it are ignored
        self.seen = -1
        self.reported: set[int] = set()
        self.lock = threading.Lock()
        self.done = threading.Event()

    def started(self, pid: int) -> None:
        self.pid = pid
        threading.Thread(target=self._follow, daemon=True).start()

    def line(self, line: str) -> None:
        if self.capture is None or self.api:
            return
        step, found = self.capture.parse(line)
        if self.metric in found:
            self._report(step, found[self.metric])

    def _follow(self) -> None:
        offset = 0
        while not self.done.wait(0.2):
            events, offset = records.new_events(self.file, offset)
            for ev in events:
                value = (ev.get("m") or {}).get(self.metric)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.api = True
                    self._report(ev.get("step") if isinstance(ev.get("step"), int) else None, value)
            if not self.pruned:  # the driver may have decided after this trial's last report
                import ray

                if ray.get(self.mailbox.stopped.remote(self.key)):
                    self._prune()

    def _report(self, step: int | None, value: float) -> None:
        import ray

        with self.lock:
            self.seen += 1
            step = self.seen if step is None else step
            if step in self.reported or self.pruned:
                return
            self.reported.add(step)
        if ray.get(self.mailbox.report.remote(self.key, step, float(value))):
            self._prune()

    def _prune(self) -> None:
        import signal

        from assay.runner.process import GRACE_SECONDS
        from assay.sweep.executors import _signal_group

        with self.lock:
            if self.pruned or self.pid is None:
                return
            self.pruned = True
        _signal_group(self.pid, signal.SIGTERM)
        if not self.done.wait(GRACE_SECONDS):
            _signal_group(self.pid, signal.SIGKILL)


def _run_on_worker(cmd: list[str], cwd: str, env: dict[str, str], timeout: float | None,
                   watch: tuple[Any, str, str, Any] | None = None) -> dict[str, Any]:
    """Body of the Ray task (runs on a worker): the script in a scratch run folder, files returned.
    `watch` = (mailbox, trial key, primary metric, capture) streams the metric back for pruning."""
    import shutil
    import tempfile

    from assay.runner.process import run_process

    scratch = Path(tempfile.mkdtemp(prefix="assay-ray-"))
    watcher = _WorkerWatch(*watch, scratch / records.METRICS_FILE) if watch else None
    try:
        for sub in records.SUBDIRS:
            (scratch / sub).mkdir()
        child_env = {**os.environ, **env, "ASSAY_RUN_DIR": str(scratch)}
        try:
            res = run_process(cmd, Path(cwd), child_env, scratch / records.LOG_FILE,
                              watcher.line if watcher else lambda line: None, timeout,
                              on_start=watcher.started if watcher else None)
        finally:
            if watcher:
                watcher.done.set()
        files: dict[str, bytes] = {}
        skipped: list[str] = []
        for p in sorted(scratch.rglob("*")):
            if p.is_file():
                rel = str(p.relative_to(scratch))
                if p.stat().st_size > MAX_RETURNED_BYTES:
                    skipped.append(rel)
                else:
                    files[rel] = p.read_bytes()
        return {"returncode": res.returncode, "stopped_by": res.stopped_by, "peak_rss": res.peak_rss,
                "peak_gpu_mem": res.peak_gpu_mem, "pid": res.pid, "files": files, "skipped": skipped,
                "node": os.uname().nodename, "pruned": bool(watcher and watcher.pruned),
                "cpu_seconds": res.cpu_seconds, "gpus": res.gpus}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remote(ray: Any) -> Any:
    global _remote_fn
    with _remote_lock:
        if _remote_fn is None:
            _remote_fn = ray.remote(max_retries=0)(_run_on_worker)
        return _remote_fn


class _Mailbox:
    """A Ray actor between the trials' workers and the driver: workers post (trial, step, value);
    the driver drains the posts, asks its sampler, and marks the trials to prune."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, int, float]] = []
        self.stops: set[str] = set()

    def report(self, key: str, step: int, value: float) -> bool:
        self.posts.append((key, step, value))
        return key in self.stops

    def drain(self) -> list[tuple[str, int, float]]:
        out, self.posts = self.posts, []
        return out

    def stop(self, key: str) -> None:
        self.stops.add(key)

    def stopped(self, key: str) -> bool:
        return key in self.stops


class RayExecutor(ThreadedExecutor):
    """`--executor ray [--address ...]`: `slots` trials in flight, each a task asking for
    `cpus` CPUs and `gpus` GPUs (Ray sets CUDA_VISIBLE_DEVICES for the task)."""

    supports_watch = True  # the workers post the primary metric to a mailbox actor as it is logged

    def __init__(self, lab: Lab, slots: int | None = None, address: str | None = None, cpus: float = 1,
                 gpus: float = 0, **options: Any) -> None:
        if options:
            raise PluginError(f"The ray executor takes address, cpus and gpus; got {', '.join(sorted(options))}",
                              "Pass --address ray://host:10001 or leave it out for a local Ray instance.")
        try:
            import ray
        except ImportError:
            raise PluginError("--executor ray needs Ray, which is not installed", "pip install 'assay[ray]'") from None
        self.ray = ray
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            except ConnectionError as exc:
                raise RunError(f"Cannot reach the Ray cluster at {address}: {exc}",
                               "Start it (ray start --head) or fix --address.") from None
        self.cpus, self.gpus = cpus, gpus
        if slots is None:
            total = ray.cluster_resources()
            by_cpu = int(total.get("CPU", 1) // max(cpus, 1e-9)) if cpus else 1
            by_gpu = int(total.get("GPU", 0) // gpus) if gpus else by_cpu
            slots = max(1, min(by_cpu, by_gpu))
        super().__init__(lab, slots)
        self._refs: dict[int, Any] = {}
        self._watched: dict[str, _Control] = {}
        self._mailbox: Any = None
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()

    def _watch(self, control: _Control, capture: Any) -> tuple[Any, str, str, Any]:
        """Register a trial whose metric the sampler watches; the mailbox and its poller start once."""
        key = f"{os.getpid()}-{id(control)}"
        with self._lock:
            if self._mailbox is None:
                self._mailbox = self.ray.remote(num_cpus=0)(_Mailbox).remote()
                self._poller = threading.Thread(target=self._poll, daemon=True)
                self._poller.start()
            self._watched[key] = control
        return self._mailbox, key, control.metric, capture

    def _poll(self) -> None:
        """Hand the workers' posts to each trial's watch (the sampler); mark the ones it prunes."""
        while not self._closing.wait(0.2):
            try:
                posts = self.ray.get(self._mailbox.drain.remote())
            except Exception:  # noqa: BLE001 - Ray going down with the sweep: nothing left to watch
                return
            for key, step, value in posts:
                with self._lock:
                    control = self._watched.get(key)
                if control is None or control.watch is None or control.stopped:
                    continue
                if control.watch(step, value):
                    control.pruned_at = (step, value)
                    control.stop("pruned")  # no local pid: marks it; the worker stops the process
                    self._mailbox.stop.remote(key)

    def launcher(self, control: _Control) -> Callable[..., Any]:
        ray = self.ray

        def launch(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path, on_line: Callable[[str], None],
                   timeout: float | None, follow: bool = False, on_start: Callable[[int], None] | None = None,
                   **kw: Any) -> ProcessResult:
            # Only what assay set travels: the worker keeps its own PATH, HOME, CUDA_VISIBLE_DEVICES...
            ours = {k: v for k, v in env.items() if os.environ.get(k) != v and k != "CUDA_VISIBLE_DEVICES"}
            watch = self._watch(control, getattr(on_line, "capture", None)) if control.watch else None
            ref = _remote(ray).options(num_cpus=self.cpus, num_gpus=self.gpus).remote(cmd, str(cwd), ours, timeout, watch)
            with self._lock:
                self._refs[id(control)] = ref
            try:
                out = ray.get(ref)
            except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError):
                return ProcessResult(-9, "interrupt", 0, None, -1)
            except ray.exceptions.RayTaskError as exc:
                raise RunError(f"The Ray task of this trial failed: {exc}", "See the Ray worker logs.") from None
            finally:
                with self._lock:
                    self._refs.pop(id(control), None)
                    if watch:
                        self._watched.pop(watch[1], None)
            _unpack(out, log_path, on_line)
            # Ray may kill the task's children before the task itself: a cancelled or pruned trial is interrupted.
            stopped_by = out["stopped_by"] or ("interrupt" if control.stopped or out.get("pruned") else None)
            return ProcessResult(out["returncode"], stopped_by, out["peak_rss"], out["peak_gpu_mem"], out["pid"],
                                 cpu_seconds=out.get("cpu_seconds"), gpus=out.get("gpus"))

        return launch

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            with self._lock:
                controls, refs = list(self._controls), list(self._refs.values())
            for c in controls:  # mark first (no local pid: nothing is signalled), then cancel
                c.stop("cancelled")
            for ref in refs:
                self.ray.cancel(ref, force=True)
        super().shutdown(cancel)
        self._closing.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self._mailbox is not None:
            self.ray.kill(self._mailbox)
        if self.owns_ray:
            self.ray.shutdown()


def _unpack(out: dict[str, Any], log_path: Path, on_line: Callable[[str], None]) -> None:
    """Write the worker's files into the run folder; replay its output through metric capture."""
    run_dir = log_path.parent.parent
    files: dict[str, bytes] = out["files"]
    log = files.pop(records.LOG_FILE, b"")
    metrics = files.pop(records.METRICS_FILE, b"")
    for rel, data in files.items():
        dst = run_dir / rel
        if dst.name == records.RECORD_FILE and dst.parent == run_dir:
            continue  # the driver writes the record
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    if metrics:
        with (run_dir / records.METRICS_FILE).open("ab") as fh:
            fh.write(metrics if metrics.endswith(b"\n") else metrics[: metrics.rfind(b"\n") + 1])
    note = b"".join(f"[assay] {rel} stayed on worker {out['node']} (too large to return)\n".encode() for rel in out["skipped"])
    with log_path.open("ab") as fh:
        fh.write(log + note)
    text = log.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n") if text else []
    for line in lines[:-1] if text.endswith("\n") else lines:
        on_line(line)
