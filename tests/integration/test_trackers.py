"""Scripts that log through MLflow, W&B, TensorBoard or trackio, run unmodified with `assay run`:
each tracker writes into the run folder, and what it logged lands in the run's record.

Every test drives the real library in a real subprocess; a test skips only when its tracker is not
installed (the `trackers` extra)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.runner import RunSpec, run_experiment
from assay.store import records


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _run(lab, exp, *overrides: str):
    """Run `exp` once; assert it left nothing in the experiment folder outside its run folder."""
    before = _files(exp.path)
    res, = run_experiment(lab, RunSpec(exp.name, "t", list(overrides)))
    rel = res.path.relative_to(exp.path).as_posix()
    new = {f for f in _files(exp.path) - before if f != "runs" and f != rel and not f.startswith(rel + "/")}
    assert not new, f"the run left files outside its folder: {sorted(new)}"
    assert res.status == "ok", res.record.get("log_tail")
    return res


def _sources(path: Path) -> dict[str, set[str]]:
    """{metric: {src, ...}} of the run's metrics.jsonl (src "api" for the assay API); the runner's
    own sys/* samples (a run slower than the sampling interval, e.g. on a busy machine) left out."""
    out: dict[str, set[str]] = {}
    for ev in records.iter_events(path):
        if ev.get("src") == "sys":
            continue
        for k in ev.get("m") or {}:
            out.setdefault(k, set()).add(ev.get("src", "api"))
    return out


MLFLOW_SCRIPT = """
import pathlib
import mlflow

mlflow.set_experiment("demo")
with mlflow.start_run():
    mlflow.log_params({"lr": 0.1, "opt": "adam"})
    for step in range(3):
        mlflow.log_metric("val_loss", 1.0 / (step + 1), step=step)
    pathlib.Path("model.txt").write_text("weights")
    mlflow.log_artifact("model.txt")
pathlib.Path("model.txt").unlink()
"""


def test_mlflow_params_metric_history_and_artifacts_land_in_the_run(lab, make_experiment):
    pytest.importorskip("mlflow")
    exp = make_experiment(MLFLOW_SCRIPT, metric="val_loss", goal="min")
    res = _run(lab, exp)

    m = res.record["metrics"]["val_loss"]
    assert (m["count"], m["last"], m["best"], m["best_step"]) == (3, pytest.approx(1 / 3), pytest.approx(1 / 3), 2)
    assert res.record["logged_params"] == {"lr": "0.1", "opt": "adam"}
    assert _sources(res.path) == {"val_loss": {"mlflow"}}
    art, = [a for a in res.record["artifacts"] if a.endswith("model.txt")]
    assert art.startswith("trackers/mlruns/") and (res.path / art).read_text() == "weights"
    assert not (exp.path / "mlruns").exists() and not (exp.path / "mlflow.db").exists()

    # The store still works with MLflow's own client: its artifacts point into the run folder.
    code = ("import sys, mlflow; c = mlflow.MlflowClient(sys.argv[1]); r, = c.search_runs(['1']);"
            "print(mlflow.artifacts.download_artifacts(run_id=r.info.run_id, artifact_path='model.txt', tracking_uri=sys.argv[1]))")
    uri = "sqlite:///" + (res.path / "trackers" / "mlflow.db").as_posix()
    out = subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True, timeout=120, cwd=res.path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip().splitlines()[-1]).read_text() == "weights"


PRECEDENCE_SCRIPT = """
import assay
import mlflow

assay.log({"acc": 0.5}, step=0)           # the assay API: wins over every tracker
print("val_loss: 9.0")                     # printed output: loses to the tracker
with mlflow.start_run():
    mlflow.log_metric("acc", 0.1, step=0)
    mlflow.log_metric("val_loss", 0.25, step=0)
assay.finish()
"""


def test_api_wins_over_a_tracker_which_wins_over_printed_output(lab, make_experiment):
    pytest.importorskip("mlflow")
    exp = make_experiment(PRECEDENCE_SCRIPT, metric="val_loss", goal="min")
    res = _run(lab, exp)
    metrics = res.record["metrics"]
    assert (metrics["acc"]["last"], metrics["val_loss"]["last"]) == (0.5, 0.25)
    assert _sources(res.path) == {"acc": {"api"}, "val_loss": {"out", "mlflow"}}


WANDB_SCRIPT = """
import wandb

run = wandb.init(project="demo", config={"lr": 0.1, "model": {"depth": 3}})
for step in range(3):
    wandb.log({"val_loss": 1.0 / (step + 1), "train/loss": 2.0 / (step + 1)})
run.summary["best_acc"] = 0.97
run.finish()
"""


def test_wandb_offline_history_config_and_summary_land_in_the_run(lab, make_experiment):
    pytest.importorskip("wandb")
    exp = make_experiment(WANDB_SCRIPT, metric="val_loss", goal="min")
    res = _run(lab, exp)

    metrics = res.record["metrics"]
    assert (metrics["val_loss"]["count"], metrics["val_loss"]["last"], metrics["val_loss"]["last_step"]) == (3, pytest.approx(1 / 3), 2)
    assert metrics["train/loss"]["last"] == pytest.approx(2 / 3)
    assert metrics["best_acc"]["last"] == 0.97
    assert res.record["logged_params"] == {"lr": 0.1, "model": {"depth": 3}}
    assert {"val_loss", "train/loss", "best_acc"} <= set(_sources(res.path))
    assert all(s == {"wandb"} for s in _sources(res.path).values())
    assert list((res.path / "trackers" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert not (exp.path / "wandb").exists()


def test_a_wandb_file_cut_mid_record_yields_the_records_before_the_cut(lab, make_experiment, tmp_path):
    pytest.importorskip("wandb")
    from assay.integrations.trackers import _wandb

    exp = make_experiment(WANDB_SCRIPT, metric="val_loss", goal="min")
    res = _run(lab, exp)
    file, = (res.path / "trackers" / "wandb").glob("offline-run-*/run-*.wandb")
    whole = _wandb(res.path)
    data = file.read_bytes()
    file.write_bytes(data[:data.index(b"0.3333333333333333") + 4])  # a kill while the third step was written
    torn = _wandb(res.path)
    assert [p for p in torn.points if p[2] == "val_loss"] == [p for p in whole.points if p[2] == "val_loss"][:2]


TENSORBOARDX_SCRIPT = """
from tensorboardX import SummaryWriter

writer = SummaryWriter()  # the default folder: ./runs/<date>_<host>, inside assay's runs/
for step in range(4):
    writer.add_scalar("val_loss", 1.0 / (step + 1), step)
writer.close()
"""


def test_tensorboard_default_summary_writer_folder_is_moved_out_of_assays_runs(lab, make_experiment):
    pytest.importorskip("tensorboard")
    pytest.importorskip("tensorboardX")
    exp = make_experiment(TENSORBOARDX_SCRIPT, metric="val_loss", goal="min")
    res = _run(lab, exp)

    m = res.record["metrics"]["val_loss"]
    assert (m["count"], m["last"], m["last_step"]) == (4, 0.25, 3)
    assert records.run_folders(exp.path / "runs") == [res.path]  # SummaryWriter's folder is gone from runs/
    moved = [a for a in res.record["artifacts"] if "tfevents" in a]
    assert moved and all(a.startswith("trackers/tensorboard/runs/") and (res.path / a).is_file() for a in moved)


TENSORBOARD_SCRIPT = """
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

# The writer torch.utils.tensorboard uses, writing Keras-style train/ and validation/ folders.
for folder, scale in (("logs/train", 1.0), ("logs/validation", 2.0)):
    writer = EventFileWriter(folder)
    for step in range(3):
        value = summary_pb2.Summary.Value(tag="epoch_loss", simple_value=scale / (step + 1))
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0 + step, summary=summary_pb2.Summary(value=[value])))
    writer.close()
"""


def test_tensorboard_scalars_of_the_same_tag_in_two_folders_are_named_after_the_folder(lab, make_experiment):
    pytest.importorskip("tensorboard")
    exp = make_experiment(TENSORBOARD_SCRIPT, metric="validation/epoch_loss", goal="min")
    res = _run(lab, exp)
    metrics = res.record["metrics"]
    assert metrics["train/epoch_loss"]["last"] == pytest.approx(1 / 3)
    assert (metrics["validation/epoch_loss"]["last"], metrics["validation/epoch_loss"]["count"]) == (pytest.approx(2 / 3), 3)
    assert not (exp.path / "logs").exists()


def test_an_event_file_whose_writer_is_still_alive_is_left_in_place(lab, make_experiment):
    pytest.importorskip("tensorboard")
    import socket
    import time

    from assay.integrations.trackers import import_trackers

    exp = make_experiment("print('val_loss: 1.0')", metric="val_loss", goal="min")
    res, = run_experiment(lab, RunSpec(exp.name, "t"))
    # Files named as torch names them: one by this live test process (another run's, or a
    # notebook's), one by a process that has exited (the run's own writer, in a subprocess).
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
    (exp.path / "logs").mkdir()
    live = exp.path / "logs" / f"{name}.{os.getpid()}.0"
    gone = exp.path / "logs" / f"{name}.{dead.stdout.strip()}.0"
    live.write_bytes(b"")
    gone.write_bytes(b"")

    assert import_trackers(res.path, exp.path, started=res.record["started"]) == []
    assert live.is_file() and not gone.exists()
    assert (res.path / "trackers" / "tensorboard" / "logs" / gone.name).is_file()


TRACKIO_SCRIPT = """
import trackio

trackio.init(project="demo", config={"lr": 0.1})
for step in range(3):
    trackio.log({"val_loss": 1.0 / (step + 1), "grad": float("nan")})
trackio.finish()
"""


def test_trackio_metrics_and_config_land_in_the_run(lab, make_experiment):
    pytest.importorskip("trackio")
    exp = make_experiment(TRACKIO_SCRIPT, metric="val_loss", goal="min")
    res = _run(lab, exp)
    metrics = res.record["metrics"]
    assert (metrics["val_loss"]["count"], metrics["val_loss"]["last"], metrics["val_loss"]["last_step"]) == (3, pytest.approx(1 / 3), 2)
    assert metrics["grad"]["count"] == 3 and metrics["grad"]["best"] is None  # NaN kept as NaN, never a best
    assert res.record["logged_params"] == {"lr": 0.1}
    assert list((res.path / "trackers" / "trackio").glob("*.db"))


CORRUPT_TRACKIO_SCRIPT = """
import os, pathlib
folder = pathlib.Path(os.environ["TRACKIO_DIR"])
folder.mkdir(parents=True)
(folder / "demo.db").write_bytes(b"not a database")
print("val_loss: 0.5")
"""


def test_unreadable_tracker_data_is_a_warning_and_the_run_keeps_its_metrics(lab, make_experiment):
    exp = make_experiment(CORRUPT_TRACKIO_SCRIPT, metric="val_loss", goal="min")
    res = _run(lab, exp)
    assert res.record["metrics"]["val_loss"]["last"] == 0.5
    assert any(w.startswith("importing trackio data failed: DatabaseError") for w in res.record["warnings"]), res.record


def test_a_run_without_trackers_loads_no_tracker_library_and_leaves_no_trackers_folder(lab, make_experiment):
    exp = make_experiment("print('val_loss: 0.5')", metric="val_loss", goal="min")
    res = _run(lab, exp)
    assert not (res.path / "trackers").exists() and "warnings" not in res.record
    code = ("import json, sys, time; from pathlib import Path; from assay.integrations.trackers import import_trackers;"
            "t = time.perf_counter(); w = import_trackers(Path(sys.argv[1]), Path(sys.argv[2]), started=0);"
            "print(json.dumps([w, time.perf_counter() - t, [m for m in ('mlflow', 'wandb', 'tensorboard', 'trackio') if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code, str(res.path), str(exp.path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    warnings, seconds, loaded = json.loads(out.stdout)
    assert (warnings, loaded) == ([], [])
    assert seconds < 0.5  # measured: about 1 ms


def test_a_tracker_location_the_user_set_is_left_alone(lab, make_experiment, monkeypatch, tmp_path):
    from assay.integrations.trackers import prepare_trackers

    (tmp_path / "run").mkdir()
    env = prepare_trackers(tmp_path / "run", {"MLFLOW_TRACKING_URI": "http://mlflow.internal:5000", "WANDB_MODE": "online"})
    assert "MLFLOW_TRACKING_URI" not in env and "WANDB_MODE" not in env
    assert env["WANDB_DIR"] == str(tmp_path / "run" / "trackers") and env["TRACKIO_DIR"] == str(tmp_path / "run" / "trackers" / "trackio")

    exp = make_experiment("import json, os; print(json.dumps({k: os.environ.get(k) for k in ('MLFLOW_TRACKING_URI', 'WANDB_MODE')}))",
                          metric="val_loss", goal="min")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + (tmp_path / "mine.db").as_posix())
    res, = run_experiment(lab, RunSpec(exp.name, "t"))
    seen = json.loads(records.log_tail(res.path).splitlines()[-1])
    assert seen == {"MLFLOW_TRACKING_URI": "sqlite:///" + (tmp_path / "mine.db").as_posix(), "WANDB_MODE": "offline"}
