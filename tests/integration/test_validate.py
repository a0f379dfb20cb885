"""Validate before spend: smoke runs with throughput, --timeout auto, preflight, the OOM ladder."""

import json

import pytest

from assay.errors import ConfigError
from assay.experiment import load_experiment
from assay.runner.launch import RunSpec
from assay.runner.validate import Remedy, parse_ladder, run_with_oom_ladder, smoke_run

STEPS = """
import time, assay
p = assay.params()
for epoch in range(p["epochs"]):
    time.sleep(p["step_s"])
    assay.log({"val_loss": 1.0 / (epoch + 1)}, step=epoch)
"""
SMOKE = {"params": {"epochs": 3}, "steps": "epochs", "limit": "30s"}

OOM = """
import sys, assay
p = assay.params()
if p["batch"] > 16:
    print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    sys.exit(1)
print("val_loss:", 1.0 / p["grad_accum"] + p.get("lr", 0))  # lr read: a sweep over it must reach the script
"""


def _records(exp):
    return [json.loads((d / "run.json").read_text()) for d in sorted(exp.runs_dir.iterdir())]


def test_smoke_run_uses_the_smoke_params_and_records_throughput(lab, make_experiment):
    exp = make_experiment(STEPS, config={"seed": 0, "epochs": 50, "step_s": 0.1}, metric="val_loss", goal="min", smoke=SMOKE)
    res = smoke_run(lab, exp, "smoke")
    assert res.status == "ok" and res.record["params"]["epochs"] == 3 and res.record["tags"]["smoke"] == "true"
    m = json.loads((res.path / "run.json").read_text())["smoke"]
    assert m["steps"] == 3 and m["steps_key"] == "epochs"
    assert 0.09 <= m["seconds_per_step"] < 0.5 and m["steps_per_second"] == pytest.approx(1 / m["seconds_per_step"])
    assert res.record["timeout"] == 30


def test_smoke_without_a_smoke_section_says_how_to_write_one(lab, make_experiment, cli):
    make_experiment(STEPS, config={"seed": 0, "epochs": 2, "step_s": 0.0}, metric="val_loss", goal="min")
    out = cli("run", "exp", "x", "--smoke")
    assert out.returncode == 2 and "has no `smoke:` section" in out.stderr and "steps: epochs" in out.stderr


def test_timeout_auto_sizes_the_full_run_from_a_smoke_run(lab, make_experiment, cli):
    exp = make_experiment(STEPS, config={"seed": 0, "epochs": 10, "step_s": 0.1}, metric="val_loss", goal="min", smoke=SMOKE)
    out = cli("run", "exp", "full", "--timeout", "auto")
    assert out.returncode == 0, out.stderr
    assert "timeout" in out.stdout and "x 10 epochs" in out.stdout and "+30% margin" in out.stdout
    smoke, full = sorted(_records(exp), key=lambda r: r["started"])
    assert smoke["tags"]["smoke"] == "true" and full["params"]["epochs"] == 10 and full["status"] == "ok"
    per_step = smoke["smoke"]["seconds_per_step"]
    expected = (smoke["smoke"]["startup_seconds"] + per_step * 10) * 1.3
    assert full["timeout"] == pytest.approx(expected, abs=1.0)
    assert 1.0 * 1.3 <= full["timeout"] < 60  # sized, never the experiment's 60s default
    assert full["duration"] < full["timeout"]


def test_preflight_refuses_to_fan_out_when_the_smoke_run_crashes(lab, make_experiment, cli):
    script = "import sys, assay\np = assay.params()\nif p['epochs'] < 5:\n    sys.exit('shape mismatch in smoke')\nprint('val_loss: 1')\n"
    exp = make_experiment(script, config={"seed": 0, "epochs": 10, "lr": 0.1}, metric="val_loss", goal="min",
                          smoke={"params": {"epochs": 1}})
    out = cli("sweep", "exp", "lr=0.1,0.2,0.3", "--preflight")
    assert out.returncode == 1
    assert "Preflight smoke run" in out.stderr and "no trial was started" in out.stderr and "--resume" in out.stderr
    recs = _records(exp)
    assert len(recs) == 1 and recs[0]["tags"]["preflight"] == "true" and recs[0]["status"] == "failed"
    sweep = json.loads(next((exp.path / "sweeps").iterdir()).joinpath("sweep.json").read_text())
    assert sweep["status"] == "refused"


def test_preflight_passes_then_the_sweep_fans_out(lab, make_experiment, cli):
    exp = make_experiment(STEPS, config={"seed": 0, "epochs": 4, "step_s": 0.0}, metric="val_loss", goal="min", smoke=SMOKE)
    out = cli("sweep", "exp", "step_s=0.0,0.01", "--preflight", "-j", "2")
    assert out.returncode == 0, out.stderr
    assert sorted(r["tags"].get("trial", "pre") for r in _records(exp)) == ["1", "2", "pre"]


def test_oom_ladder_moves_to_the_next_rung_once_a_halving_rung_reaches_its_floor(lab, make_experiment, cli):
    ladder = [{"halve": "batch", "double": "grad_accum", "min": 32}, {"set": {"ckpt": True}},
              {"halve": "batch", "double": "grad_accum"}]
    exp = make_experiment(OOM, config={"seed": 0, "batch": 64, "grad_accum": 1, "ckpt": False}, metric="val_loss",
                          goal="min", oom_ladder=ladder)
    out = cli("run", "exp", "big")
    assert out.returncode == 0, out.stderr
    assert "rung 1 (halve batch, double grad_accum): oom" in out.stdout and "rung 3" in out.stdout
    recs = sorted(_records(exp), key=lambda r: r["started"])
    assert [(r["params"]["batch"], r["params"]["grad_accum"], r["params"]["ckpt"], r["status"]) for r in recs] == [
        (64, 1, False, "oom"), (32, 2, False, "oom"), (32, 2, True, "oom"), (16, 4, True, "ok")]
    assert [r["tags"].get("oom_rung") for r in recs] == [None, "1", "2", "3"]
    assert recs[3]["tags"]["oom_retry_of"] == recs[2]["id"] and recs[3]["metrics"]["val_loss"]["last"] == 0.25


MEMORY_HUNGRY = """
import assay
p = assay.params()
if p["batch_size"] > 4:
    raise MemoryError(f"batch_size {p['batch_size']} does not fit")
print("val_loss:", 1.0 / p["grad_accum"])
"""


def test_halving_rung_repeats_until_the_run_fits(lab, make_experiment, cli):
    exp = make_experiment(MEMORY_HUNGRY, config={"seed": 0, "batch_size": 64, "grad_accum": 1}, metric="val_loss",
                          goal="min", oom_ladder=[{"halve": "batch_size", "double": "grad_accum", "min": 1}])
    out = cli("run", "exp", "fits")
    assert out.returncode == 0, out.stderr
    recs = sorted(_records(exp), key=lambda r: r["started"])
    assert [(r["params"]["batch_size"], r["params"]["grad_accum"], r["status"]) for r in recs] == [
        (64, 1, "oom"), (32, 2, "oom"), (16, 4, "oom"), (8, 8, "oom"), (4, 16, "ok")]
    assert [r["tags"].get("oom_rung") for r in recs] == [None, "1", "1", "1", "1"]
    assert recs[-1]["metrics"]["val_loss"]["last"] == pytest.approx(1 / 16)


def test_halving_rung_stops_at_its_floor(lab, make_experiment):
    make_experiment(MEMORY_HUNGRY, config={"seed": 0, "batch_size": 64, "grad_accum": 1}, metric="val_loss",
                    goal="min", oom_ladder=[{"halve": "batch_size", "double": "grad_accum", "min": 8}])
    outcome = run_with_oom_ladder(lab, RunSpec("exp", "floor"))
    assert [(r.record["params"]["batch_size"], r.status) for r in outcome.results] == [
        (64, "oom"), (32, "oom"), (16, "oom"), (8, "oom")]  # 4 would fit, but the floor is 8
    assert [s.skipped for s in outcome.steps] == [None, None, None]  # reaching the floor is not a skip


def test_a_malformed_floor_is_refused_with_its_rung(lab, make_experiment):
    exp = make_experiment("print('val_bpb: 1')", config={"seed": 0, "batch": 8}, oom_ladder=[{"halve": "batch", "min": 0}])
    with pytest.raises(ConfigError, match="`min` of rung 1 of `oom_ladder`.*got 0"):
        parse_ladder(load_experiment(lab, "exp"), exp.default_params())


def test_oom_ladder_never_changes_a_locked_key_without_approval(lab, make_experiment, cli):
    exp = make_experiment(OOM, config={"seed": 0, "batch": 32, "grad_accum": 1}, metric="val_loss", goal="min",
                          oom_ladder=[{"halve": "batch", "double": "grad_accum"}], locked=["batch"])
    spec = RunSpec("exp", "locked")
    outcome = run_with_oom_ladder(lab, spec)
    assert [r.status for r in outcome.results] == ["oom"]
    assert outcome.steps[0].skipped and "locked key batch needs approval" in outcome.steps[0].skipped
    out = cli("run", "exp", "approved", "--approve-locked", "batch")
    assert out.returncode == 0, out.stderr
    assert [r["params"]["batch"] for r in sorted(_records(exp), key=lambda r: r["started"])] == [32, 32, 16]


def test_default_ladder_comes_from_the_config_keys(lab, make_experiment):
    exp = make_experiment("print('val_bpb: 1')", config={"seed": 0, "train": {"per_device_train_batch_size": 8},
                                                          "gradient_accumulation_steps": 2, "gradient_checkpointing": False})
    rungs = parse_ladder(exp, exp.default_params())
    assert rungs == [Remedy(halve=("train.per_device_train_batch_size",), double=("gradient_accumulation_steps",)),
                     Remedy(set={"gradient_checkpointing": True})]
    exp2 = make_experiment("print('val_bpb: 1')", name="typo", config={"seed": 0, "batch": 8}, oom_ladder=[{"halve": "bacth"}])
    with pytest.raises(ConfigError, match="Did you mean 'batch'"):
        parse_ladder(load_experiment(lab, "typo"), exp2.default_params())


def test_sweep_trials_climb_the_oom_ladder_and_the_sampler_hears_the_outcome(lab, make_experiment, cli):
    ladder = [{"halve": "batch", "double": "grad_accum"}]  # one rung, climbed twice per trial
    exp = make_experiment(OOM, config={"seed": 0, "batch": 64, "grad_accum": 1, "lr": 0.1}, metric="val_loss",
                          goal="min", oom_ladder=ladder)
    out = cli("sweep", "exp", "lr=0.1,0.2", "-j", "1", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["counts"] == {"ok": 2}  # each trial ends ok, on the remedy that fitted
    recs = sorted(_records(exp), key=lambda r: r["started"])
    assert [(r["tags"]["trial"], r["params"]["batch"], r["params"]["grad_accum"], r["status"]) for r in recs] == [
        ("1", 64, 1, "oom"), ("1", 32, 2, "oom"), ("1", 16, 4, "ok"),
        ("2", 64, 1, "oom"), ("2", 32, 2, "oom"), ("2", 16, 4, "ok")]
    assert recs[2]["tags"]["oom_retry_of"] == recs[1]["id"] and recs[2]["tags"]["oom_rung"] == "1"
    assert {t["run"] for t in summary["trials"]} == {recs[2]["id"], recs[5]["id"]}
    events = [json.loads(x) for x in next((exp.path / "sweeps").iterdir()).joinpath("trials.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e["trial"] == 1] == ["start", "oom_retry", "oom_retry", "end"]


def test_a_sweep_never_lets_the_ladder_change_a_swept_key(lab, make_experiment, cli):
    exp = make_experiment(OOM, config={"seed": 0, "batch": 64, "grad_accum": 1}, metric="val_loss", goal="min",
                          oom_ladder=[{"halve": "batch", "double": "grad_accum"}])
    out = cli("sweep", "exp", "batch=64,8", "-j", "1", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"] == {"ok": 1, "oom": 1}  # batch=64 does not fit: that is the finding
    assert len(_records(exp)) == 2
    events = [json.loads(x) for x in next((exp.path / "sweeps").iterdir()).joinpath("trials.jsonl").read_text().splitlines()]
    (skip,) = [e for e in events if e["event"] == "oom_skip"]
    assert "batch is a dimension of this sweep" in skip["why"]
