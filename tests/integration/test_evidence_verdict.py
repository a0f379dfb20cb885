"""`assay verdict` on real runs of a real script: repeats, noise, ignored and crashed runs."""

from __future__ import annotations

import json

import pytest

from assay.runner import RunSpec, run_experiment
from assay.store import records

# acc depends on `level` plus a seed-dependent wobble of +-0.01; `crash=1` fails after logging.
SCRIPT = """
import assay
p = assay.params()
run = assay.init()
wobble = ((p["seed"] * 7) % 3 - 1) * 0.01
for step in range(3):
    assay.log({"acc": p["level"] * (step + 1) / 3 + wobble, "loss": 1 - p["level"] + wobble}, step=step)
if p["crash"]:
    raise SystemExit("boom")
print(f"acc: {p['level'] + wobble}")
"""


@pytest.fixture
def exp(make_experiment):
    return make_experiment(SCRIPT, config={"seed": 0, "level": 0.9, "crash": 0}, metric="acc", goal="max",
                           success="acc >= 0.85", failure="acc < 0.6")


def run(lab, desc, repeat=1, **params):
    return run_experiment(lab, RunSpec("exp", desc, [f"{k}={v}" for k, v in params.items()], repeat=repeat))


def test_repeats_clearly_above_threshold_support_the_hypothesis(lab, exp):
    from assay.report.verdict import verdict

    res = run(lab, "good", repeat=3)
    v = verdict(lab, "exp")
    assert v.verdict == "supported", v.reason
    (cfg,) = v.configurations
    acc = next(j for j in cfg.judged if j.kind == "success")
    logged = {r.record["id"]: records.metric_series(r.path)["acc"][-1][1] for r in res}
    assert acc.values == pytest.approx(logged)  # the numbers that decided it are the logged ones
    assert acc.outcome == "holds" and acc.stats["ci"][0] >= 0.85


def test_one_run_cannot_decide_and_a_crash_is_listed_not_counted(lab, exp):
    from assay.report.verdict import verdict

    run(lab, "single")
    (crashed,) = run(lab, "broken", crash=1)
    assert crashed.status == "failed"
    v = verdict(lab, "exp")
    assert v.verdict == "inconclusive" and "one run cannot decide" in v.reason
    assert "--repeat" in (v.hint or "")
    assert [e["id"] for e in v.excluded] == [crashed.record["id"]]


def test_failure_region_refutes_and_ignored_runs_are_left_out(lab, exp, cli):
    from assay.report.verdict import verdict

    run(lab, "weak", repeat=2, level=0.3)
    (lucky,) = run(lab, "lucky", level=0.99)
    assert cli("ignore", lucky.record["id"], "--why", "eval on train split").returncode == 0
    v = verdict(lab, "exp")
    assert v.verdict == "refuted", v.reason
    assert lucky.record["id"] not in {rid for c in v.configurations for rid in c.runs}
    assert any(e["why"].startswith("ignored: eval on train split") for e in v.excluded)


def test_between_success_and_failure_is_inconclusive_and_cli_json_has_the_numbers(lab, exp, cli):
    run(lab, "middling", repeat=2, level=0.7)
    out = cli("verdict", "exp", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["verdict"] == "inconclusive" and "lies between" in data["reason"]
    (cfg,) = data["configurations"]
    assert cfg["sources"] == [f"runs/{rid.split('/', 1)[1]}/run.json" for rid in cfg["runs"]]
    text = cli("verdict", "exp")
    assert text.returncode == 0 and "inconclusive" in text.stdout and "acc >= 0.85" in text.stdout
