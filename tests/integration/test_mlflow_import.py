"""`assay import mlflow` from a real MLflow store (SQLite), written with MLflow's own client."""

from __future__ import annotations

import json
import time

import pytest

from assay.runner import RunSpec, run_experiment
from assay.store import records
from tests.integration.test_json_contract import check, documented

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402

SCRIPT = """
import pathlib, sys
import assay

p = assay.params()
run = assay.init()
for step in range(3):
    assay.log({"val_loss": p["lr"] / (step + 1), "train_loss": 1.0 / (step + 1)}, step=step)
pathlib.Path("curve.txt").write_text("a plot")
assay.log_artifact(pathlib.Path("curve.txt"), "plots")
assay.finish()
print("done with lr", p["lr"])
"""


def _store(tmp_path, name="team-runs"):
    """A store as a team's MLflow scripts leave it: two finished runs, a failed one, one still running."""
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(name, (tmp_path / "team-art").as_uri())
    t0 = int(time.time() * 1000) - 60_000
    ids = []
    for i, (lr, status) in enumerate([(0.1, "FINISHED"), (0.01, "FINISHED"), (1.0, "FAILED"), (0.5, "RUNNING")]):
        run = client.create_run(exp_id, start_time=t0 + i * 1000, run_name=f"lr-{lr}", tags={"team": "vision"})
        rid = run.info.run_id
        client.log_batch(rid, params=[Param("lr", str(lr)), Param("model.depth", "4"), Param("opt", "adam")],
                         metrics=[Metric("val_acc", 0.5 + lr * k, t0 + i * 1000 + k * 10, k) for k in range(4)]
                         + [Metric("loss", 1.0 / (k + 1), t0 + i * 1000 + k * 10, k) for k in range(4)],
                         tags=[RunTag("mlflow.source.git.commit", "abc123")])
        notes = tmp_path / f"notes{i}.txt"
        notes.write_text(f"run {i}")
        client.log_artifact(rid, str(notes), "reports")
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=t0 + i * 1000 + 500)
        ids.append(rid)
    return uri, client, ids


def _records(exp_dir):
    return {r["tags"]["mlflow_run_id"]: r for r in
            (records.read_record(p) for p in records.run_folders(exp_dir / "runs"))}


def test_import_brings_params_metric_histories_tags_artifacts_and_reimport_is_idempotent(lab, cli, tmp_path):
    uri, client, ids = _store(tmp_path)
    out = cli("import", "mlflow", "--tracking-uri", uri, "--experiment", "team-runs", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    check(res, documented()["import mlflow"], "import mlflow")  # the keys docs/ecosystem.md lists
    assert res["experiment"] == "team-runs" and res["created"] is True
    # No --metric: the first metric in name order, and the result says it was a guess.
    assert (res["metric"], res["goal"], res["metric_guessed"]) == ("loss", "min", True)
    assert [r["mlflow_run_id"] for r in res["imported"]] == ids[:3]
    assert res["skipped"] == [{"mlflow_run_id": ids[3], "why": "RUNNING in MLflow: import it once it ends"}]

    exp_dir = lab.experiment_dir("team-runs")
    recs = _records(exp_dir)
    first = recs[ids[0]]
    assert first["params"] == {"lr": 0.1, "model": {"depth": 4}, "opt": "adam"}  # typed, dotted keys nested again
    assert first["status"] == "ok" and recs[ids[2]]["status"] == "failed" and "FAILED in MLflow" in recs[ids[2]]["reason"]
    assert first["desc"] == "lr-0.1" and first["tags"]["team"] == "vision" and first["git"] == {"commit": "abc123"}
    assert first["tags"]["mlflow_experiment"] == "team-runs" and "mlflow.source.git.commit" not in first["tags"]
    assert first["metrics"]["val_acc"]["count"] == 4 and first["metrics"]["val_acc"]["last_step"] == 3
    path = exp_dir / "runs"
    folder = next(p for p in records.run_folders(path) if records.read_record(p)["tags"]["mlflow_run_id"] == ids[0])
    history = client.get_metric_history(ids[0], "val_acc")
    assert records.metric_series(folder)["val_acc"] == [(m.step, m.value, m.timestamp / 1000) for m in history]
    assert (folder / "reports" / "notes0.txt").read_text() == "run 0" and first["artifacts"] == ["reports/notes0.txt"]

    # The runs are listed like any others; config.yaml holds the params of the newest finished run.
    runs = cli("runs", "team-runs", "--json")
    assert runs.returncode == 0, runs.stderr
    assert json.loads(runs.stdout)["total"] == 3
    from assay.config import load_yaml

    assert load_yaml(exp_dir / "config.yaml") == {"lr": 0.01, "model": {"depth": 4}, "opt": "adam"}

    client.set_terminated(ids[3], "FINISHED")  # the running one ends; importing again brings only it
    again = cli("import", "mlflow", "--tracking-uri", uri, "--experiment", "team-runs", "--json")
    assert again.returncode == 0, again.stderr
    res2 = json.loads(again.stdout)
    assert [r["mlflow_run_id"] for r in res2["imported"]] == [ids[3]] and res2["created"] is False
    assert sorted(s["mlflow_run_id"] for s in res2["skipped"]) == sorted(ids[:3])
    assert len(records.run_folders(path)) == 4


def test_round_trip_assay_to_mlflow_and_back_keeps_params_and_metrics(lab, make_experiment, tmp_path):
    from assay.integrations.mlflow_export import export_mlflow
    from assay.integrations.mlflow_import import import_mlflow

    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "opt": {"name": "adam"}}, metric="val_loss", goal="min")
    originals = [run_experiment(lab, RunSpec("exp", desc, [f"lr={lr}"]))[0] for desc, lr in (("a", 0.5), ("b", 0.25))]
    assert [r.status for r in originals] == ["ok", "ok"]
    uri = f"sqlite:///{tmp_path / 'rt.db'}"
    export_mlflow(lab, "exp", uri)

    res = import_mlflow(lab, tracking_uri=uri, experiment="exp", into="exp-back")
    # The export recorded the primary metric and goal: the new experiment takes them, no guess.
    assert (res["created"], res["metric"], res["goal"], res["metric_guessed"]) == (True, "val_loss", "min", False)
    back = {records.read_record(p)["desc"]: p for p in records.run_folders(lab.experiment_dir("exp-back") / "runs")}
    assert sorted(back) == ["a", "b"]
    for orig in originals:
        path = back[orig.record["desc"]]
        rec = records.read_record(path)
        assert rec["params"] == orig.record["params"] and rec["status"] == "ok" and rec["experiment"] == "exp-back"
        assert rec["metrics"] == orig.record["metrics"]
        for key, series in records.metric_series(orig.path).items():
            got = records.metric_series(path)[key]
            assert [(s, v) for s, v, _ in got] == [(s, v) for s, v, _ in series]
            assert all(abs(a[2] - b[2]) < 0.002 for a, b in zip(got, series))  # MLflow keeps milliseconds
        assert (path / "plots" / "curve.txt").read_text() == "a plot"
        assert "done with lr" in rec["log_tail"]  # the exported log came back with the run
    assert import_mlflow(lab, tracking_uri=uri, experiment="exp", into="exp-back")["imported"] == []


def test_import_errors_name_the_bad_value_and_the_fix_and_exit_2(lab, cli, tmp_path):
    uri, _, _ = _store(tmp_path)
    out = cli("import", "mlflow", "--tracking-uri", uri, "--experiment", "nope")
    assert out.returncode == 2 and "No MLflow experiment 'nope' (known: Default, team-runs)" in out.stderr
    out = cli("import", "mlflow", "--experiment", "team-runs", env={"MLFLOW_TRACKING_URI": ""})
    assert out.returncode == 2 and "neither --tracking-uri nor MLFLOW_TRACKING_URI" in out.stderr
    out = cli("import", "mlflow", "--tracking-uri", uri, "--experiment", "team-runs", "--into", "../x")
    assert out.returncode == 2 and "Pass --into NAME" in out.stderr
    assert "Traceback" not in out.stderr
