"""Executors: where trials run. A local pool of N slots here; Ray in ray_executor.py.

The plug-in point is `Executor` (submit/shutdown). Built-ins are in EXECUTORS (name -> factory,
or "module:attribute" for those loaded only when named); third parties register a factory under
the entry-point group `assay.executors`. Every trial is an ordinary run: `start_run` in a driver
thread makes the folder, writes the record and the index; an executor only decides where the
script's process runs (a `Launcher`, see assay.runner.control) and which env it gets (one
CUDA_VISIBLE_DEVICES per slot).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from assay.errors import PluginError, RunError
from assay.lab import Lab
from assay.runner.control import Launcher, LaunchRequest, LocalLauncher, ProcessResult, TrialControl, Watch
from assay.runner.launch import RunResult, RunSpec, start_run
from assay.store import records


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

    An implementer provides these three. The easy way is to subclass `ThreadedExecutor`, which
    runs each trial through `start_run` in one of `slots` threads, and override `launcher(control)`
    to return a `Launcher` whose `launch(LaunchRequest) -> ProcessResult` runs the command where
    trials should run (it must honour `control.stopped` set by a cancel or a prune) and, if slots
    differ, `slot_env(slot)`. `assay.testing.executors` checks an implementation.
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


class WatchedLauncher:
    """The command here (run_process), stoppable through its TrialControl, with the control's
    watch fed each new value of the primary metric as metrics.jsonl gains it (pruning)."""

    def __init__(self, control: TrialControl) -> None:
        self.control = control

    def launch(self, request: LaunchRequest) -> ProcessResult:
        control = self.control

        def started(pid: int) -> None:
            control.started(pid)
            if request.on_start:
                request.on_start(pid)

        watcher = None
        if control.watch is not None:
            watcher = threading.Thread(target=self._watch_metrics, args=(request.metrics_path,), daemon=True)
            watcher.start()
        try:
            res = LocalLauncher().launch(replace(request, on_start=started))
        finally:
            control.finished()
        if watcher is not None:
            watcher.join(timeout=5)
        if control.stopped and res.stopped_by is None:
            res = replace(res, stopped_by="interrupt")
        return res

    def _watch_metrics(self, file: Path) -> None:
        """Follow metrics.jsonl (complete lines only) and hand each new primary value to `watch`."""
        control = self.control
        offset, seen = 0, -1
        api = False  # as in records.metric_series: a value logged through the API wins over captured output
        reported: set[int] = set()
        while not control.done.wait(0.1):
            events, offset = records.new_events(file, offset)
            for ev in events:
                value = (ev.get("m") or {}).get(control.metric)
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
                assert control.watch is not None
                if control.watch(step, float(value)):
                    control.prune(step, float(value))
                    return


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
        self._controls: set[TrialControl] = set()
        self._lock = threading.Lock()
        self._exps: dict[str, Any] = {}

    def slot_env(self, slot: int) -> dict[str, str]:
        return {}

    def launcher(self, control: TrialControl) -> Launcher:
        """Where this trial's process runs; `control` says when a cancel or a prune stopped it."""
        return WatchedLauncher(control)

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
        control = TrialControl(exp.metric, watch)
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

    step, value = at if at else (None, None)
    rec = records.RunRecord.from_dict(res.record).with_(
        status=records.Status.PRUNED, reason=f"pruned by the sweep at step {step} ({metric}={value}): worse than earlier trials there")
    records.write_record(res.path, rec)
    record = rec.to_dict()
    with lab.index() as index:
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


# Ray's module is named, not imported: it loads (and imports this one) only when asked for.
EXECUTORS: dict[str, Callable[..., Executor] | str] = {"local": LocalPool, "ray": "assay.sweep.ray_executor:RayExecutor"}


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
