"""Run a marimo notebook as an assay run: `python -m assay.integrations.marimo_notebook NB.py [args]`.

A marimo notebook is a plain `.py` file that runs as a script (`python nb.py`). assay launches it
through this module, which appends the run's params as `--key=value` command-line arguments,
where the notebook reads them with `mo.cli_args()` (nested keys dotted: `--opt.name=adam`). The
params are in the environment too, so `assay.params()` works as in any script.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import sys
from pathlib import Path
from typing import Any

_APP = re.compile(r"^app\s*=\s*marimo\.App\(", re.M)


def is_marimo_notebook(text: str) -> bool:
    """True for the source of a marimo notebook (it imports marimo and defines `app = marimo.App(...)`)."""
    return "import marimo" in text and _APP.search(text) is not None


def cli_args(params: dict[str, Any]) -> list[str]:
    """`--key=value` for every flattened param; strings verbatim, everything else as JSON."""
    from assay.config import flatten

    return [f"--{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in flatten(params).items()]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m assay.integrations.marimo_notebook NOTEBOOK.py [args]", file=sys.stderr)
        return 2
    script = Path(args[0])
    params = json.loads(os.environ.get("ASSAY_PARAMS") or "{}")
    # As `python nb.py ...` would: argv, and the notebook's folder first on sys.path.
    sys.argv = [str(script), *args[1:], *cli_args(params if isinstance(params, dict) else {})]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
