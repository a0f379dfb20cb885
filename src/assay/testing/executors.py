"""Conformance checks for executors: run them against yours as assay runs them against its own.

Each check takes a factory `make(lab, slots) -> Executor` and an empty scratch folder, builds a
lab with a tiny experiment there, and raises AssertionError when the executor breaks the contract
of `assay.sweep.executors.Executor`. With pytest:

    import pytest
    from assay.testing import executors as conformance

    @pytest.mark.parametrize("check", conformance.CHECKS, ids=lambda c: c.__name__)
    def test_my_executor(check, tmp_path):
        check(lambda lab, slots: MyExecutor(lab, slots), tmp_path)

The scripts signal through files in the scratch folder outside the lab (an absolute path given as
a parameter), so the checks hold for executors whose workers do not share the lab's disk, as long
as they share that folder with the test (a local cluster does).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.lab import Lab
    from assay.sweep.executors import Executor

MakeExecutor = Callable[["Lab", int], "Executor"]

SCRIPT = """
import json, os, sys, time, assay
p = assay.params()
flags = p["flags"]
def note(kind):
    with open(os.path.join(flags, f"{p['name']}.{kind}"), "w") as fh:
        json.dump({"t": time.time(), "pid": os.getpid(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}, fh)
note("start")
if p["mode"] == "crash":
    sys.exit("boom")
if p["mode"] == "hang":
    time.sleep(120)
time.sleep(p["sleep"])
plot = os.path.join(os.environ["ASSAY_RUN_DIR"], "plots", "curve.txt")
open(plot, "w").write("x")
assay.log_artifact(plot)
for step in range(3):
    assay.log({"val_loss": p["x"] / (step + 1)}, step=step)
print("tokens_per_s:", 123)
note("end")
"""
PRUNE_SCRIPT = """
import time, assay
for step in range(40):
    assay.log({"score": step}, step=step)
    time.sleep(0.1)
"""
DEADLINE = 120.0


def _lab(tmp: Path, script: str = SCRIPT, metric: str = "val_loss", goal: str = "min") -> tuple[Lab, Path]:
    """A lab with experiment 'exp' running `script`, and the folder its trials signal in."""
    from assay.config import dump_yaml
    from assay.lab import init_lab

    lab, _ = init_lab(tmp / "lab")
    exp = lab.experiment_dir("exp")
    exp.mkdir(parents=True)
    (exp / "train.py").write_text(script)
    flags = tmp / "flags"
    flags.mkdir()
    config = {"seed": 0, "mode": "ok", "x": 1.0, "sleep": 0.0, "name": "t", "flags": str(flags)}
    (exp / "config.yaml").write_text(dump_yaml(config if script == SCRIPT else {"seed": 0}))
    (exp / "experiment.yaml").write_text(dump_yaml({"hypothesis": "conformance", "metric": {"name": metric, "goal": goal},
                                                   "entry": "train.py", "timeout": "120s"}))
    return lab, flags


def _spec(name: str, **params: Any) -> Any:
    from assay.runner.launch import RunSpec

    return RunSpec("exp", name, extra_params={"name": name, **params}, tags={"sweep": "conformance"})


def _wait(predicate: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while not (value := predicate()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def _notes(flags: Path, kind: str) -> dict[str, dict[str, Any]]:
    out = {}
    for f in flags.glob(f"*.{kind}"):
        try:
            out[f.stem] = json.loads(f.read_text())
        except ValueError:
            continue  # being written
    return out


def check_trials_are_ordinary_runs_with_their_files(make: MakeExecutor, tmp: Path) -> None:
    """submit returns a Future of the RunResult; the run folder in the lab holds the record,
    the captured and logged metrics, the log and the artifact the script wrote."""
    from concurrent.futures import Future

    from assay.runner.launch import RunResult
    from assay.store.query import list_runs
    from assay.sweep.executors import Executor

    lab, _ = _lab(tmp)
    ex = make(lab, 2)
    try:
        assert isinstance(ex, Executor) and ex.slots == 2, "an Executor with the slots it was made with"
        futs = [ex.submit(_spec(f"t{i}", x=float(i + 1))) for i in range(3)]
        assert all(isinstance(f, Future) for f in futs), "submit returns a concurrent.futures.Future"
        results = [f.result(timeout=DEADLINE) for f in futs]
    finally:
        ex.shutdown(cancel=True)
    assert all(isinstance(r, RunResult) for r in results)
    assert [r.status for r in results] == ["ok"] * 3, [r.record.get("reason") for r in results]
    for i, r in enumerate(results):
        m = r.record["metrics"]
        assert math.isclose(m["val_loss"]["best"], (i + 1) / 3) and m["val_loss"]["count"] == 3, m
        assert m["tokens_per_s"]["last"] == 123, "metrics printed by the script are captured"
        assert (r.path / "plots" / "curve.txt").read_text() == "x", "the artifact the script wrote is in the run folder"
        assert "tokens_per_s: 123" in (r.path / "logs" / "output.log").read_text()
        assert json.loads((r.path / "run.json").read_text())["status"] == "ok"
    rows, total = list_runs(lab, "exp", None, None, None, False)
    assert total == 3 and {row["status"] for row in rows} == {"ok"}, "every trial is in the lab's index"


def check_a_crash_is_a_status_not_an_exception(make: MakeExecutor, tmp: Path) -> None:
    lab, _ = _lab(tmp)
    ex = make(lab, 1)
    try:
        res = ex.submit(_spec("crash", mode="crash")).result(timeout=DEADLINE)
    finally:
        ex.shutdown(cancel=True)
    assert res.status == "failed" and "boom" in (res.record.get("reason") or ""), res.record.get("reason")


def check_cancel_interrupts_running_trials(make: MakeExecutor, tmp: Path) -> None:
    """shutdown(cancel=True) stops a running trial (record 'interrupted') and its process."""
    import psutil

    lab, flags = _lab(tmp)
    ex = make(lab, 1)
    fut = ex.submit(_spec("hang", mode="hang"))
    pid = _wait(lambda: _notes(flags, "start").get("hang", {}).get("pid"), "the hanging trial to start")
    t0 = time.monotonic()
    ex.shutdown(cancel=True)
    res = fut.result(timeout=60)
    assert res.status == "interrupted", (res.status, res.record.get("reason"))
    assert time.monotonic() - t0 < 30, "cancel stops a trial within the grace period"

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    _wait(gone, "the cancelled trial's process to end", 30)


def check_a_watch_that_says_prune_stops_the_trial(make: MakeExecutor, tmp: Path) -> None:
    """`watch` sees the primary metric step by step; True stops the trial, recorded as 'pruned'."""
    from assay.runner.launch import RunSpec

    lab, _ = _lab(tmp, PRUNE_SCRIPT, metric="score", goal="max")
    seen: list[tuple[int, float]] = []

    def watch(step: int, value: float) -> bool:
        seen.append((step, value))
        return step >= 3

    ex = make(lab, 1)
    try:
        res = ex.submit(RunSpec("exp", "prune", tags={"sweep": "conformance"}), watch).result(timeout=DEADLINE)
    finally:
        ex.shutdown(cancel=True)
    assert res.status == "pruned" and "pruned by the sweep at step 3" in res.record["reason"], res.record.get("reason")
    assert seen[:4] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)], seen
    assert 4 <= res.record["metrics"]["score"]["count"] < 40, "stopped early, what it logged kept"


def check_slots_are_honoured(make: MakeExecutor, tmp: Path) -> None:
    """With 2 slots and 4 trials, 2 run at once and never more."""
    lab, flags = _lab(tmp)
    ex = make(lab, 2)
    try:
        results = [f.result(timeout=DEADLINE) for f in [ex.submit(_spec(f"s{i}", sleep=1.5)) for i in range(4)]]
    finally:
        ex.shutdown(cancel=True)
    assert [r.status for r in results] == ["ok"] * 4, [r.record.get("reason") for r in results]
    starts, ends = _notes(flags, "start"), _notes(flags, "end")
    spans = [(starts[n]["t"], ends[n]["t"]) for n in starts]
    overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlap == 2, f"{overlap} trials ran at once on 2 slots"


def check_each_slot_sees_its_own_gpu(make: MakeExecutor, tmp: Path) -> None:
    """Trials running at the same time see different CUDA_VISIBLE_DEVICES (run it where the
    executor has at least 2 GPUs, or CUDA_VISIBLE_DEVICES lists 2 for a pool that reads it)."""
    lab, flags = _lab(tmp)
    ex = make(lab, 2)
    try:
        results = [f.result(timeout=DEADLINE) for f in [ex.submit(_spec(f"g{i}", sleep=1.0)) for i in range(2)]]
    finally:
        ex.shutdown(cancel=True)
    assert [r.status for r in results] == ["ok"] * 2, [r.record.get("reason") for r in results]
    gpus = [n["gpu"] for n in _notes(flags, "start").values()]
    assert all(gpus) and len(set(gpus)) == 2, f"two trials at once saw CUDA_VISIBLE_DEVICES {gpus}"


# The checks every executor passes; check_each_slot_sees_its_own_gpu needs GPUs (or their env) too.
CHECKS: tuple[Callable[[MakeExecutor, Path], None], ...] = (
    check_trials_are_ordinary_runs_with_their_files, check_a_crash_is_a_status_not_an_exception,
    check_cancel_interrupts_running_trials, check_a_watch_that_says_prune_stops_the_trial, check_slots_are_honoured,
)


def run_all(make: MakeExecutor, tmp: Path) -> None:
    """Every check in CHECKS, each in its own subfolder of `tmp`."""
    for check in CHECKS:
        folder = tmp / check.__name__
        folder.mkdir(parents=True)
        check(make, folder)
