"""`assay gate` and `assay best` as pipeline steps: real runs, real subprocesses, exit codes as the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import assay
from assay.runner import RunSpec, run_experiment
from tests.integration.test_json_contract import check, documented

# val_f1 = q + spread * (seed - 1): seeds 0, 1, 2 give q - spread, q, q + spread. Saves a checkpoint.
SCRIPT = """
import os, pathlib, assay
p = assay.params()
if p["fail"]:
    raise SystemExit("diverged")
f1 = p["q"] + p["spread"] * (p["seed"] - 1)
ckpt = pathlib.Path(os.environ["ASSAY_RUN_DIR"]) / "checkpoints" / "model.pt"
ckpt.parent.mkdir(exist_ok=True)
ckpt.write_text(f"q={p['q']} seed={p['seed']}")
assay.log({"val_f1": f1}, step=0)
"""


@pytest.fixture
def exp(make_experiment):
    return make_experiment(SCRIPT, config={"seed": 0, "q": 0.8, "spread": 0.0, "fail": 0}, metric="val_f1", goal="max")


def _run(lab, desc: str, *params: str, repeat: int = 1) -> list:
    results = run_experiment(lab, RunSpec("exp", desc, list(params), repeat=repeat))
    assert all(r.status == "ok" for r in results), [r.record.get("reason") for r in results]
    return results


def test_gate_on_one_run_exits_0_when_it_holds_and_1_when_it_fails(lab, exp, cli):
    [run] = _run(lab, "base", "q=0.8")
    held = cli("gate", "exp", "val_f1 >= 0.75")
    failed = cli("gate", "exp", "val_f1 >= 0.85", "--json")
    assert held.returncode == 0 and held.stdout.startswith("gate holds: val_f1 >= 0.75: val_f1=0.8 (one run"), held.stdout
    assert failed.returncode == 1, failed.stderr
    out = json.loads(failed.stdout)
    check(out, documented()["gate"], "gate")
    assert out["outcome"] == "fails" and out["holds"] is False and out["exit"] == 1 and out["run"] == run.record["id"]
    assert out["checks"][0]["ci"] is None and out["checks"][0]["values"] == {run.record["id"]: 0.8}


def test_gate_with_repeated_seeds_judges_the_interval_not_the_lucky_seed(lab, exp, cli):
    # Seeds give 0.5, 0.8, 1.1: the newest run (seed 2, 1.1) clears 0.75 alone, but the interval of
    # the mean (0.8 +- 0.75 at 95%) straddles 0.75: the gate stays shut, and says to add seeds.
    runs = _run(lab, "noisy", "q=0.8", "spread=0.3", repeat=3)
    out = cli("gate", "exp", "val_f1 >= 0.75", "--json")
    assert out.returncode == 1, out.stderr
    res = json.loads(out.stdout)
    check(res, documented()["gate"], "gate")
    assert res["run"] == runs[-1].record["id"] and len(res["runs"]) == 3
    judged = res["checks"][0]
    assert res["outcome"] == "undecided" and judged["n"] == 3 and judged["mean"] == pytest.approx(0.8)
    lo, hi = judged["ci"]
    assert lo < 0.75 < hi and "straddles 0.75" in res["reason"]
    assert "seed=3 --repeat 3" in res["hint"]
    # A tight configuration (0.79, 0.8, 0.81) decides both ways.
    _run(lab, "tight", "q=0.8", "spread=0.01", repeat=3)
    assert cli("gate", "exp", "val_f1 >= 0.75").returncode == 0
    assert cli("gate", "exp", "val_f1 >= 0.85").returncode == 1
    assert cli("gate", "exp", "val_f1 >= 0.75", "--run", runs[0].record["id"]).returncode == 1  # the noisy one


def test_gate_exits_2_when_it_cannot_be_evaluated(lab, exp, cli):
    no_run = cli("gate", "exp", "val_f1 >= 0.75")
    assert no_run.returncode == 2 and "has no finished run to gate" in no_run.stderr, no_run.stderr
    _run(lab, "base")
    missing = cli("gate", "exp", "val_acc >= 0.75")
    assert missing.returncode == 2 and "has no last value of metric 'val_acc' (logged: val_f1)" in missing.stderr
    assert cli("gate", "exp", "val_f1 >=").returncode == 2
    assert cli("gate", "exp", "val_f1 >= 0.7", "--run", "nope").returncode == 2
    assert cli("gate", "nope", "val_f1 >= 0.7").returncode == 2
    comparative = cli("gate", "exp", "val_f1[q=0.8] > val_f1[q=0.7]")
    assert comparative.returncode == 2 and "a gate judges one run" in comparative.stderr
    assert "Traceback" not in no_run.stderr + missing.stderr + comparative.stderr


def test_gate_on_a_crashed_newest_run_exits_1_and_never_falls_back_to_an_older_run(lab, exp, cli):
    _run(lab, "good", "q=0.9")
    [bad] = run_experiment(lab, RunSpec("exp", "bad", ["fail=1"]))
    assert bad.status != "ok"
    out = cli("gate", "exp", "val_f1 >= 0.5")
    assert out.returncode == 1 and f"Run {bad.record['id']} ended '{bad.status}'" in out.stderr, out.stderr


def test_best_is_the_best_run_of_the_best_configuration_not_the_luckiest_seed(lab, exp, cli):
    # "wide": mean 0.7 with a lucky seed at 1.0; "steady": mean 0.85. The best run is steady's best seed.
    _run(lab, "wide", "q=0.7", "spread=0.3", repeat=3)
    steady = _run(lab, "steady", "q=0.85", "spread=0.01", repeat=3)
    out = cli("best", "exp")
    assert out.returncode == 0 and out.stdout.strip() == str(steady[2].path)
    ckpt = cli("best", "exp", "--artifact", "checkpoints/model.pt")
    assert Path(ckpt.stdout.strip()).read_text() == "q=0.85 seed=2"
    js = json.loads(cli("best", "exp", "--json").stdout)
    check(js, documented()["best"], "best")
    assert js["run"] == steady[2].record["id"] and js["score"] == pytest.approx(0.86) and js["metric"] == "val_f1"
    assert cli("gate", "exp", "val_f1 >= 0.8", "--best").returncode == 0  # steady's interval, not wide's
    missing = cli("best", "exp", "--artifact", "checkpoints/other.pt")
    assert missing.returncode == 2 and "no artifact 'checkpoints/other.pt' (files: checkpoints/model.pt)" in missing.stderr
    assert cli("best", "exp", "--artifact", "../../../../x").returncode == 2


def test_best_exits_2_without_a_run(lab, exp, cli):
    out = cli("best", "exp")
    assert out.returncode == 2 and "has no finished run with a last value of val_f1" in out.stderr


def test_python_api_returns_the_best_record_and_raises_gate_failed(lab, exp, monkeypatch):
    [run] = _run(lab, "base", "q=0.8")
    monkeypatch.chdir(lab.root)
    assert assay.best("exp")["id"] == run.record["id"]
    assert assay.gate("exp", "val_f1 >= 0.75").holds
    with pytest.raises(assay.GateFailed) as caught:
        assay.gate("exp", "val_f1 >= 0.9 and val_f1 <= 1", lab=lab.root)
    assert caught.value.exit_code == 1 and caught.value.result.outcome == "fails"
    assert "Gate 'val_f1 >= 0.9 and val_f1 <= 1' fails on run" in caught.value.message
