"""`assay export mlflow`, `assay import mlflow` and `assay mcp`: bridges to other tools (registered on the main app)."""


from typing import Annotated, Any, Optional

import typer

from assay.cli.common import JsonOpt, emit

export_app = typer.Typer(help="Copy runs into other tools (MLflow).", no_args_is_help=True)
import_app = typer.Typer(help="Bring runs from other tools into the lab (MLflow).", no_args_is_help=True)


@export_app.command("mlflow")
def export_mlflow(
    ref: Annotated[Optional[str], typer.Argument(metavar="[NAME|RUN]", help="Experiment or run (default: every run).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI, e.g. sqlite:///mlflow.db (default: $MLFLOW_TRACKING_URI, else .assay/mlflow.db).")] = None,
    experiment_name: Annotated[Optional[str], typer.Option(help="MLflow experiment (default: the assay experiment's name).")] = None,
    artifact_location: Annotated[Optional[str], typer.Option(help="Artifact root for MLflow experiments created now.")] = None,
    artifacts: Annotated[bool, typer.Option("--artifacts/--no-artifacts", help="Upload the run folders' files.")] = True,
    json_: JsonOpt = False,
) -> None:
    """Export runs to MLflow: params, per-step metrics, tags, artifacts; a sweep as a parent run with its
    trials nested. Re-running updates, never duplicates."""
    from assay import api

    res = api.export_mlflow(ref, tracking_uri=tracking_uri, experiment_name=experiment_name,
                            artifact_location=artifact_location, artifacts=artifacts)
    emit(res, json_, lambda r: _print_export(r.to_dict()))


def _print_export(res: dict[str, Any]) -> None:
    rows = res["runs"]
    created = sum(r["created"] for r in rows)
    points = sum(r["metrics"] for r in rows)
    sweeps = f", {len(res['sweeps'])} sweeps as parent runs" if res["sweeps"] else ""
    print(f"exported {len(rows)} runs to {res['tracking_uri']} ({created} new, {len(rows) - created} updated; "
          f"{points} metric points, {sum(r['artifacts'] for r in rows)} files sent{sweeps})")


@import_app.command("mlflow")
def import_mlflow(
    experiment: Annotated[str, typer.Option(help="MLflow experiment to import (name or id).")],
    tracking_uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI, e.g. sqlite:///mlflow.db or http://host:5000 (default: $MLFLOW_TRACKING_URI).")] = None,
    into: Annotated[Optional[str], typer.Option(help="assay experiment to import into (default: the MLflow name); created when new.")] = None,
    metric: Annotated[Optional[str], typer.Option(help="Primary metric of a new experiment (default: the runs' first metric).")] = None,
    goal: Annotated[Optional[str], typer.Option(help="max or min, for a new experiment (default: guessed from the name).")] = None,
    artifacts: Annotated[bool, typer.Option("--artifacts/--no-artifacts", help="Download the runs' artifacts.")] = True,
    json_: JsonOpt = False,
) -> None:
    """Import MLflow runs (params, metric histories, tags, artifacts) as run folders. Re-running imports only new runs."""
    from assay import api

    res = api.import_mlflow(experiment=experiment, tracking_uri=tracking_uri, into=into, metric=metric, goal=goal,
                            artifacts=artifacts)
    emit(res, json_, lambda r: _print_import(r.to_dict()))


def _print_import(res: dict[str, Any]) -> None:
    made = "new experiment" if res["created"] else "experiment"
    print(f"imported {len(res['imported'])} runs from MLflow '{res['mlflow_experiment']}' into {made} "
          f"{res['experiment']} ({len(res['skipped'])} skipped)")
    if res["metric_guessed"]:
        print(f"primary metric: {res['metric']} ({res['goal']}), the first metric the runs logged; "
              f"to choose another, edit experiment.yaml or import again with --into NEW --metric NAME --goal max|min")
    print(f"next: assay runs {res['experiment']}")


def mcp(
    lab: Annotated[Optional[str], typer.Option(help="Lab folder (default: found from the current folder).")] = None,
) -> None:
    """Serve this lab to coding agents over the Model Context Protocol (stdio)."""
    from assay import api
    from assay.integrations.mcp_server import serve

    serve(api.find(lab))


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")
    app.command("mcp")(mcp)
