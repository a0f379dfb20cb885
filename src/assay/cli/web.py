"""`assay` commands for the web area (registered on the main app by register())."""


import os
import sys
from typing import Annotated, Optional

import typer


def ui(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --allow-remote.")] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (requires a token).")] = False,
    token: Annotated[Optional[str], typer.Option(help="Require this token, 16 characters or more (default: a random one, "
                                                      "printed in the URL; also read from ASSAY_UI_TOKEN).")] = None,
    no_token: Annotated[bool, typer.Option("--no-token", help="Serve loopback without a token: every local user can "
                                                               "read the lab.")] = False,
) -> None:
    """Serve the read-only dashboard: experiments, runs tables, run pages with charts, loop, journal, report."""
    from assay import api
    from assay.web.server import plan, serve

    lab = api.find()
    env_token = os.environ.get("ASSAY_UI_TOKEN") or None if token is None and not no_token else None
    p = plan(host, port, allow_remote, token if token is not None else env_token, no_token=no_token,
             token_from="ASSAY_UI_TOKEN" if env_token else "--token")
    if not p.token:
        print(f"Warning: serving {lab.root} without a token: every user of this machine can read its runs, logs and diffs.",
              file=sys.stderr)
    if p.remote:
        print(f"Warning: serving {lab.root} on {host}, reachable from other machines. Anyone with the token can read "
              "its runs, logs and diffs.", file=sys.stderr)
    print(f"assay dashboard for {lab.root}: {p.url}  (Ctrl-C stops it)", flush=True)
    try:
        serve(lab, p)
    except ModuleNotFoundError as exc:
        print(f"Error: the dashboard needs {exc.name}: pip install 'assay[web]'", file=sys.stderr)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command("ui")(ui)
