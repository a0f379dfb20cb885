"""`assay export mlflow` and `assay mcp`: bridges to other tools (registered on the main app)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

export_app = typer.Typer(help="Copy runs into other tools (MLflow).", no_args_is_help=True)


@export_app.command("mlflow")
def export_mlflow(
    ref: Annotated[Optional[str], typer.Argument(metavar="[NAME|RUN]", help="Experiment or run (default: every run).")] = None,
    tracking_uri: Annotated[str, typer.Option(help="MLflow tracking URI, e.g. sqlite:///mlflow.db.")] = "sqlite:///mlflow.db",
    experiment_name: Annotated[Optional[str], typer.Option(help="MLflow experiment (default: the assay experiment's name).")] = None,
    artifact_location: Annotated[Optional[str], typer.Option(help="Artifact root for MLflow experiments created now.")] = None,
    artifacts: Annotated[bool, typer.Option("--artifacts/--no-artifacts", help="Upload the run folders' files.")] = True,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output with stable keys.")] = False,
) -> None:
    """Export runs to MLflow: params, per-step metrics, tags, artifacts. Re-running updates, never duplicates."""
    from assay.cli.main import _lab
    from assay.integrations.mlflow_export import export_mlflow as do_export

    res = do_export(_lab(), ref, tracking_uri, experiment_name, artifact_location, artifacts)
    if json_:
        from assay.cli.render import emit_json

        emit_json(res)
        return
    rows = res["runs"]
    created = sum(r["created"] for r in rows)
    points = sum(r["metrics"] for r in rows)
    print(f"exported {len(rows)} runs to {res['tracking_uri']} ({created} new, {len(rows) - created} updated; "
          f"{points} metric points, {sum(r['artifacts'] for r in rows)} files sent)")


def mcp(
    lab: Annotated[Optional[str], typer.Option(help="Lab folder (default: found from the current folder).")] = None,
) -> None:
    """Serve this lab to coding agents over the Model Context Protocol (stdio)."""
    from pathlib import Path

    from assay.integrations.mcp_server import serve
    from assay.lab import find_lab

    serve(find_lab(Path(lab) if lab else None))


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.add_typer(export_app, name="export")
    app.command("mcp")(mcp)
