"""`assay export mlflow` into a real MLflow store (SQLite), read back with MLflow's own client."""

from __future__ import annotations

import json
import time

import pytest

from assay.runner import RunSpec, run_experiment
from assay.store import records
from tests.integration.test_json_contract import check, documented

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

SCRIPT = """
import pathlib, sys
import assay

p = assay.params()
run = assay.init()
for step in range(3):
    assay.log({"val_loss": p["lr"] / (step + 1), "train_loss": 1.0 / (step + 1)}, step=step)
plot = pathlib.Path("curve.txt")
plot.write_text("a plot")
assay.log_artifact(plot, "plots")
assay.finish()
if p["lr"] > 1:
    sys.exit("diverged")
"""


@pytest.fixture
def two_runs(lab, make_experiment):
    exp = make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "opt": {"name": "adam"}}, metric="val_loss", goal="min")
    ok, = run_experiment(lab, RunSpec("exp", "base"))
    bad, = run_experiment(lab, RunSpec("exp", "big-lr", ["lr=2.0"]))
    assert (ok.status, bad.status) == ("ok", "failed"), bad.record.get("log_tail")
    return exp, ok, bad


def _by_assay_id(client, exp_id):
    return {r.data.tags["assay.run_id"]: r for r in client.search_runs([exp_id], max_results=100)}


def test_export_writes_params_step_metrics_tags_artifacts_and_reexport_updates(lab, two_runs, tmp_path):
    from assay.integrations.mlflow_export import export_mlflow

    exp, ok, bad = two_runs
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = export_mlflow(lab, "exp", uri, artifact_location=(tmp_path / "art").as_uri())
    assert [r["created"] for r in first["runs"]] == [True, True]

    client = MlflowClient(tracking_uri=uri)
    mexp = client.get_experiment_by_name("exp")
    assert mexp.tags["assay.hypothesis"] == "test"
    runs = _by_assay_id(client, mexp.experiment_id)
    assert set(runs) == {ok.record["id"], bad.record["id"]}
    m_ok, m_bad = runs[ok.record["id"]], runs[bad.record["id"]]

    assert m_ok.data.params == {"seed": "0", "lr": "0.5", "opt.name": "adam"}
    assert m_bad.data.params["lr"] == "2.0"
    assert (m_ok.info.status, m_bad.info.status) == ("FINISHED", "FAILED")
    assert m_ok.info.start_time == int(ok.record["started"] * 1000)
    tags = m_ok.data.tags
    assert tags["assay.status"] == "ok" and tags["assay.hypothesis"] == "test" and tags["mlflow.runName"] == "base"
    assert m_bad.data.tags["assay.reason"] == bad.record["reason"]

    # Every point, with its step and timestamp, exactly as in the run folder.
    expected = records.metric_series(ok.path)["val_loss"]
    history = client.get_metric_history(m_ok.info.run_id, "val_loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(s, v, int(t * 1000)) for s, v, t in expected]
    names = {a.path for a in client.list_artifacts(m_ok.info.run_id)}
    assert {"run.json", "logs", "plots", "metrics.jsonl"} <= names
    assert [a.path for a in client.list_artifacts(m_ok.info.run_id, "plots")] == ["plots/curve.txt"]

    # The run goes on in its folder (a new point), and gets ignored: a re-export updates, never duplicates.
    with (ok.path / records.METRICS_FILE).open("a") as fh:
        fh.write(json.dumps({"t": round(time.time(), 3), "step": 3, "m": {"val_loss": 0.05}}) + "\n")
    from assay.journal import ignore_run

    ignore_run(ok.path, "noisy baseline")
    second = export_mlflow(lab, "exp", uri)
    assert [r["created"] for r in second["runs"]] == [False, False]
    assert {r["run"]: (r["metrics"], r["artifacts"]) for r in second["runs"]} == {
        ok.record["id"]: (1, 1), bad.record["id"]: (0, 0)}  # one new point; metrics.jsonl changed size
    runs = _by_assay_id(client, mexp.experiment_id)
    assert len(client.search_runs([mexp.experiment_id])) == 2
    history = client.get_metric_history(runs[ok.record["id"]].info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert runs[ok.record["id"]].data.tags["assay.ignored"].startswith("noisy baseline")
    assert len(client.get_metric_history(runs[ok.record["id"]].info.run_id, "train_loss")) == 3


def test_cli_export_of_one_run_reports_json_and_unknown_refs_fail_clearly(lab, two_runs, cli, tmp_path):
    _, ok, _ = two_runs
    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    out = cli("export", "mlflow", ok.record["id"], "--tracking-uri", uri, "--no-artifacts", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["tracking_uri"] == uri and [r["run"] for r in res["runs"]] == [ok.record["id"]]
    row = res["runs"][0]
    assert row["created"] is True and row["artifacts"] == 0 and row["metrics"] == 6 and row["status"] == "FINISHED"
    assert MlflowClient(tracking_uri=uri).get_run(row["mlflow_run_id"]).data.tags["assay.run_id"] == ok.record["id"]

    bad = cli("export", "mlflow", "nope", "--tracking-uri", uri)
    assert bad.returncode == 1
    assert "'nope' is neither an experiment (known: exp) nor a run" in bad.stderr


PRUNABLE = """
import time, assay
p = assay.params()
for step in range(16):
    assay.log({"score": p["q"] * (step + 1)}, step=step)
    time.sleep(0.12)
"""


def test_sweep_exports_as_parent_run_with_nested_trials_and_pruned_trials_as_killed(lab, make_experiment, tmp_path):
    from assay.integrations.mlflow_export import export_mlflow
    from assay.sweep.driver import SweepConfig, run_sweep, start_sweep
    from assay.sweep.optuna_sampler import OptunaSampler
    from assay.sweep.space import space_from_args

    make_experiment(PRUNABLE, config={"seed": 0, "q": 1}, metric="score", goal="max")
    space = space_from_args(["q=1,2,6"])
    cfg = SweepConfig("exp", space, "tpe", trials=3, parallel=1, sampler_options={"startup_trials": 1, "warmup_steps": 0})
    sampler = OptunaSampler(space, "max", 0, startup_trials=1, warmup_steps=0)
    for q in (6, 1, 2):  # the best trial first: the two after it are pruned for certain
        sampler.study.enqueue_trial({"q": q})
    sf = start_sweep(lab, cfg)
    outcome = run_sweep(lab, sf, cfg, sampler=sampler)
    assert [t.status for t in outcome.trials] == ["ok", "pruned", "pruned"]

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = export_mlflow(lab, "exp", uri, artifacts=False)
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.get_experiment_by_name("exp").experiment_id
    parents = client.search_runs([exp_id], filter_string="tags.`assay.kind` = 'sweep'")
    assert len(parents) == 1 and res["sweeps"] == [{"sweep": f"exp/{sf.id}", "mlflow_run_id": parents[0].info.run_id,
                                                    "mlflow_experiment_id": exp_id}]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == f"sweep {sf.id}"
    assert parent.data.params["sampler"] == "tpe" and parent.data.params["trials"] == "3"
    assert parent.data.params["space.params.q.values"] == "[1, 2, 6]"
    assert parent.data.metrics["best_score"] == 96

    trials = client.search_runs([exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_trial = {r.data.tags["trial"]: r for r in trials}
    assert sorted(by_trial) == ["1", "2", "3"] and {r.data.tags["sweep"] for r in trials} == {sf.id}
    assert [by_trial[n].info.status for n in ("1", "2", "3")] == ["FINISHED", "KILLED", "KILLED"]
    assert by_trial["2"].data.tags["assay.status"] == "pruned"

    again = export_mlflow(lab, "exp", uri, artifacts=False)  # the parent is found again, not duplicated
    assert again["sweeps"][0]["mlflow_run_id"] == parent.info.run_id
    assert len(client.search_runs([exp_id])) == 4
    assert len(client.get_metric_history(parent.info.run_id, "best_score")) == 1


def test_statuses_stopped_from_outside_are_killed_and_every_status_maps_to_an_mlflow_one():
    from mlflow.entities import RunStatus

    from assay.integrations.mlflow_export import STATUS
    from assay.store.records import STATUSES

    mapped = {s: STATUS.get(s, "FAILED") for s in STATUSES}
    assert all(RunStatus.is_terminated(RunStatus.from_string(v)) or v == "RUNNING" for v in mapped.values())
    assert {s for s, v in mapped.items() if v == "KILLED"} == {"pruned", "interrupted", "killed", "lost"}
    assert {s for s, v in mapped.items() if v == "FAILED"} == {"failed", "timeout", "oom", "nan"}


def test_export_goes_to_MLFLOW_TRACKING_URI_else_the_labs_state_folder_never_the_lab_root(lab, two_runs, cli, tmp_path):
    before = sorted(p.name for p in lab.root.iterdir())
    uri = f"sqlite:///{tmp_path / 'env.db'}"
    out = cli("export", "mlflow", "exp", "--json", env={"MLFLOW_TRACKING_URI": uri})
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    check(res, documented()["export mlflow"], "export mlflow")  # the keys docs/ecosystem.md lists
    assert res["tracking_uri"] == uri and len(res["runs"]) == 2
    exp = MlflowClient(tracking_uri=uri).get_experiment_by_name("exp")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow 3's UI: the classic ML view
    # A SQLite store keeps its artifacts beside the database, not in ./mlruns of the working folder.
    assert exp.artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert (tmp_path / "mlartifacts").is_dir()

    out = cli("export", "mlflow", "exp", "--json", env={"MLFLOW_TRACKING_URI": ""})
    assert out.returncode == 0, out.stderr
    default = f"sqlite:///{(lab.root / '.assay' / 'mlflow.db').as_posix()}"
    assert json.loads(out.stdout)["tracking_uri"] == default
    assert len(MlflowClient(tracking_uri=default).search_runs([MlflowClient(tracking_uri=default).get_experiment_by_name("exp").experiment_id])) == 2
    assert (lab.root / ".assay" / "mlartifacts").is_dir()
    assert sorted(p.name for p in lab.root.iterdir()) == before  # no mlflow.db, mlruns/ or mlartifacts/ in the lab root
