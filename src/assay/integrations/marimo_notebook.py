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


SCAFFOLD = '''\
"""{name}: {hypothesis}

A marimo app: edit it with `marimo edit {file}`; run it with `assay run {name} DESC key=value ...`
(params arrive as `--key=value` arguments, read with `mo.cli_args()`), or by hand (`python {file}`).
"""

import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo

    import assay
    return assay, mo


@app.cell
def _(mo):
    # This file is the scaffold `assay new` wrote: it trains nothing, so it refuses to report a
    # number under your metric's name. Write your training below, then delete the raise.
    raise RuntimeError("this is the scaffold from `assay new`: edit {file} (train, evaluate, log {metric}) and delete the raise")
    # Params: config.yaml's defaults, overridden on `assay run` (nested keys dotted: --opt.name=adam).
    args = mo.cli_args()
    epochs = int(args.get("epochs") or 5)
    return (epochs,)


@app.cell
def _(assay, epochs):
    run = assay.init()
    for epoch in range(epochs):
        # ... train one epoch, evaluate, then log what decides the hypothesis:
        score = ...
        assay.log({{"{metric}": score}}, step=epoch)

    # A `{metric}: 0.91` line is also read by any tool that greps the output.
    print(f"{metric}: {{score:.4f}}")
    assay.finish()
    return


if __name__ == "__main__":
    app.run()
'''


def scaffold(name: str, hypothesis: str, metric: str, file: str = "app.py") -> str:
    """The marimo app `assay new NAME --entry app.py` writes; it refuses to run until edited."""
    return SCAFFOLD.format(name=name, hypothesis=hypothesis.replace('"""', "'''"), metric=metric, file=file)


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
