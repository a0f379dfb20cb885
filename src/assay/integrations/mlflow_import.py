"""Import MLflow runs into an assay experiment (`assay import mlflow`), so a team moves over with its history.

Each MLflow run becomes an ordinary run folder, built as any other (a RunRecord written by
create_run_dir, then metrics.jsonl and the artifacts moved in):

- params: MLflow's string values typed as on the command line (`0.5` a float, `adam` a string),
  dotted keys nested again (`opt.name` is `opt: {name: ...}`, as the export flattened it);
- metrics: every point of every metric's history, with its step and timestamp (source `mlflow`);
- tags: the run's own tags (not MLflow's `mlflow.*` or assay's `assay.*` bookkeeping), plus
  `mlflow_run_id` and `mlflow_experiment`; git commit and branch from `mlflow.source.git.*`;
- artifacts: downloaded into the run folder, keeping their layout (a run exported by assay
  brings back its logs, plots and checkpoints; its run.json and metrics.jsonl are rebuilt from
  MLflow's data instead of copied);
- status: FINISHED is ok (failed when the run never logged the primary metric), FAILED failed,
  KILLED interrupted; a run that assay exported keeps its exact assay status. Runs still RUNNING
  or SCHEDULED are skipped until they end, and sweeps' parent runs made by `assay export mlflow`
  are skipped (their trials are the runs).

Importing again is idempotent: a run whose MLflow id is already a `mlflow_run_id` tag of the
target experiment is skipped, so a second import brings only the runs added since.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, StoreError
from assay.lab import EXPERIMENT_NAME, Lab
from assay.store import records
from assay.store.records import RunRecord, Status

MLFLOW_RUN_TAG = "mlflow_run_id"
MLFLOW_STATUS = {"FINISHED": Status.OK, "FAILED": Status.FAILED, "KILLED": Status.INTERRUPTED}
_OWN_FILES = {records.RECORD_FILE, records.METRICS_FILE}  # rebuilt from MLflow's data, never copied
_PAGE = 500


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """{'opt.name': 'adam'} -> {'opt': {'name': 'adam'}}; a key that clashes (`a` and `a.b`) stays flat."""
    out: dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: k.count(".")):
        node, parts = out, key.split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                node = None  # type: ignore[assignment]
                break
            node = nxt
        if node is None or parts[-1] in node or "" in parts:
            out[key] = flat[key]
        else:
            node[parts[-1]] = flat[key]
    return out


def _typed_params(params: dict[str, str]) -> dict[str, Any]:
    from assay.config import parse_value

    return _unflatten({k: parse_value(v) for k, v in params.items()})


def _user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith(("mlflow.", "assay."))}


def _mlflow_experiment(client: Any, experiment: str) -> Any:
    """The MLflow experiment named `experiment` (or with that id)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():
        try:
            found = client.get_experiment(experiment)
        except MlflowException:
            found = None
    if found is None:
        known = sorted(e.name for e in client.search_experiments())
        raise ConfigError(f"No MLflow experiment '{experiment}' (known: {', '.join(known) or 'none'})",
                          "Pass one of them to --experiment (or its numeric id).")
    return found


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    """Every active run of the experiment, oldest first."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=_PAGE, order_by=["attributes.start_time ASC"],
                                  page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _imported_ids(runs_dir: Path) -> set[str]:
    """MLflow run ids already imported into an experiment (its runs' `mlflow_run_id` tags)."""
    out = set()
    for path in records.run_folders(runs_dir):
        try:
            tags = records.read_record(path).get("tags") or {}
        except StoreError:
            continue  # an unreadable record is no evidence either way
        if isinstance(tags, dict) and tags.get(MLFLOW_RUN_TAG):
            out.add(str(tags[MLFLOW_RUN_TAG]))
    return out


def _pick_metric(runs: list[Any], metric: str | None, goal: str | None) -> tuple[str, str, bool]:
    """(metric, goal, guessed) for a new experiment: as given, else what an assay export recorded,
    else the first metric the runs logged (guessed=True)."""
    from assay.experiment import GOALS, guess_goal

    guessed = False
    if not metric:
        metric = next((r.data.tags["assay.primary_metric"] for r in runs if r.data.tags.get("assay.primary_metric")), None)
    if not metric:
        names = sorted({k for r in runs for k in r.data.metrics})
        if not names:
            raise ConfigError("The MLflow runs logged no metric, so the new experiment has no primary metric to take",
                              "Pass --metric NAME --goal max|min.")
        metric, guessed = names[0], True
    if not goal:
        goal = next((r.data.tags["assay.goal"] for r in runs if r.data.tags.get("assay.goal") in GOALS), None)
    return metric, goal or guess_goal(metric), guessed


def _target(lab: Lab, name: str, mexp: Any, runs: list[Any], metric: str | None, goal: str | None) -> tuple[Any, dict[str, Any]]:
    """The assay experiment to import into (created when missing) and what was decided about it."""
    from assay.config import dump_yaml
    from assay.experiment import list_experiments, load_experiment, new_experiment

    if name in list_experiments(lab):
        exp = load_experiment(lab, name)
        if metric and metric != exp.metric:
            raise ConfigError(f"Experiment '{name}' exists with primary metric '{exp.metric}', not '{metric}' (--metric)",
                              f"Drop --metric to import into it, or pass --into NEW_NAME for a new experiment on {metric}.")
        return exp, {"created": False, "metric": exp.metric, "goal": exp.goal, "metric_guessed": False}
    metric, goal, guessed = _pick_metric(runs, metric, goal)
    hypothesis = (mexp.tags.get("assay.hypothesis") or mexp.tags.get("mlflow.note.content")
                  or f"Imported from MLflow experiment '{mexp.name}'")
    # config.yaml: the params of the newest run that finished (a failed run's are a poor default)
    with_params = [r for r in runs if r.data.params]
    newest = next((r for r in reversed(with_params) if r.info.status == "FINISHED"), with_params[-1] if with_params else None)
    config = _typed_params(newest.data.params) if newest else {}
    exp = new_experiment(lab, name, hypothesis, metric, goal, files={
        "config.yaml": f"# Params of the newest finished run imported from MLflow experiment '{mexp.name}'.\n"
                       + dump_yaml(config or {"seed": 0})})
    return exp, {"created": True, "metric": metric, "goal": goal, "metric_guessed": guessed}


def _metric_events(client: Any, run: Any) -> list[dict[str, Any]]:
    """metrics.jsonl events for every point of every metric of `run`: one event per (time, step)."""
    grouped: dict[tuple[int, int], dict[str, float]] = {}
    for key in sorted(run.data.metrics):
        for m in client.get_metric_history(run.info.run_id, key):
            grouped.setdefault((int(m.timestamp), int(m.step)), {})[key] = float(m.value)
    return [{"t": ts / 1000, "step": step, "m": values, "src": "mlflow"}
            for (ts, step), values in sorted(grouped.items())]


def _download(client: Any, run_id: str, dest: Path) -> None:
    """The run's artifacts into `dest`, except the files assay rebuilds itself."""
    bar = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(bar)
    os.environ[bar] = "false"  # one progress bar per run and folder would bury the command's own output
    try:
        for info in client.list_artifacts(run_id):
            if info.path not in _OWN_FILES:
                client.download_artifacts(run_id, info.path, str(dest))
    finally:
        if before is None:
            os.environ.pop(bar, None)
        else:
            os.environ[bar] = before


def _status(run: Any, metrics: dict[str, dict[str, Any]], primary: str) -> tuple[Status, str | None]:
    exported = run.data.tags.get("assay.status")
    if exported in records.FINISHED:
        return Status(exported), run.data.tags.get("assay.reason") or None
    status = MLFLOW_STATUS[run.info.status]
    if status is Status.OK:
        last = (metrics.get(primary) or {}).get("last")
        if last is None:
            return Status.FAILED, f"finished in MLflow without logging the primary metric '{primary}'"
        if not math.isfinite(last):
            return Status.NAN, f"{primary} is {last}"
        return status, None
    return status, f"ended {run.info.status} in MLflow"


def import_run(client: Any, exp: Any, run: Any, mlflow_experiment: str, *, artifacts: bool = True) -> Path:
    """One MLflow run as a new run folder of `exp`; returns the folder.

    Everything is gathered in a hidden staging folder first (`assay reindex` removes one left by a
    crash), then the run folder is created with its final record and the files moved in.
    """
    import json

    exp.runs_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=records.STAGING_PREFIX + "import-", dir=exp.runs_dir))
    try:
        events = _metric_events(client, run)
        (staging / records.METRICS_FILE).write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        art = staging / "artifacts"
        art.mkdir()
        if artifacts:
            _download(client, run.info.run_id, art)
        files = sorted(f.relative_to(art).as_posix() for f in art.rglob("*") if f.is_file())
        summary = records.summarize(staging, exp.goal_of)
        status, reason = _status(run, summary["metrics"], exp.metric)
        tags = run.data.tags
        started = (run.info.start_time or 0) / 1000 or time.time()
        ended = run.info.end_time / 1000 if run.info.end_time else None
        params = _typed_params(run.data.params)
        git = {k: v for k, v in (("commit", tags.get("mlflow.source.git.commit")),
                                 ("branch", tags.get("mlflow.source.git.branch"))) if v} or None
        desc = tags.get("mlflow.runName") or run.info.run_name or run.info.run_id[:8]
        tail = records.log_tail(art) if (art / records.LOG_FILE).is_file() else None
        record = RunRecord(
            experiment=exp.name, desc=desc, started=started, status=status, reason=reason,
            entry=tags.get("mlflow.source.name") or None, params=params, seed=params.get("seed"),
            primary_metric=exp.metric, goal=exp.goal, tags={**_user_tags(tags), MLFLOW_RUN_TAG: run.info.run_id,
                                                            "mlflow_experiment": mlflow_experiment},
            ended=ended, duration=(ended - started) if ended else None, metrics=summary["metrics"], artifacts=files,
            log_tail=tail, git=git)
        path, record = records.create_run_dir(exp.runs_dir, desc, record, when=datetime.fromtimestamp(started))
        os.replace(staging / records.METRICS_FILE, path / records.METRICS_FILE)
        for rel in files:
            dst = path / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(art / rel, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def import_mlflow(lab: Lab, *, tracking_uri: str, experiment: str, into: str | None = None, metric: str | None = None,
                  goal: str | None = None, artifacts: bool = True) -> dict[str, Any]:
    """Import the runs of an MLflow experiment into an assay experiment; safe to repeat.

    Args:
        lab: the lab.
        tracking_uri: the MLflow store, e.g. `sqlite:///mlflow.db` or `http://localhost:5000`.
        experiment: the MLflow experiment's name (or numeric id).
        into: the assay experiment (default: the MLflow experiment's name); created when missing.
        metric, goal: the primary metric of a new experiment (default: what `assay export mlflow`
            recorded, else the runs' first metric in name order, reported as `metric_guessed`).
        artifacts: also download the runs' artifacts.

    Returns:
        {"tracking_uri", "mlflow_experiment", "experiment", "created", "metric", "goal",
        "metric_guessed", "imported": [{run, mlflow_run_id, status}], "skipped": [{mlflow_run_id, why}]}.

    Raises:
        ConfigError: mlflow missing, unknown MLflow experiment, a name that cannot be an
            experiment, no metric to pick. StoreError: MLflow refused (its message is kept).

    Example:
        >>> import_mlflow(lab, tracking_uri="sqlite:///mlflow.db", experiment="baseline", into="baseline")["created"]
        True
    """

    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise ConfigError("MLflow import needs the mlflow package, which is not installed", "pip install 'assay[mlflow]'") from None
    name = into or experiment
    if not EXPERIMENT_NAME.fullmatch(name):
        raise ConfigError(f"The MLflow experiment name {name!r} cannot be an assay experiment's folder name",
                          "Pass --into NAME (letters, digits, '.', '_', '-').")
    client = MlflowClient(tracking_uri=tracking_uri)
    imported: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    try:
        mexp = _mlflow_experiment(client, experiment)
        runs = _all_runs(client, mexp.experiment_id)
        wanted = []
        for run in runs:
            if run.data.tags.get("assay.kind") == "sweep":
                skipped.append({"mlflow_run_id": run.info.run_id, "why": "a sweep's parent run (its trials are imported)"})
            elif run.info.status not in MLFLOW_STATUS:
                skipped.append({"mlflow_run_id": run.info.run_id, "why": f"{run.info.status} in MLflow: import it once it ends"})
            else:
                wanted.append(run)
        exp, decided = _target(lab, name, mexp, wanted or runs, metric, goal)
        done = _imported_ids(exp.runs_dir)
        with lab.index() as index:
            for run in wanted:
                if run.info.run_id in done:
                    skipped.append({"mlflow_run_id": run.info.run_id, "why": "imported already"})
                    continue
                path = import_run(client, exp, run, mexp.name, artifacts=artifacts)
                record = records.read_record(path)
                index.upsert(path, record)
                imported.append({"run": record["id"], "mlflow_run_id": run.info.run_id, "status": record["status"]})
    except MlflowException as exc:
        raise StoreError(f"MLflow at {tracking_uri} refused the import: {exc.message}",
                         "Check --tracking-uri; a store made by a newer MLflow needs `mlflow db upgrade URI`.") from None
    return {"tracking_uri": tracking_uri, "mlflow_experiment": mexp.name, "experiment": exp.name, **decided,
            "imported": imported, "skipped": skipped}
