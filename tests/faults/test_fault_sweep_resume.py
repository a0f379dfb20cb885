"""Interrupt a sweep at random points, resume it (several times): every point runs exactly once.

The property test drives the real driver, sampler and sweep files (trials.jsonl, sweep.json, run
folders with run.json) in a fresh lab per example. Its one fake is the executor: instead of
starting a script it writes the run's record at once, so a hundred interruptions take seconds.
Ctrl-C is a KeyboardInterrupt raised where the driver can receive one: in an executor call or
a progress callback, or a trial whose run reports 'interrupted'. The end-to-end test sends a
real SIGINT to a real `assay sweep` running real trials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.runner.launch import RunResult, RunSpec
from assay.store import records
from assay.sweep.driver import SweepConfig, resume_config, run_sweep, start_sweep
from assay.sweep.samplers import RandomSampler, point_key
from assay.sweep.space import space_from_args
from tests.conftest import ASSAY, wait_for

# Each example makes a lab; in memory its many fsyncs cost nothing (a disk would make it slow).
MEMORY_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
A_VALUES = (1, 2, 3, 4)
B_VALUES = (0.0, 0.5)


def _value(params: dict) -> float:
    return params["a"] * 10 + params["b"]


def _status(params: dict) -> str:
    return "failed" if params["a"] == 2 and params["b"] == 0.5 else "ok"


class PlannedExecutor:
    """Local slots that finish a trial the moment it is submitted (the declared fake: no script
    runs), writing its run folder as start_run would, and Ctrl-C at a planned point.

    `stop_at` counts the driver's calls into us (submit, progress events): at that call we raise
    KeyboardInterrupt, before or after the run's record exists (`after_record`). `interrupted` are
    submission indices whose run ends 'interrupted' (stopped by us, as a real Ctrl-C would)."""

    def __init__(self, exp, sf, slots: int, stop_at: int | None, after_record: bool, interrupted: frozenset[int]):
        self.exp, self.sf, self.slots = exp, sf, slots
        self.stop_at, self.after_record, self.interrupted = stop_at, after_record, interrupted
        self.calls = self.submitted = 0

    def tick(self) -> None:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt

    def on_event(self, event) -> None:
        if event.kind.startswith("trial_"):  # started / finished: inside the driver's loop
            self.tick()

    def submit(self, spec: RunSpec, watch=None) -> Future:
        if not self.after_record:
            self.tick()
        n = int(spec.tags["trial"])
        params = self.sf.trials()[n].params
        status = "interrupted" if self.submitted in self.interrupted else _status(params)
        self.submitted += 1
        rec = records.RunRecord.from_dict({"status": status, "tags": dict(spec.tags), "params": params, "started": time.time(),
                                           "duration": 0.01, "metrics": {"m": {"best": _value(params), "last": _value(params)}}})
        path, rec = records.create_run_dir(self.exp.runs_dir, spec.desc, rec)
        record = rec.to_dict()
        if self.after_record:
            self.tick()
        fut: Future = Future()
        fut.set_result(RunResult(path, record))
        return fut

    def shutdown(self, cancel: bool = False) -> None:
        pass


def _finished_runs(exp, sweep_id: str) -> list[dict]:
    out = []
    for folder in records.run_folders(exp.runs_dir):
        rec = records.read_record(folder)
        if rec["tags"].get("sweep") == sweep_id and rec["status"] != "interrupted":
            out.append(rec)
    return out


PHASE = st.tuples(st.one_of(st.none(), st.integers(1, 30)), st.booleans(), st.frozensets(st.integers(0, 10), max_size=3))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sampler=st.sampled_from(["grid", "random"]), slots=st.integers(1, 3), phases=st.lists(PHASE, max_size=4),
       goal=st.sampled_from(["min", "max"]))
def test_a_sweep_interrupted_and_resumed_at_random_points_runs_every_point_exactly_once(sampler, slots, phases, goal):
    from assay.config import dump_yaml
    from assay.experiment import load_experiment
    from assay.lab import init_lab

    with tempfile.TemporaryDirectory(dir=MEMORY_DIR) as tmp:
        lab, _ = init_lab(Path(tmp) / "lab")
        path = lab.experiment_dir("exp")
        path.mkdir(parents=True)
        (path / "train.py").write_text("print('m: 1')\n")
        (path / "config.yaml").write_text(dump_yaml({"seed": 0, "a": 0, "b": 0.0}))
        (path / "experiment.yaml").write_text(dump_yaml({"hypothesis": "t", "metric": {"name": "m", "goal": goal},
                                                         "entry": "train.py"}))
        exp = load_experiment(lab, "exp")
        space = space_from_args([f"a={','.join(map(str, A_VALUES))}", f"b={','.join(map(str, B_VALUES))}"])
        budget = len(A_VALUES) * len(B_VALUES)
        sf = start_sweep(lab, SweepConfig("exp", space, sampler, trials=budget, parallel=slots))

        outcome = None
        for stop_at, after_record, interrupted in [*phases, (None, False, frozenset())]:
            sf, cfg = resume_config(lab, "exp", sf.id)
            ex = PlannedExecutor(exp, sf, slots, stop_at, after_record, interrupted)
            outcome = run_sweep(lab, sf, cfg, on_event=ex.on_event, executor=ex)
        assert outcome is not None and outcome.status == "done"

        trials = sorted(sf.trials().values(), key=lambda t: t.number)
        assert [t.number for t in trials] == list(range(1, budget + 1))
        assert all(t.status is not None for t in trials), "a trial never ended"
        runs = _finished_runs(exp, sf.id)
        assert sorted(int(r["tags"]["trial"]) for r in runs) == list(range(1, budget + 1)), "a trial ran twice or never"
        if sampler == "grid":
            points = sorted(point_key(t.params) for t in trials)
            assert points == sorted(point_key({"a": a, "b": b}) for a in A_VALUES for b in B_VALUES)
        else:  # the points an uninterrupted sweep would have drawn, in the same order
            fresh = RandomSampler(space, seed=0)
            assert [t.params for t in trials] == [fresh.ask() for _ in range(budget)]
        ok = [t for t in trials if t.status == "ok"]
        want = (min if goal == "min" else max)(ok, key=lambda t: _value(t.params))
        assert outcome.best is not None and outcome.best.params == want.params
        assert sum(outcome.counts().values()) == budget


HANG_SCRIPT = """
import os, time, assay
p = assay.params()
if p["a"] >= 3:
    while not os.path.exists("release"):
        time.sleep(0.05)
assay.log({"val_loss": p["a"] + p["b"]}, step=0)
"""


def test_ctrl_c_of_a_parallel_grid_sweep_then_resume_runs_each_point_once(lab, make_experiment, cli):
    # The reported case: a=1..4 x b=0.0,0.5 on 2 slots. Trials with a >= 3 hang until 'release'
    # exists, so Ctrl-C arrives while two of them run.
    exp = make_experiment(HANG_SCRIPT, config={"seed": 0, "a": 0, "b": 0.0}, metric="val_loss", goal="max")
    proc = subprocess.Popen([*ASSAY, "sweep", "exp", "a=1,2,3,4", "b=0.0,0.5", "-j", "2"], cwd=lab.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        def two_hanging() -> bool:
            running = 0
            for d in records.run_folders(exp.runs_dir):
                try:
                    r = json.loads((d / "run.json").read_text())
                except (OSError, ValueError):
                    continue
                running += r["status"] == "running" and bool(r.get("child_pid"))
            return running == 2

        wait_for(two_hanging, deadline_s=60, what="two hanging trials")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 130
    (exp.path / "release").write_text("")
    out = cli("sweep", "exp", "--resume", "last")
    assert out.returncode == 0, out.stderr
    assert "8 trials (8 ok)" in out.stdout
    ok = [json.loads((d / "run.json").read_text()) for d in records.run_folders(exp.runs_dir)]
    ok = [r for r in ok if r["status"] == "ok"]
    points = sorted((r["params"]["a"], r["params"]["b"]) for r in ok)
    assert points == [(a, b) for a in (1, 2, 3, 4) for b in (0.0, 0.5)], "a point ran twice or never"
    assert "best trial: val_loss=4.5" in out.stdout
