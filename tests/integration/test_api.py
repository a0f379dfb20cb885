"""The Python front door (assay.api): each function drives real runs in a tmp lab, returns a typed
result, and its `to_dict()` is exactly what the matching command prints under `--json`."""

from __future__ import annotations

import json

import pytest

import assay
from assay import api
from assay.errors import AssayError, ConfigError
from assay.report.verdict import Verdict
from assay.sweep.config import SweepConfig
from assay.sweep.driver import SweepOutcome

SCRIPT = """
import random, assay
p = assay.params()
random.seed(p["seed"])
for step in range(2):
    print(f"step={step} val_f1={p['lr'] * (step + 1) + random.random() * 0.01}", flush=True)
"""


def as_json(result: object) -> object:
    """`to_dict()` through the same strict-JSON round trip as `--json`."""
    return json.loads(json.dumps(api.json_safe(result.to_dict()), default=str))


def cli_json(cli, *args: str) -> object:
    out = cli(*args, "--json")
    assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
    return json.loads(out.stdout)


@pytest.fixture
def exp(make_experiment):
    return make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5}, metric="val_f1", goal="max",
                           success="val_f1 >= 0.9", failure="val_f1 < 0.1")


def test_run_returns_typed_runs_with_the_keys_of_cli_run_json(lab, exp, cli):
    runs = api.run("exp", "base", params={"lr": 0.7}, seed=3, repeat=2, lab=lab)
    assert isinstance(runs, api.Runs) and len(runs) == 2
    assert runs.status == "ok" and runs.exit_code == 0
    assert [r.record["seed"] for r in runs] == [3, 4] and runs[0].record["params"]["lr"] == 0.7
    assert runs.value() == pytest.approx(1.4, abs=0.02)
    from_cli = cli_json(cli, "run", "exp", "other", "lr=0.7")
    assert set(as_json(runs)[0]) == set(from_cli[0])
    shown = cli_json(cli, "show", runs[0].record["id"])
    assert {k: as_json(runs)[0][k] for k in ("id", "status", "params", "metrics", "path")} == {
        k: shown[k] for k in ("id", "status", "params", "metrics", "path")}


def test_a_failed_run_is_a_status_and_an_exit_code_not_an_exception(lab, make_experiment):
    make_experiment("import sys\nsys.exit(3)\n")
    runs = api.run("exp", "crash", lab=lab)
    assert runs.status == "failed" and runs.exit_code == 1


def test_run_refuses_an_unknown_param_before_making_a_folder(lab, exp):
    with pytest.raises(ConfigError, match="nosuch"):
        api.run("exp", "bad", params={"nosuch": 1}, lab=lab)
    assert api.runs(lab=lab).total == 0


def test_runs_show_compare_verdict_match_their_cli_json(lab, exp, cli):
    for lr in (0.5, 0.95):
        api.run("exp", f"lr{lr}", params={"lr": lr}, repeat=2, lab=lab)
    table = api.runs(experiment="exp", sort="val_f1", lab=str(lab.root))  # a folder works as `lab`
    assert isinstance(table, api.RunsTable) and table.total == 4
    assert as_json(table) == cli_json(cli, "runs", "exp", "--sort", "val_f1")

    rid = table.runs[0]["id"]
    details = api.show(rid, lab=lab)
    assert isinstance(details, api.RunDetails) and details.id == rid and details.status == "ok"
    assert as_json(details) == cli_json(cli, "show", rid)

    cmp = api.compare("exp", by=["lr"], lab=lab)
    assert isinstance(cmp, api.Comparison) and len(cmp.rows) == 2 and cmp.rows[cmp.best]["lr"] == 0.95
    assert as_json(cmp) == cli_json(cli, "compare", "exp", "--by", "lr")

    v = api.verdict("exp", lab=lab)
    assert isinstance(v, Verdict) and v.verdict in ("supported", "refuted", "inconclusive")
    assert as_json(v) == cli_json(cli, "verdict", "exp")


def test_note_journal_ignore_status_match_their_cli_json(lab, exp, cli):
    [run] = api.run("exp", "base", lab=lab)
    n = api.note("exp", "[HUNCH] lr matters", run=run.record["id"], lab=lab)
    assert n.entry.tag == "HUNCH" and n.journal.name == "JOURNAL.md"
    j = api.journal("exp", lab=lab)
    assert [e.text for e in j] == ["lr matters"] and as_json(j) == cli_json(cli, "journal", "exp")
    st = api.status(lab=lab)
    assert st.running == [] and st.lost == [] and as_json(st) == cli_json(cli, "status")
    gone = api.ignore(run.record["id"], why="a loader bug", lab=lab)
    assert gone.id == run.record["id"] and api.runs(lab=lab).total == 0


def test_sweep_takes_a_mapping_and_returns_the_outcome_cli_sweep_prints(lab, exp, cli):
    seen: list[str] = []
    out = api.sweep("exp", {"lr": [0.2, 0.4]}, parallel=1, on_event=lambda ev: seen.append(ev.kind), lab=lab)
    assert isinstance(out, SweepOutcome) and out.status == "done" and len(out.trials) == 2
    assert out.best is not None and out.best.params["lr"] == 0.4 and "trial_finished" in seen
    from_cli = cli_json(cli, "sweep", "exp", "lr=0.2,0.4", "-j", "1")
    mine = as_json(out)
    assert set(mine) == set(from_cli)
    assert [(t["params"], t["status"]) for t in mine["trials"]] == [(t["params"], t["status"]) for t in from_cli["trials"]]


def test_sweep_file_options_given_explicitly_win_over_its_keys(lab, exp, tmp_path):
    file = tmp_path / "sweep.yaml"
    file.write_text("params:\n  lr: [0.1, 0.2, 0.3]\nsampler: random\ntrials: 2\nseed: 7\n")
    cfg = SweepConfig.from_file(file, experiment="exp", trials=3)
    assert (cfg.sampler, cfg.trials, cfg.seed, sorted(cfg.space.dims)) == ("random", 3, 7, ["lr"])
    file.write_text("params:\n  lr: [0.1]\nsampler: grid\ntrails: 2\n")
    with pytest.raises(ConfigError, match="Unknown key 'trails'.*Did you mean 'trials'"):
        SweepConfig.from_file(file, experiment="exp")


def test_new_experiment_matches_cli_new_json_keys(lab, cli):
    made = api.new_experiment("made", hypothesis="a bigger lr helps", metric="val_f1", goal="max", lab=lab)
    assert isinstance(made, api.ExperimentInfo) and made.path == lab.experiment_dir("made") and made.goal == "max"
    assert (made.path / "experiment.yaml").exists()
    from_cli = cli_json(cli, "new", "other", "-H", "a bigger lr helps", "--metric", "val_f1", "--goal", "max")
    assert set(as_json(made)) == set(from_cli) and as_json(made)["adopted"] is None
    with pytest.raises(ConfigError, match="hypothesis"):
        api.new_experiment("nohyp", hypothesis="", lab=lab)


def test_detached_run_returns_at_once_and_wait_returns_its_outcome(lab, exp):
    started = api.run("exp", "-dash-desc", params={"lr": 0.3}, detach=True, lab=lab)
    assert started.to_dict()["status"] == "running"
    waited = api.wait([started.id], timeout=60, lab=lab)
    assert not waited.timed_out and waited.exit_code == 0
    assert [r["status"] for r in waited.runs] == ["ok"] and api.show(started.id, lab=lab).raw["params"]["lr"] == 0.3
    with pytest.raises(AssayError, match="Unknown parameter 'nosuch'") as err:
        api.run("exp", "bad", params={"nosuch": 1}, detach=True, lab=lab)
    assert err.value.exit_code == 2


def test_gate_and_best_read_the_runs_and_match_their_cli_json(lab, exp, cli):
    api.run("exp", "base", lab=lab)
    g = api.check_gate("exp", "val_f1 >= 0.5", lab=lab)
    assert g.holds and as_json(g) | {"exit": 0} == cli_json(cli, "gate", "exp", "val_f1 >= 0.5")
    b = api.best("exp", lab=lab)
    assert b.path and as_json(b) == cli_json(cli, "best", "exp")


def test_the_package_exposes_the_front_door_lazily_beside_the_tracker(lab, exp, monkeypatch):
    monkeypatch.chdir(lab.root)  # lab=None: the lab around the working directory
    assert assay.run is api.run and assay.runs is api.runs and assay.Run is not assay.run
    assay.run("exp", "from-cwd")
    assert assay.runs().total == 1 and assay.compare("exp").rows[0]["n"] == 1
