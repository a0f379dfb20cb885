"""Sweeps end to end: real subprocesses, real SQLite, real Optuna; resume after a real Ctrl-C."""

import json
import os
import signal
import subprocess

from assay.runner.launch import RunSpec
from assay.store.query import compare, list_runs
from assay.sweep.driver import SweepConfig, run_sweep, start_sweep
from assay.sweep.optuna_sampler import OptunaSampler
from assay.sweep.space import space_from_args
from tests.conftest import ASSAY, wait_for

QUICK = """
import assay
p = assay.params()
for step in range(2):
    assay.log({"val_loss": p["lr"] * p["batch"] / (step + 1)}, step=step)
"""


def _records(exp):
    return [json.loads((d / "run.json").read_text()) for d in sorted(exp.runs_dir.iterdir())]


def test_grid_sweep_runs_each_point_as_a_tagged_run_and_compare_is_its_table(lab, make_experiment, cli):
    exp = make_experiment(QUICK, config={"seed": 0, "lr": 0.1, "batch": 8}, metric="val_loss", goal="min")
    out = cli("sweep", "exp", "lr=0.1,0.01", "batch=8,16", "-j", "2")
    assert out.returncode == 0, out.stderr
    assert "[4/4]" in out.stdout and "done: 4 trials (4 ok)" in out.stdout
    assert "best trial: val_loss=0.04" in out.stdout and "next: assay compare exp --by lr,batch" in out.stdout
    recs = _records(exp)
    sweep_id = recs[0]["tags"]["sweep"]
    assert {r["tags"]["sweep"] for r in recs} == {sweep_id} and sorted(int(r["tags"]["trial"]) for r in recs) == [1, 2, 3, 4]
    assert sorted((r["params"]["lr"], r["params"]["batch"]) for r in recs) == [(0.01, 8), (0.01, 16), (0.1, 8), (0.1, 16)]
    table = compare(lab, "exp", ["lr", "batch"])
    assert table["rows"][table["best"]]["lr"] == 0.01 and table["rows"][table["best"]]["batch"] == 8
    ends = [json.loads(x) for x in (exp.path / "sweeps" / sweep_id / "trials.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "end" for e in ends) == 4


def test_sweep_with_an_unknown_key_fails_before_any_run(lab, make_experiment, cli):
    exp = make_experiment(QUICK, config={"seed": 0, "lr": 0.1, "batch": 8})
    out = cli("sweep", "exp", "lr=0.1,0.01", "btch=8,16")
    assert out.returncode == 2
    assert "Unknown parameter 'btch'" in out.stderr and "Did you mean 'batch'?" in out.stderr
    assert not exp.runs_dir.exists() and not (exp.path / "sweeps").exists()
    out = cli("sweep", "exp", "lr=interval(0.01,0.1)", "--sampler", "random")
    assert out.returncode == 2 and "needs a trial budget" in out.stderr and "--trials" in out.stderr


def test_sweep_file_drives_a_random_search(lab, make_experiment, cli):
    exp = make_experiment(QUICK, config={"seed": 0, "lr": 0.1, "batch": 8}, metric="val_loss", goal="min")
    (lab.root / "sweep.yaml").write_text("sampler: random\ntrials: 3\nparallel: 2\nseed: 3\nparams:\n"
                                         "  lr: {low: 1e-3, high: 1e-1, log: true}\n  batch: [8, 16]\n")
    out = cli("sweep", "exp", "sweep.yaml", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["status"] == "done" and res["counts"] == {"ok": 3}
    assert all(1e-3 <= t["params"]["lr"] <= 1e-1 and t["params"]["batch"] in (8, 16) for t in res["trials"])
    assert len(_records(exp)) == 3
    bad = lab.root / "bad.yaml"
    bad.write_text("params:\n  lr: [0.1, 0.2]\n  lr_max: [1, 2]\n")
    out = cli("sweep", "exp", "bad.yaml")
    assert out.returncode == 2 and "bad.yaml:3" in out.stderr and "Did you mean 'lr'?" in out.stderr


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(lab, make_experiment, cli):
    # Trials with a >= 3 hang until the file 'release' exists: the sweep is interrupted while one runs.
    script = """
    import os, time, assay
    p = assay.params()
    if p["a"] >= 3:
        while not os.path.exists("release"):
            time.sleep(0.05)
    assay.log({"val_loss": 1.0 / p["a"]}, step=0)
    """
    exp = make_experiment(script, config={"seed": 0, "a": 0}, metric="val_loss", goal="min")
    proc = subprocess.Popen([*ASSAY, "sweep", "exp", "a=1,2,3,4", "-j", "1"], cwd=lab.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        def hanging_trial_started():
            for d in exp.runs_dir.iterdir() if exp.runs_dir.exists() else []:
                try:
                    r = json.loads((d / "run.json").read_text())
                except (OSError, ValueError):
                    continue
                if r["tags"].get("trial") == "3" and r.get("child_pid"):
                    return r
            return None

        wait_for(hanging_trial_started, what="trial 3 to start")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 130, err
    sweep_id = next((exp.path / "sweeps").iterdir()).name
    assert f"assay sweep exp --resume {sweep_id}" in out
    settings = json.loads((exp.path / "sweeps" / sweep_id / "sweep.json").read_text())
    assert settings["status"] == "interrupted"
    assert sorted(r["status"] for r in _records(exp)) == ["interrupted", "ok", "ok"]

    (exp.path / "release").write_text("")
    out = cli("sweep", "exp", "--resume", sweep_id)
    assert out.returncode == 0, out.stderr
    assert "done: 4 trials (4 ok)" in out.stdout
    by_trial: dict[str, list[str]] = {}
    for r in _records(exp):
        by_trial.setdefault(r["tags"]["trial"], []).append(r["status"])
    assert by_trial == {"1": ["ok"], "2": ["ok"], "3": ["interrupted", "ok"], "4": ["ok"]}


def test_optuna_prunes_trials_worse_than_earlier_ones_from_their_intermediate_metrics(lab, make_experiment):
    script = """
    import time, assay
    p = assay.params()
    for step in range(16):
        assay.log({"score": p["q"] * (step + 1)}, step=step)
        time.sleep(0.12)
    """
    # assay.log flushes about once a second, so a pruned trial stops after ~1 s of its ~2 s.
    exp = make_experiment(script, config={"seed": 0, "q": 1}, metric="score", goal="max")
    space = space_from_args(["q=1,2,6"])
    cfg = SweepConfig("exp", space, "tpe", trials=3, parallel=1, sampler_options={"startup_trials": 1, "warmup_steps": 0})
    sampler = OptunaSampler(space, "max", 0, startup_trials=1, warmup_steps=0)
    for q in (6, 1, 2):  # a fixed order makes the outcome certain: the best trial first
        sampler.study.enqueue_trial({"q": q})
    sf = start_sweep(lab, cfg)
    outcome = run_sweep(lab, sf, cfg, sampler=sampler)
    assert [(t.params["q"], t.status) for t in outcome.trials] == [(6, "ok"), (1, "pruned"), (2, "pruned")]
    assert outcome.best.params == {"q": 6} and outcome.best.value == 96
    recs = {r["params"]["q"]: r for r in _records(exp)}
    for q in (1, 2):
        assert recs[q]["status"] == "pruned" and "pruned by the sweep at step" in recs[q]["reason"]
        assert recs[q]["metrics"]["score"]["count"] < 16
    rows, _ = list_runs(lab, "exp", "status=pruned", None, None, False)
    assert len(rows) == 2


def test_run_spec_env_reaches_the_script(lab, make_experiment):
    from assay.runner.launch import start_run

    exp = make_experiment("import os\nprint('val_bpb:', os.environ['EXTRA_KNOB'])\n")
    res = start_run(lab, exp, RunSpec("exp", "env", env={"EXTRA_KNOB": "0.5"}))
    assert res.status == "ok" and res.record["metrics"]["val_bpb"]["last"] == 0.5
