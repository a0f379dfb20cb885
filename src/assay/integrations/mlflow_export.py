"""Export assay runs into an MLflow tracking store (`assay export mlflow`).

The run folders stay the truth; MLflow gets a copy to browse in its UI or feed its tooling. Each
assay run maps to one MLflow run, found again by its `assay.run_id` tag, so exporting twice
updates (new metric points, new artifacts, status, tags) and never duplicates:

- params: the run's params, flattened to dotted keys (plus params logged through the API);
- metrics: every point with its step and timestamp (points already there are not sent again);
- tags: `assay.*` (run id, experiment, hypothesis, status, reason, ...), the run's own tags, and
  MLflow's `mlflow.source.git.commit` / `.branch` and `mlflow.runName`;
- artifacts: every file of the run folder (run.json, logs, plots, checkpoints, data, patch,
  executed notebook), skipping files already uploaded with the same size;
- status: ok is FINISHED; runs stopped from outside (pruned by a sweep, interrupted, killed, lost)
  are KILLED; the others (failed, timeout, oom, nan) FAILED. `assay.status` keeps the exact one.

A sweep becomes a parent run (tag `assay.sweep` = `<experiment>/<sweep id>`: its settings as
params, the best trial's value as `best_<metric>`) with its trials nested under it
(`mlflow.parentRunId`), each trial keeping its `sweep` and `trial` tags. Experiments are tagged
`mlflow.experimentKind = custom_model_development`, so MLflow 3's UI opens its classic (model
training) view rather than the GenAI one.

Where: `--tracking-uri`, else `MLFLOW_TRACKING_URI`, else `sqlite:///<lab>/.assay/mlflow.db`;
nothing goes to the lab root unless asked. For a SQLite store, experiments created by the export
keep their artifacts next to the database (`<folder of the .db>/mlartifacts`), not in MLflow's
default `./mlruns` of the working directory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.config import flatten
from assay.errors import ConfigError, RunError, StoreError
from assay.lab import Lab
from assay.store import records

RUN_ID_TAG = "assay.run_id"
SWEEP_TAG = "assay.sweep"  # on a sweep's parent run: `<experiment>/<sweep id>`
KIND_TAG = "assay.kind"  # "sweep" on a sweep's parent run (an import skips those)
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # MLflow 3's UI: the classic ML view
# Stopped from outside (a pruner, Ctrl-C, a kill, a vanished process) is KILLED; others: FAILED.
STATUS = {"ok": "FINISHED", "running": "RUNNING", "pruned": "KILLED", "interrupted": "KILLED", "killed": "KILLED",
          "lost": "KILLED"}
SWEEP_STATUS = {"running": "RUNNING", "interrupted": "KILLED", "refused": "FAILED"}  # others (done, exhausted): FINISHED
DEFAULT_DB = "mlflow.db"  # under the lab's .assay/ when neither --tracking-uri nor MLFLOW_TRACKING_URI is set
_MAX_VALUE = 5000  # below MLflow's limits for param (6000) and tag values (8000) in every 2.x/3.x store
_BATCH = 900  # log_batch takes at most 1000 entities per call


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 3] + "..."


def select_runs(lab: Lab, ref: str | None) -> list[Path]:
    """Run folders for `ref`: an experiment name (all its runs), a run reference, or None (all runs)."""
    from assay.experiment import list_experiments
    from assay.store.query import find_run

    names = list_experiments(lab)
    if ref is None or ref in names:
        chosen = names if ref is None else [ref]
        return sorted(p for n in chosen for p in records.run_folders(lab.experiment_dir(n) / "runs")
                      if (p / records.RECORD_FILE).is_file())
    try:
        return [find_run(lab, ref)]
    except RunError as exc:
        raise RunError(f"'{ref}' is neither an experiment (known: {', '.join(names) or 'none'}) nor a run: {exc.message}",
                       "Pass an experiment name, a run id from `assay runs`, or nothing to export every run.") from None


def _tags(record: dict[str, Any], hypothesis: str, ignored: str | None) -> dict[str, str]:
    tags = {str(k): _short(v) for k, v in (record.get("tags") or {}).items()}
    tags.update({
        RUN_ID_TAG: record["id"], "assay.experiment": record.get("experiment", ""), "assay.status": record["status"],
        "assay.desc": record.get("desc", ""), "assay.primary_metric": record.get("primary_metric") or "",
        "assay.goal": record.get("goal") or "", "assay.seed": _short(record.get("seed")),
        "assay.hypothesis": _short(hypothesis), "mlflow.note.content": _short(hypothesis),
        "mlflow.runName": record.get("desc") or record["id"], "mlflow.source.name": _short(record.get("entry", "")),
    })
    for key in ("reason", "group"):
        if record.get(key):
            tags[f"assay.{key}"] = _short(record[key])
    if ignored:
        tags["assay.ignored"] = _short(ignored)
    git = record.get("git") or {}
    if git.get("commit"):
        tags["mlflow.source.git.commit"] = git["commit"]
        tags["assay.git.dirty"] = "true" if git.get("dirty") else "false"
    if git.get("branch"):
        tags["mlflow.source.git.branch"] = str(git["branch"])
    return tags


def _files(path: Path) -> Iterator[tuple[Path, str]]:
    """(file, artifact folder) for every file of a run folder; the relative layout is kept."""
    for file in sorted(path.rglob("*")):
        if file.is_file():
            parent = file.parent.relative_to(path).as_posix()
            yield file, "" if parent == "." else parent


def _uploaded(client: Any, run_id: str, folder: str | None = None) -> dict[str, int | None]:
    """{artifact path: size} of what the MLflow run holds already (recursively)."""
    out: dict[str, int | None] = {}
    for info in client.list_artifacts(run_id, folder):
        if info.is_dir:
            out.update(_uploaded(client, run_id, info.path))
        else:
            out[info.path] = info.file_size
    return out


def _metric_key(step: int, ts: int, value: float) -> tuple[int, int, str]:
    return step, ts, "nan" if math.isnan(value) else repr(float(value))


def export_run(client: Any, experiment_id: str, path: Path, hypothesis: str, artifacts: bool = True,
               parent_run_id: str | None = None) -> dict[str, Any]:
    """Create or update the MLflow run of one assay run folder (nested under `parent_run_id`, a
    sweep's run, when given); returns what was sent."""
    from mlflow.entities import Metric, Param, RunTag

    from assay.journal import ignored_runs

    record = records.read_record(path)

    found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{record['id']}'", max_results=2)
    started_ms = int(float(record.get("started") or 0) * 1000) or None
    if found:
        run = found[0]
        created = False
    else:
        run = client.create_run(experiment_id, start_time=started_ms, tags={RUN_ID_TAG: record["id"]},
                                run_name=record.get("desc") or record["id"])
        created = True
    rid = run.info.run_id

    have_params = run.data.params
    params = {k: _short(v) for k, v in flatten(record.get("params") or {}).items()}
    params.update({k: _short(v) for k, v in flatten(record.get("logged_params") or {}).items() if k not in params})
    # MLflow params are write-once: send only keys it lacks (a run's params never change in assay).
    new_params = [Param(k, v) for k, v in params.items() if k not in have_params]

    new_metrics = []
    for key, series in records.metric_series(path).items():
        have = set() if created else {_metric_key(m.step, m.timestamp, m.value) for m in client.get_metric_history(rid, key)}
        for step, value, t in series:
            point = (int(step), int(float(t) * 1000), float(value))
            if _metric_key(*point) not in have:
                new_metrics.append(Metric(key, point[2], point[1], point[0]))

    tag_map = _tags(record, hypothesis, ignored_runs(path.parent.parent).get(path.name))
    if parent_run_id:
        tag_map["mlflow.parentRunId"] = parent_run_id
    tags = [RunTag(k, v) for k, v in tag_map.items()]
    entities: list[tuple[str, Any]] = [("p", p) for p in new_params] + [("t", t) for t in tags] + [("m", m) for m in new_metrics]
    for start in range(0, len(entities), _BATCH):
        chunk = entities[start:start + _BATCH]
        client.log_batch(rid, metrics=[e for k, e in chunk if k == "m"], params=[e for k, e in chunk if k == "p"],
                         tags=[e for k, e in chunk if k == "t"])

    sent_files = 0
    if artifacts:
        have_files = {} if created else _uploaded(client, rid)
        for file, folder in _files(path):
            rel = f"{folder}/{file.name}" if folder else file.name
            if have_files.get(rel) != file.stat().st_size:
                client.log_artifact(rid, str(file), folder or None)
                sent_files += 1

    status = STATUS.get(record["status"], "FAILED")
    if status == "RUNNING":
        client.update_run(rid, status=status)
    else:
        ended = record.get("ended") or record.get("started") or 0
        client.set_terminated(rid, status=status, end_time=int(float(ended) * 1000))
    return {"run": record["id"], "mlflow_run_id": rid, "created": created, "status": status,
            "params": len(new_params), "metrics": len(new_metrics), "artifacts": sent_files}


def resolve_tracking_uri(lab: Lab, given: str | None) -> str:
    """The store to export to: `given` (--tracking-uri), else MLFLOW_TRACKING_URI, else a SQLite
    database in the lab's .assay/ folder (never the lab root: it is the user's folder)."""
    if given:
        return given
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    lab.state_dir.mkdir(exist_ok=True)
    return "sqlite:///" + (lab.state_dir / DEFAULT_DB).as_posix()


def default_artifact_location(tracking_uri: str) -> str | None:
    """`<folder of the database>/mlartifacts` for a SQLite store (MLflow's own default is
    `./mlruns` of the working directory, which would litter the lab); None: the store decides."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = tracking_uri[len("sqlite:///"):].split("?", 1)[0]
    if not db or db == ":memory:":
        return None
    return (Path(db).resolve().parent / "mlartifacts").as_uri()


def _experiment_id(client: Any, name: str, artifact_location: str | None, hypothesis: str) -> str:
    """The MLflow experiment called `name` (created when missing), tagged for MLflow 3's classic view."""
    found = client.get_experiment_by_name(name)
    if found is None:
        exp_id: str = client.create_experiment(name, artifact_location)
        have: dict[str, str] = {}
    else:
        exp_id, have = found.experiment_id, found.tags
    if EXPERIMENT_KIND[0] not in have:  # a kind the user chose stays
        client.set_experiment_tag(exp_id, *EXPERIMENT_KIND)
    if hypothesis and have.get("assay.hypothesis") != _short(hypothesis):
        client.set_experiment_tag(exp_id, "assay.hypothesis", _short(hypothesis))
    return exp_id


def _sweep_settings(exp_dir: Path, sweep_id: str) -> dict[str, Any]:
    """sweep.json of a sweep ({} when the folder is gone or unreadable: its trials still nest)."""
    from assay.sweep.state import SWEEP_FILE, sweeps_dir

    try:
        data = json.loads((sweeps_dir(exp_dir) / sweep_id / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _best_trial_value(exp_dir: Path, sweep_id: str, goal: str | None) -> tuple[float | None, int]:
    """(best value among ended trials, number of ended trials) from the sweep's trials.jsonl."""
    from assay.sweep.state import SweepFiles, sweeps_dir

    ended = [t for t in SweepFiles(sweeps_dir(exp_dir) / sweep_id).trials().values() if t.status is not None]
    values = [float(t.value) for t in ended if isinstance(t.value, (int, float)) and math.isfinite(t.value)]
    if not values:
        return None, len(ended)
    return (max(values) if goal == "max" else min(values)), len(ended)


def export_sweep(client: Any, experiment_id: str, exp_dir: Path, sweep_id: str) -> str:
    """Create or update the parent run of one sweep; returns its MLflow run id."""
    from mlflow.entities import Metric, Param, RunTag

    key = f"{exp_dir.name}/{sweep_id}"
    settings = _sweep_settings(exp_dir, sweep_id)
    found = client.search_runs([experiment_id], filter_string=f"tags.`{SWEEP_TAG}` = '{key}'", max_results=1)
    created_ms = int(float(settings.get("created") or 0) * 1000) or None
    if found:
        run = found[0]
    else:
        run = client.create_run(experiment_id, start_time=created_ms, tags={SWEEP_TAG: key, KIND_TAG: "sweep"},
                                run_name=f"sweep {sweep_id}")
    rid: str = run.info.run_id
    wanted = {k: v for k, v in settings.items() if k in ("sampler", "trials", "parallel", "executor", "seed", "value", "timeout")}
    wanted.update({f"space.{k}": v for k, v in flatten(settings.get("space") or {}).items()})
    params = [Param(k, _short(v)) for k, v in wanted.items() if k not in run.data.params and v is not None]
    tags = {SWEEP_TAG: key, KIND_TAG: "sweep", "sweep": sweep_id, "assay.experiment": exp_dir.name,
            "assay.status": str(settings.get("status") or ""), "mlflow.runName": f"sweep {sweep_id}",
            "assay.primary_metric": str(settings.get("metric") or ""), "assay.goal": str(settings.get("goal") or "")}
    metrics = []
    best, ended = _best_trial_value(exp_dir, sweep_id, settings.get("goal"))
    if best is not None and settings.get("metric"):
        name = f"best_{settings['metric']}"
        history = {(m.step, m.value) for m in client.get_metric_history(rid, name)}
        if (ended, best) not in history:
            metrics.append(Metric(name, best, int(float(settings.get("updated") or 0) * 1000), ended))
    client.log_batch(rid, metrics=metrics, params=params, tags=[RunTag(k, _short(v)) for k, v in tags.items()])
    status = SWEEP_STATUS.get(str(settings.get("status")), "FINISHED")
    if status == "RUNNING":
        client.update_run(rid, status=status)
    else:
        ended_ms = int(float(settings.get("updated") or settings.get("created") or 0) * 1000)
        client.set_terminated(rid, status=status, end_time=ended_ms or None)
    return rid


def export_mlflow(lab: Lab, ref: str | None, tracking_uri: str | None = None, experiment_name: str | None = None,
                  artifact_location: str | None = None, artifacts: bool = True) -> dict[str, Any]:
    """Export runs (see `select_runs`) into an MLflow store; safe to repeat.

    Args:
        lab: the lab.
        ref: an experiment name, a run reference, or None for every run of the lab.
        tracking_uri: e.g. `sqlite:///mlflow.db` or `http://localhost:5000` (default: see
            `resolve_tracking_uri`).
        experiment_name: MLflow experiment for all exported runs (default: each run's assay experiment).
        artifact_location: artifact root for MLflow experiments this call creates (default: next
            to a SQLite database, else the store's).
        artifacts: also upload the run folders' files.

    Returns:
        {"tracking_uri", "runs": [{run, mlflow_run_id, mlflow_experiment_id, created, status,
        params, metrics, artifacts, parent_run_id}], "sweeps": [{sweep, mlflow_run_id,
        mlflow_experiment_id}]}, the counts being what this call sent.

    Raises:
        ConfigError: mlflow is not installed. RunError: unknown ref. StoreError: MLflow refused (its message is kept).

    Example:
        >>> export_mlflow(lab, "lr-sweep", "sqlite:///mlflow.db")["runs"][0]["status"]
        'FINISHED'
    """
    from assay.experiment import load_experiment

    paths = select_runs(lab, ref)  # a bad ref fails before the slow mlflow import
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise ConfigError("MLflow export needs the mlflow package, which is not installed",
                          "pip install 'assay[mlflow]'") from None
    tracking_uri = resolve_tracking_uri(lab, tracking_uri)
    artifact_location = artifact_location or default_artifact_location(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    exp_ids: dict[str, str] = {}
    hypotheses: dict[str, str] = {}
    parents: dict[tuple[str, str], str] = {}  # (experiment, sweep id) -> parent MLflow run id
    out = []
    try:
        for path in paths:
            name = path.parent.parent.name
            if name not in hypotheses:
                try:
                    hypotheses[name] = load_experiment(lab, name).hypothesis
                except (ConfigError, StoreError):
                    hypotheses[name] = ""  # an experiment file gone bad must not block exporting its runs
            target = experiment_name or name
            if target not in exp_ids:
                exp_ids[target] = _experiment_id(client, target, artifact_location,
                                                 "" if experiment_name else hypotheses[name])
            sweep = _sweep_of(path)
            parent = None
            if sweep:
                if (name, sweep) not in parents:
                    parents[(name, sweep)] = export_sweep(client, exp_ids[target], path.parent.parent, sweep)
                parent = parents[(name, sweep)]
            row = export_run(client, exp_ids[target], path, hypotheses[name], artifacts, parent)
            out.append({**row, "mlflow_experiment_id": exp_ids[target], "parent_run_id": parent})
    except MlflowException as exc:
        raise StoreError(f"MLflow at {tracking_uri} refused the export: {exc.message}",
                          "Check --tracking-uri; a store made by a newer MLflow needs `mlflow db upgrade URI`.") from None
    sweeps = [{"sweep": f"{n}/{sid}", "mlflow_run_id": rid, "mlflow_experiment_id": exp_ids[experiment_name or n]}
              for (n, sid), rid in parents.items()]
    return {"tracking_uri": tracking_uri, "runs": out, "sweeps": sweeps}


def _sweep_of(path: Path) -> str | None:
    """The sweep id a run belongs to (its `sweep` tag), or None; an unreadable record has none."""
    try:
        tags = records.read_record(path).get("tags") or {}
    except StoreError:
        return None
    sweep = tags.get("sweep") if isinstance(tags, dict) else None
    return str(sweep) if sweep else None
