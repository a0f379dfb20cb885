"""Export assay runs into an MLflow tracking store (`assay export mlflow`).

The run folders stay the truth; MLflow gets a copy to browse in its UI or feed its tooling. Each
assay run maps to one MLflow run, found again by its `assay.run_id` tag, so exporting twice
updates (new metric points, new artifacts, status, tags) and never duplicates:

- params: the run's params, flattened to dotted keys (plus params logged through the API);
- metrics: every point with its step and timestamp (points already there are not sent again);
- tags: `assay.*` (run id, experiment, hypothesis, status, reason, ...), the run's own tags, and
  MLflow's `mlflow.source.git.commit` / `.branch` and `mlflow.runName`;
- artifacts: every file of the run folder (run.json, logs, plots, checkpoints, data, patch,
  executed notebook), skipping files already uploaded with the same size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.config import flatten
from assay.errors import ConfigError, RunError, StoreError
from assay.lab import Lab
from assay.store import records

RUN_ID_TAG = "assay.run_id"
STATUS = {"ok": "FINISHED", "running": "RUNNING", "interrupted": "KILLED", "lost": "KILLED"}  # others: FAILED
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


def export_run(client: Any, experiment_id: str, path: Path, hypothesis: str, artifacts: bool = True) -> dict[str, Any]:
    """Create or update the MLflow run of one assay run folder; returns what was sent."""
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

    tags = [RunTag(k, v) for k, v in _tags(record, hypothesis, ignored_runs(path.parent.parent).get(path.name)).items()]
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


def export_mlflow(lab: Lab, ref: str | None, tracking_uri: str, experiment_name: str | None = None,
                  artifact_location: str | None = None, artifacts: bool = True) -> dict[str, Any]:
    """Export runs (see `select_runs`) into the MLflow store at `tracking_uri`; safe to repeat.

    Args:
        lab: the lab.
        ref: an experiment name, a run reference, or None for every run of the lab.
        tracking_uri: e.g. `sqlite:///mlflow.db` or `http://localhost:5000`.
        experiment_name: MLflow experiment for all exported runs (default: each run's assay experiment).
        artifact_location: artifact root for MLflow experiments this call creates (default: MLflow's).
        artifacts: also upload the run folders' files.

    Returns:
        {"tracking_uri", "runs": [{run, mlflow_run_id, mlflow_experiment_id, created, status,
        params, metrics, artifacts}]}, the counts being what this call sent.

    Raises:
        ConfigError: mlflow is not installed. RunError: unknown ref. StoreError: MLflow refused (its message is kept).
    """
    from assay.experiment import load_experiment

    paths = select_runs(lab, ref)  # a bad ref fails before the slow mlflow import
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise ConfigError("MLflow export needs the mlflow package, which is not installed",
                          "pip install 'assay[mlflow]'") from None
    client = MlflowClient(tracking_uri=tracking_uri)
    exp_ids: dict[str, str] = {}
    hypotheses: dict[str, str] = {}
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
                found = client.get_experiment_by_name(target)
                exp_ids[target] = found.experiment_id if found else client.create_experiment(target, artifact_location)
                if not experiment_name and hypotheses[name]:
                    client.set_experiment_tag(exp_ids[target], "assay.hypothesis", _short(hypotheses[name]))
            row = export_run(client, exp_ids[target], path, hypotheses[name], artifacts)
            out.append({**row, "mlflow_experiment_id": exp_ids[target]})
    except MlflowException as exc:
        raise StoreError(f"MLflow at {tracking_uri} refused the export: {exc.message}",
                          "Check --tracking-uri; a store made by a newer MLflow needs `mlflow db upgrade URI`.") from None
    return {"tracking_uri": tracking_uri, "runs": out}
