"""Executors: where trials run. A local pool of N slots here; Ray in ray_executor.py.

The plug-in point is `Executor` (submit/shutdown). Built-ins are in EXECUTORS (name -> factory);
third parties register a factory under the entry-point group `assay.executors`.
Every trial is an ordinary run: `start_run` in a driver thread makes the folder, writes the
record and the index; an executor only decides where the script's process runs (the RunSpec
`launcher` hook) and which env it gets (one CUDA_VISIBLE_DEVICES per slot).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from assay.errors import PluginError, RunError
from assay.lab import Lab
from assay.runner.launch import RunResult, RunSpec, start_run
from assay.runner.process import GRACE_SECONDS, run_process
from assay.store import records

# (step, value of the primary metric) -> True to stop the trial now (pruning).
Watch = Callable[[int, float], bool]


@runtime_checkable
class Executor(Protocol):
    """Runs trials. The sweep driver (and the loop, trying several candidates at once) calls:

    - submit(spec, watch) from one thread: returns at once; the Future completes with the run's
      RunResult (a crashed script is a status in it) or with the error that kept the run from
      starting (ConfigError, RunError). `watch`, when given and supported, sees each new value of
      the primary metric and may stop the trial; the record then says status 'pruned'.
    - shutdown(cancel) once: waits for submitted trials, or with cancel=True stops running ones
      (records say 'interrupted') and drops queued ones (their Futures are cancelled).
    `slots` is how many trials run at the same time.
    """

    slots: int

    def submit(self, spec: RunSpec, watch: Watch | None = None) -> Future[RunResult]: ...

    def shutdown(self, cancel: bool = False) -> None: ...


def gpu_ids() -> list[str]:
    """GPUs visible to us: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists, else none."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []  # no driver: CPU slots
    return [line.strip() for line in out.splitlines() if line.strip()]


class _Control:
    """One trial's process as seen from outside: stop it (prune, cancel) and watch its metrics."""

    def __init__(self, metric: str, watch: Watch | None) -> None:
        self.metric, self.watch = metric, watch
        self.pid: int | None = None
        self.stopped: str | None = None  # "pruned" | "cancelled"
        self.pruned_at: tuple[int, float] | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()

    def stop(self, why: str) -> None:
        with self.lock:
            if self.stopped or self.done.is_set():
                return
            self.stopped = why
            pid = self.pid
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            # SIGKILL after the same grace a timeout gets, unless the process ended by then.
            threading.Thread(target=self._kill_later, args=(pid,), daemon=True).start()

    def _kill_later(self, pid: int) -> None:
        if not self.done.wait(GRACE_SECONDS):
            _signal_group(pid, signal.SIGKILL)

    def launcher(self, cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path, on_line: Callable[[str], None],
                 timeout: float | None, follow: bool = False, on_start: Callable[[int], None] | None = None,
                 **kw: Any) -> Any:
        """run_process, plus a metrics watcher and a stop from outside."""

        def started(pid: int) -> None:
            with self.lock:
                self.pid = pid
                late = self.stopped
            if on_start:
                on_start(pid)
            if late:
                _signal_group(pid, signal.SIGTERM)

        watcher = None
        if self.watch is not None:
            watcher = threading.Thread(target=self._watch_metrics, args=(log_path.parent.parent,), daemon=True)
            watcher.start()
        try:
            res = run_process(cmd, cwd, env, log_path, on_line, timeout, follow, started, **kw)
        finally:
            self.done.set()
        if watcher is not None:
            watcher.join(timeout=5)
        if self.stopped and res.stopped_by is None:
            res = replace(res, stopped_by="interrupt")
        return res

    def _watch_metrics(self, run_dir: Path) -> None:
        """Follow metrics.jsonl (complete lines only) and hand each new primary value to `watch`."""
        file = run_dir / records.METRICS_FILE
        offset, seen = 0, -1
        api = False  # as in records.metric_series: a value logged through the API wins over captured output
        reported: set[int] = set()
        while not self.done.wait(0.1):
            events, offset = records.new_events(file, offset)
            for ev in events:
                value = (ev.get("m") or {}).get(self.metric)
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                if ev.get("src") != "out":
                    api = True
                elif api:
                    continue
                seen += 1
                step = s if isinstance(s := ev.get("step"), int) else seen
                if step in reported:
                    continue
                reported.add(step)
                assert self.watch is not None
                if self.watch(step, float(value)):
                    self.pruned_at = (step, float(value))
                    self.stop("pruned")
                    return


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class ThreadedExecutor:
    """Shared machinery: N driver threads, each running one trial through `start_run` at a time.
    Subclasses choose the launcher (where the process runs) and the per-slot env."""

    supports_watch = True

    def __init__(self, lab: Lab, slots: int) -> None:
        if slots < 1:
            raise RunError(f"An executor needs at least one slot, got {slots}", "Pass --parallel 1 or more.")
        self.lab, self.slots = lab, slots
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="assay-trial")
        self._free: queue.Queue[int] = queue.Queue()
        for i in range(slots):
            self._free.put(i)
        self._controls: set[_Control] = set()
        self._lock = threading.Lock()
        self._exps: dict[str, Any] = {}

    def slot_env(self, slot: int) -> dict[str, str]:
        return {}

    def launcher(self, control: _Control) -> Callable[..., Any]:
        return control.launcher

    def submit(self, spec: RunSpec, watch: Watch | None = None) -> Future[RunResult]:
        return self._pool.submit(self._run, spec, watch if self.supports_watch else None)

    def _experiment(self, name: str) -> Any:
        from assay.experiment import load_experiment

        with self._lock:
            if name not in self._exps:
                self._exps[name] = load_experiment(self.lab, name)
            return self._exps[name]

    def _run(self, spec: RunSpec, watch: Watch | None) -> RunResult:
        exp = self._experiment(spec.experiment)
        slot = self._free.get()
        control = _Control(exp.metric, watch)
        with self._lock:
            self._controls.add(control)
        try:
            res = start_run(self.lab, exp, replace(spec, env={**self.slot_env(slot), **spec.env},
                                                     launcher=self.launcher(control)))
        finally:
            with self._lock:
                self._controls.discard(control)
            self._free.put(slot)
        if control.stopped == "pruned" and res.status == "interrupted":
            res = _mark_pruned(self.lab, res, exp.metric, control.pruned_at)
        return res

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            with self._lock:
                controls = list(self._controls)
            for c in controls:
                c.stop("cancelled")
        self._pool.shutdown(wait=True, cancel_futures=cancel)


def _mark_pruned(lab: Lab, res: RunResult, metric: str, at: tuple[int, float] | None) -> RunResult:
    """The launching process owns the record: say 'pruned', not 'interrupted', and why."""
    from assay.store.index import Index

    step, value = at if at else (None, None)
    rec = records.RunRecord.from_dict(res.record).with_(
        status=records.Status.PRUNED, reason=f"pruned by the sweep at step {step} ({metric}={value}): worse than earlier trials there")
    records.write_record(res.path, rec)
    record = rec.to_dict()
    with Index(lab) as index:
        index.upsert(res.path, record)
    return RunResult(res.path, record)


class LocalPool(ThreadedExecutor):
    """N parallel slots on this machine (default: one per GPU, else one per CPU core); with GPUs,
    slot i sees only GPU i (CUDA_VISIBLE_DEVICES)."""

    def __init__(self, lab: Lab, slots: int | None = None, **options: Any) -> None:
        if options:
            raise PluginError(f"The local executor takes no options, got {', '.join(sorted(options))}",
                              "Remove them (--address is for --executor ray).")
        self.gpus = gpu_ids()
        super().__init__(lab, slots or len(self.gpus) or os.cpu_count() or 1)

    def slot_env(self, slot: int) -> dict[str, str]:
        if not self.gpus:
            return {}
        return {"CUDA_VISIBLE_DEVICES": self.gpus[slot % len(self.gpus)]}


def _ray(lab: Lab, slots: int | None = None, **options: Any) -> Executor:
    from assay.sweep.ray_executor import RayExecutor

    return RayExecutor(lab, slots, **options)


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalPool, "ray": _ray}


def get_executor(name: str | Executor, lab: Lab, slots: int | None = None, **options: Any) -> Executor:
    """An executor by name (built-in or `assay.executors` entry point), or the instance itself.

    Raises:
        PluginError: unknown name (the message lists the known ones) or bad options.
    """
    if not isinstance(name, str):
        return name
    return executor_factory(name)(lab, slots, **options)


def executor_factory(name: str) -> Callable[..., Executor]:
    """The factory of a built-in or plug-in executor; PluginError (with the known names) otherwise."""
    from assay import plugins

    return plugins.factory("assay.executors", name, EXECUTORS, "executor", "Pass --executor local or --executor ray.")
