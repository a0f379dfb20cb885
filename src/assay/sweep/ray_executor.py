"""The Ray executor: trials as Ray tasks with CPU/GPU resources; the driver owns the lab.

Workers need not share a disk with the driver. A task gets the trial's code (a CodeSnapshot: the
commit as a git bundle plus the uncommitted patch, or the experiment folder's files outside git),
recreates it in a scratch folder on its worker, runs the script there with its paths pointed at
that folder and a scratch run folder, and returns how the process ended and the run's files (log,
metrics.jsonl, plots, artifacts...) as one tar.gz through Ray's object store. The driver unpacks it
into the run folder, captures metrics from the returned output and writes the record and the
index, as for a local run. Workers need Python, git and assay installed, not the lab.

While a trial runs, only its primary metric reaches the driver (through a mailbox actor, for
pruning); its log and metrics.jsonl arrive in the lab when it ends.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import PluginError, RunError
from assay.gitops import CodeSnapshot, snapshot_code
from assay.lab import Lab
from assay.runner.control import GRACE_SECONDS, Launcher, LaunchRequest, ProcessResult, TrialControl, signal_group
from assay.store import records
from assay.sweep.executors import ThreadedExecutor

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

        with self.lock:
            if self.pruned or self.pid is None:
                return
            self.pruned = True
        signal_group(self.pid, signal.SIGTERM)
        if not self.done.wait(GRACE_SECONDS):
            signal_group(self.pid, signal.SIGKILL)


@dataclass(frozen=True)
class _Job:
    """What a worker needs to run one trial: no path in it has to exist on the worker."""

    command: tuple[str, ...]
    cwd: str  # on the driver, under code.root
    env: dict[str, str]  # what assay set (the worker keeps its own PATH, HOME, CUDA_VISIBLE_DEVICES...)
    run_dir: str  # the run folder on the driver
    timeout: float | None


def _run_on_worker(job: _Job, code: CodeSnapshot, watch: tuple[Any, str, str, Any] | None = None) -> dict[str, Any]:
    """Body of the Ray task (runs on a worker): the code recreated and the script run in a scratch
    folder, the run's files returned as a tar.gz. `watch` = (mailbox, trial key, primary metric,
    capture) streams the metric back for pruning."""
    import shutil
    import tempfile

    from assay.runner.process import run_process

    base = Path(tempfile.mkdtemp(prefix="assay-ray-"))
    scratch = base / "run"
    watcher = _WorkerWatch(*watch, scratch / records.METRICS_FILE) if watch else None
    try:
        for sub in records.SUBDIRS:
            (scratch / sub).mkdir(parents=True)
        src = code.materialise(base / "code")
        moved = _Relocate({job.run_dir: str(scratch), code.root: str(src)})
        cmd = [moved(a) for a in job.command]
        if os.path.isabs(cmd[0]) and not os.path.exists(cmd[0]) and os.path.basename(cmd[0]).startswith("python"):
            cmd[0] = sys.executable  # the driver's interpreter is not here: the worker's runs the script
        env = {k: moved(v) for k, v in job.env.items()}
        if env.get("ASSAY_LAB") == job.env.get("ASSAY_LAB"):
            env.pop("ASSAY_LAB", None)  # the lab is not on this machine
        child_env = {**os.environ, **env, "ASSAY_RUN_DIR": str(scratch)}
        try:
            res = run_process(cmd, Path(moved(job.cwd)), child_env, scratch / records.LOG_FILE,
                              watcher.line if watcher else lambda line: None, job.timeout,
                              on_start=watcher.started if watcher else None)
        finally:
            if watcher:
                watcher.done.set()
        archive, skipped = _pack(scratch)
        return {"returncode": res.returncode, "stopped_by": res.stopped_by, "peak_rss": res.peak_rss,
                "peak_gpu_mem": res.peak_gpu_mem, "pid": res.pid, "archive": archive, "skipped": skipped,
                "node": os.uname().nodename, "pruned": bool(watcher and watcher.pruned),
                "cpu_seconds": res.cpu_seconds, "gpus": res.gpus}
    finally:
        shutil.rmtree(base, ignore_errors=True)


class _Relocate:
    """Rewrites driver paths in a string (argument, env value) to where they are on the worker;
    the longest match first (the run folder lies inside the repository)."""

    def __init__(self, moves: dict[str, str]) -> None:
        self.moves = sorted(moves.items(), key=lambda kv: -len(kv[0]))
        # A path ends at a separator, the string's end, or a character no path name uses here.
        self.pattern = re.compile("|".join(f"({re.escape(old)})(?=/|$|[\\s,:;=\"'])" for old, _ in self.moves))

    def __call__(self, text: str) -> str:
        return self.pattern.sub(self._new, text) if self.moves else text

    def _new(self, match: re.Match[str]) -> str:
        assert match.lastindex is not None  # every alternative of the pattern is a group
        return self.moves[match.lastindex - 1][1]


def _pack(scratch: Path) -> tuple[bytes, list[str]]:
    """The run's files as a tar.gz (relative to the run folder), and those too large to return."""
    import io
    import tarfile

    buf, skipped = io.BytesIO(), []
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for p in sorted(scratch.rglob("*")):
            if not p.is_file() or p.is_symlink():
                continue
            rel = str(p.relative_to(scratch))
            if p.stat().st_size > MAX_RETURNED_BYTES:
                skipped.append(rel)
            else:
                tar.add(p, arcname=rel, recursive=False)
    return buf.getvalue(), skipped


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
        self._code: dict[str, Any] = {}  # CodeSnapshot digest -> its ObjectRef: one copy per code version
        self._watched: dict[str, TrialControl] = {}
        self._mailbox: Any = None
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()

    def _watch(self, control: TrialControl, capture: Any) -> tuple[Any, str, str, Any]:
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
                    control.prune(step, value)  # no local pid: marks it; the worker stops the process
                    self._mailbox.stop.remote(key)

    def launcher(self, control: TrialControl) -> Launcher:
        return _RayLauncher(self, control)

    def code_ref(self, source: Path) -> Any:
        """The ObjectRef of the experiment's code as it is now, put in the object store once per version."""
        code = snapshot_code(source)
        key = code.digest
        with self._lock:
            if key not in self._code:
                self._code[key] = self.ray.put(code)
            return self._code[key]

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


class _RayLauncher:
    """One trial's process as a Ray task (see the module docstring)."""

    def __init__(self, executor: RayExecutor, control: TrialControl) -> None:
        self.ex, self.control = executor, control

    def launch(self, request: LaunchRequest) -> ProcessResult:
        ex, control, ray = self.ex, self.control, self.ex.ray
        # Only what assay set travels: the worker keeps its own PATH, HOME, CUDA_VISIBLE_DEVICES...
        ours = {k: v for k, v in request.env.items() if os.environ.get(k) != v and k != "CUDA_VISIBLE_DEVICES"}
        job = _Job(request.command, str(request.cwd), ours, str(request.run_dir), request.timeout)
        code = ex.code_ref(request.source)
        watch = ex._watch(control, request.capture) if control.watch else None
        ref = _remote(ray).options(num_cpus=ex.cpus, num_gpus=ex.gpus).remote(job, code, watch)
        with ex._lock:
            ex._refs[id(control)] = ref
        try:
            out = ray.get(ref)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError):
            return ProcessResult(-9, "interrupt", 0, None, -1)
        except ray.exceptions.RayTaskError as exc:
            raise RunError(f"The Ray task of this trial failed: {exc}", "See the Ray worker logs.") from None
        finally:
            control.finished()
            with ex._lock:
                ex._refs.pop(id(control), None)
                if watch:
                    ex._watched.pop(watch[1], None)
        _unpack(out, request)
        # Ray may kill the task's children before the task itself: a cancelled or pruned trial is interrupted.
        stopped_by = out["stopped_by"] or ("interrupt" if control.stopped or out.get("pruned") else None)
        return ProcessResult(out["returncode"], stopped_by, out["peak_rss"], out["peak_gpu_mem"], out["pid"],
                             cpu_seconds=out.get("cpu_seconds"), gpus=out.get("gpus"))


def _unpack(out: dict[str, Any], request: LaunchRequest) -> None:
    """Write the worker's files into the run folder; replay its output through metric capture."""
    import io
    import tarfile

    run_dir, log_path, on_line = request.run_dir, request.log_path, request.on_line
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(out["archive"]), mode="r:gz") as tar:
        for member in tar.getmembers():
            rel = os.path.normpath(member.name)
            member_file = tar.extractfile(member) if member.isfile() else None
            if member_file is not None and not rel.startswith(("/", "..")):  # a name outside the run folder is not the run's
                files[rel] = member_file.read()
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
