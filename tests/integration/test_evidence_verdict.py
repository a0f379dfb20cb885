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


def _comparative(make_experiment, success, failure=None):
    fields = {"success": success} | ({"failure": failure} if failure else {})
    return make_experiment(SCRIPT, name="cmp", config={"seed": 0, "level": 0.9, "crash": 0}, metric="acc", goal="max", **fields)


def crun(lab, desc, repeat=1, **params):
    return run_experiment(lab, RunSpec("cmp", desc, [f"{k}={v}" for k, v in params.items()], repeat=repeat))


def test_a_comparison_is_judged_on_the_interval_of_the_difference(lab, make_experiment, cli):
    from assay.report.verdict import verdict

    _comparative(make_experiment, "acc >= 0.85 and acc[level=0.95] > acc[level=0.9] + 0.01")
    crun(lab, "base", repeat=3)
    crun(lab, "more", repeat=3, level=0.95)
    v = verdict(lab, "cmp")
    assert v.verdict == "supported", v.reason
    (comp,) = v.comparisons
    assert comp.kind == "success" and comp.outcome == "holds"
    assert comp.stats["difference"] == pytest.approx(0.05) and comp.stats["sigma_source"] == "welch"
    assert comp.stats["ci"][0] > 0.01 and len(comp.values) == 6
    assert all(s.startswith("runs/") and s.endswith("/run.json") for s in comp.stats["sources"])
    out = json.loads(cli("verdict", "cmp", "--json").stdout)
    assert out["comparisons"][0]["outcome"] == "holds" and out["verdict"] == "supported"


def test_a_comparison_that_fails_refutes_and_one_that_straddles_is_inconclusive(lab, make_experiment):
    from assay.report.verdict import verdict

    _comparative(make_experiment, "acc[level=0.9] > acc[level=0.95]")
    crun(lab, "base", repeat=3)
    crun(lab, "more", repeat=3, level=0.95)
    v = verdict(lab, "cmp")
    assert v.verdict == "refuted" and "fails" in v.reason  # no failure criteria: a failed success criterion refutes

    _comparative(make_experiment, "acc[level=0.9] >= acc[level=0.91] - 0.02")  # a gap of 0.01, margin 0.02
    assert verdict(lab, "cmp").comparisons[0].outcome == "undecided"  # no run has level=0.91
    assert "no finished run has level=0.91" in verdict(lab, "cmp").comparisons[0].why
    crun(lab, "near", level=0.91)  # one run: its noise is the pooled noise of the other sides
    comp = verdict(lab, "cmp").comparisons[0]
    assert comp.stats["sigma_source"] == "pooled" and comp.outcome in ("holds", "undecided")


def test_a_selector_matching_several_configurations_asks_to_pin_them(lab, make_experiment, cli):
    from assay.report.verdict import verdict

    _comparative(make_experiment, "acc[crash=0] > acc[level=0.5]")
    crun(lab, "base", repeat=2)
    crun(lab, "more", repeat=2, level=0.95)
    crun(lab, "low", repeat=2, level=0.5)
    v = verdict(lab, "cmp")
    assert v.verdict == "inconclusive" and "matches 3 configurations (they differ in level): pin those params" in v.reason
    bad = cli("new", "x", "--hypothesis", "h", "--metric", "acc", "--goal", "max", "--success", "acc[lr=] > acc[lr=0.1]")
    assert bad.returncode == 2 and "Cannot read the run selector" in bad.stderr
    other = cli("new", "y", "--hypothesis", "h", "--metric", "acc", "--goal", "max", "--success", "acc[lr=1] > loss[lr=2]")
    assert other.returncode == 2 and "compares acc with loss" in other.stderr


def test_the_hint_of_an_undecided_comparison_adds_new_seeds_to_both_sides(lab, make_experiment, cli):
    import shlex

    from assay.report.verdict import verdict

    _comparative(make_experiment, "acc[level=0.905] > acc[level=0.9]")
    crun(lab, "base", repeat=3)
    crun(lab, "more", repeat=3, level=0.905)
    v = verdict(lab, "cmp")
    assert v.verdict == "inconclusive" and v.comparisons[0].stats["n"] == [3, 3]
    commands = v.hint.split(": ", 1)[1].split("; ")
    assert all("seed=3 --repeat 3" in c for c in commands)  # seeds 0-2 exist: the same seeds would add nothing
    for command in commands:
        assert cli(*shlex.split(command)[1:]).returncode == 0
    assert verdict(lab, "cmp").comparisons[0].stats["n"] == [6, 6]


# Deterministic: the seed changes nothing. `examples=1` also logs which of 500 examples were right.
DETERMINISTIC = """
import assay
p = assay.params()
correct = [1.0 if i % 25 else 0.0 for i in range(500)]  # 480 of 500 right, whatever the seed
assay.log({"acc": sum(correct) / len(correct)}, step=0)
if p["examples"]:
    assay.log_values("acc", correct)
"""


def test_equal_repeats_are_inconclusive_and_say_the_interval_measures_nothing(lab, make_experiment, cli):
    from assay.report.verdict import verdict

    make_experiment(DETERMINISTIC, name="det", config={"seed": 0, "examples": 0}, metric="acc", goal="max",
                    success="acc >= 0.9")
    run_experiment(lab, RunSpec("det", "same every seed", [], repeat=3))
    v = verdict(lab, "det")
    assert v.verdict == "inconclusive", v.reason
    (judged,) = v.configurations[0].judged
    assert judged.outcome == "undecided" and judged.stats["ci"][0] == judged.stats["ci"][1]
    assert judged.why.startswith("deterministic: seed noise is zero, the interval measures nothing")
    assert "deterministic: seed noise is zero" in json.loads(cli("verdict", "det", "--json").stdout)["reason"]


def test_equal_repeats_with_logged_examples_are_judged_by_a_bootstrap(lab, make_experiment, cli):
    from assay.report.verdict import verdict
    from assay.tracking import read_values

    make_experiment(DETERMINISTIC, name="det", config={"seed": 0, "examples": 1}, metric="acc", goal="max",
                    success="acc >= 0.9", failure="acc < 0.5")
    res = run_experiment(lab, RunSpec("det", "same every seed", [], repeat=2))
    assert [r.status for r in res] == ["ok", "ok"]
    values_file = res[-1].path / "data" / "values" / "acc.f64"
    assert values_file.stat().st_size == 500 * 8 and sum(read_values(res[-1].path, "acc")) == 480
    events = [json.loads(line) for line in (res[-1].path / "metrics.jsonl").read_text().splitlines()]
    assert {"name": "acc", "path": "data/values/acc.f64", "n": 500} in [e.get("values") for e in events]
    v = verdict(lab, "det")
    assert v.verdict == "supported", v.reason
    (judged,) = [j for j in v.configurations[0].judged if j.kind == "success"]
    assert judged.stats["sigma_source"] == "bootstrap" and judged.stats["examples"] == 500
    assert judged.stats["examples_of"] == res[-1].record["id"]
    lo, hi = judged.stats["ci"]
    assert 0.9 < lo < 0.96 < hi < 0.98  # 96% of 500: binomial s.e. 0.0088
    assert "bootstrap over the 500 examples" in judged.why
    out = json.loads(cli("verdict", "det", "--json").stdout)
    assert out["configurations"][0]["criteria"][0]["sigma_source"] == "bootstrap"
