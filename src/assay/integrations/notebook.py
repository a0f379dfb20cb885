"""Run a Jupyter notebook headless as an assay run.

`assay run` launches a `.ipynb` entry point as `python -m assay.integrations.notebook NB [options]`
in the experiment folder. This module then:

- drops cells tagged `skip-in-run` (interactive-only cells: plots to look at, quick checks), and
  leaves cells tagged `skip-execution` (nbclient's and papermill's tag) in place without running them;
- injects the run's params as a cell tagged `injected-parameters` right after the cell tagged
  `parameters` (the papermill convention; at the top if there is none), so the notebook's
  defaults are overridden the same way papermill would. The params are also in the environment
  (ASSAY_PARAMS, ASSAY_PARAM_<KEY>), which the kernel inherits, so `assay.params()` works too;
- executes it with nbclient in a fresh kernel of this same Python (or `--kernel NAME`), with an
  optional per-cell timeout (`--cell-timeout 10m`, or ASSAY_CELL_TIMEOUT);
- echoes every output as it arrives to stdout/stderr, where assay captures metric lines as for
  any script;
- saves the executed notebook into the run folder after every cell, so a crash or a timeout still
  leaves the outputs so far;
- shuts the kernel down before exiting, then, when a cell raised, prints its exception as the
  last line (`Error: KeyError: 'x' (in cell 3 of train.ipynb)`), which becomes the run's reason.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from assay.errors import ConfigError, RunError

SKIP_TAG = "skip-in-run"
NO_EXECUTE_TAG = "skip-execution"  # kept in the executed notebook, never run (nbclient's tag)
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_THIS_PYTHON = "assay-this-python"


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def parameters_source(params: dict[str, Any]) -> str:
    """Python assignments for the top-level params that are valid names (others stay in the env)."""
    lines = ["# Parameters injected by assay (papermill convention)"]
    for key, value in params.items():
        if key.isidentifier() and not keyword.iskeyword(key):
            lines.append(f"{key} = {value!r}")
    return "\n".join(lines) + "\n"


def prepare(nb: Any, params: dict[str, Any] | None) -> int:
    """Drop `skip-in-run` cells and inject the params cell, in place; returns how many were dropped.

    `nb` is an nbformat v4 notebook (a NotebookNode or the same shape as plain dicts).
    """
    import nbformat

    cells = nb["cells"]
    kept = [c for c in cells if SKIP_TAG not in _tags(c) and INJECTED_TAG not in _tags(c)]
    dropped = sum(SKIP_TAG in _tags(c) for c in cells)
    if params:
        at = next((i + 1 for i, c in enumerate(kept) if PARAMETERS_TAG in _tags(c)), 0)
        cell = nbformat.v4.new_code_cell(parameters_source(params), metadata={"tags": [INJECTED_TAG]})
        if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
            cell.pop("id", None)  # cell ids exist from nbformat 4.5 on
        kept.insert(at, cell)
    nb["cells"] = kept
    return dropped


def _echo(out: Any, stdout: TextIO, stderr: TextIO) -> None:
    """Print one cell output the way a script would have printed it."""
    kind = out.get("output_type")
    if kind == "stream":
        dest = stderr if out.get("name") == "stderr" else stdout
        dest.write(out.get("text", ""))
        dest.flush()
    elif kind in ("execute_result", "display_data"):
        text = out.get("data", {}).get("text/plain")
        if text:
            stdout.write((text if isinstance(text, str) else "".join(text)).rstrip("\n") + "\n")
            stdout.flush()
    elif kind == "error":
        stderr.write(_ANSI.sub("", "\n".join(out.get("traceback", []))) + "\n")
        stderr.flush()


def scaffold(name: str, hypothesis: str, metric: str, file: str = "train.ipynb") -> str:
    """The notebook `assay new NAME --entry train.ipynb` writes (nbformat 4.5 JSON; no nbformat needed).

    Its `parameters` cell holds config.yaml's defaults (papermill's convention: `assay run` injects
    the run's values after it), and a cell refuses to run until edited, as the train.py scaffold does.
    """
    def cell(kind: str, source: str, tags: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"cell_type": kind, "id": f"{kind}-{len(cells)}", "metadata": {"tags": tags} if tags else {},
                               "source": source}
        if kind == "code":
            out.update(execution_count=None, outputs=[])
        return out

    cells: list[dict[str, Any]] = []
    cells.append(cell("markdown", f"# {name}\n\n{hypothesis}\n\nRun with `assay run {name} DESC key=value ...`, or cell by cell "
                                  "in Jupyter. Cells tagged `skip-in-run` are left out of `assay run`."))
    cells.append(cell("code", "# Parameters: config.yaml's defaults. `assay run` injects the run's values after this cell.\n"
                              "seed = 0\nepochs = 5", [PARAMETERS_TAG]))
    cells.append(cell("code", "# This notebook is the scaffold `assay new` wrote: it trains nothing, so it refuses to report a\n"
                              "# number under your metric's name. Write your training below, then delete this cell.\n"
                              f"raise RuntimeError(\"this is the scaffold from `assay new`: edit {file} (train, evaluate, "
                              f"log {metric}) and delete this cell\")"))
    cells.append(cell("code", "import assay\n\nrun = assay.init()\nfor epoch in range(epochs):\n"
                              "    # ... train one epoch, evaluate, then log what decides the hypothesis:\n"
                              f"    score = ...\n    assay.log({{\"{metric}\": score}}, step=epoch)\n\n"
                              f"# A `{metric}: 0.91` line is also read by any tool that greps the output.\n"
                              f"print(f\"{metric}: {{score:.4f}}\")\nassay.finish()"))
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"


def _kernel_manager(kernel: str | None, ipc_dir: str) -> Any:
    """A kernel manager for `kernel`, or for this interpreter's ipykernel when None.

    By default the kernel must be this Python (the lab's), not whatever `python3` kernelspec a
    user installed for another environment: the params, the assay API and the packages must match.
    """
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class _Specs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            if kernel_name == _THIS_PYTHON:
                return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                  display_name="Python (assay)", language="python", resource_dir="")
            return super().get_kernel_spec(kernel_name)

    # IPC sockets in a private temp folder: no open TCP ports on the host, no files in the experiment.
    return AsyncKernelManager(kernel_name=kernel or _THIS_PYTHON, kernel_spec_manager=_Specs(),
                              transport="ipc", ip=str(Path(ipc_dir) / "kernel"))


def execute(
    path: Path,
    params: dict[str, Any] | None = None,
    output: Path | None = None,
    cell_timeout: float | None = None,
    kernel: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    on_error: Callable[[int], None] | None = None,
) -> Any:
    """Execute the notebook at `path` headless and return the executed notebook.

    Args:
        path: the `.ipynb` file; the kernel runs in the current directory.
        params: injected as a parameters cell (see `prepare`).
        output: where the executed notebook is written (after every cell and at the end).
        cell_timeout: seconds one cell may run (None: no per-cell limit).
        kernel: a Jupyter kernel name; None runs ipykernel in this interpreter.
        stdout, stderr: where outputs are echoed as they arrive (default: sys.stdout/sys.stderr).
        on_error: called with the index of a cell that raised, counted in the notebook as written.

    Raises:
        RunError: the notebook is unreadable, or the kernel cannot start.
        nbclient.exceptions.CellExecutionError: a cell raised (its traceback was echoed already).
        nbclient.exceptions.CellTimeoutError: a cell ran past `cell_timeout`.
    """
    import nbformat
    from nbclient import NotebookClient

    try:
        nb = nbformat.read(str(path), as_version=4)
    except (OSError, ValueError) as exc:  # nbformat's NotJSONError and validation errors are ValueErrors
        raise RunError(f"Cannot read notebook {path}: {exc}", "Open it in Jupyter and save it again.") from None
    origin = [i for i, c in enumerate(nb["cells"]) if SKIP_TAG not in _tags(c) and INJECTED_TAG not in _tags(c)]
    prepare(nb, params)
    out_stream, err_stream = stdout or sys.stdout, stderr or sys.stderr

    def save(**_: Any) -> None:
        if output is not None:
            from assay.config import write_atomic

            write_atomic(output, nbformat.writes(nb))

    class _Client(NotebookClient):
        """Echoes each output when its message arrives, not when the cell ends (live logs, timestamps)."""

        def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None:
                _echo(out, out_stream, err_stream)
            return out

    def cell_error(cell: Any, cell_index: int, **_: Any) -> None:
        if on_error is not None and INJECTED_TAG not in _tags(cell):
            kept = [i for i, c in enumerate(nb["cells"][:cell_index]) if INJECTED_TAG not in _tags(c)]
            on_error(origin[len(kept)])  # back to the notebook as written: skipped cells out, injected one in

    import tempfile

    with tempfile.TemporaryDirectory(prefix="assay-kernel-") as ipc_dir:
        client = _Client(nb, km=_kernel_manager(kernel, ipc_dir), timeout=cell_timeout if cell_timeout else None,
                         resources={"metadata": {"path": os.getcwd()}}, on_cell_executed=save, on_cell_error=cell_error,
                         skip_cells_with_tag=NO_EXECUTE_TAG)
        try:
            # cleanup_kc: shut the kernel down before returning, failed cell or not. nbclient leaves a
            # kernel it did not create running; it would outlive this process and print its
            # "Parent appears to have exited" warning into the log after the cell's error.
            client.execute(cleanup_kc=True)
        finally:
            save()
    return nb


def _cell_timeout(value: str | None) -> float | None:
    from assay.config import parse_duration

    text = value or os.environ.get("ASSAY_CELL_TIMEOUT")
    if not text:
        return None
    try:
        return parse_duration(text)
    except ConfigError as exc:
        source = "--cell-timeout" if value else "ASSAY_CELL_TIMEOUT"
        raise ConfigError(f"Bad per-cell timeout '{text}' from {source}: {exc.message}",
                          "Use a duration such as 90s, 10m or 1h.") from None


def _params_from_env() -> dict[str, Any]:
    text = os.environ.get("ASSAY_PARAMS")
    if not text:
        return {}
    try:
        params = json.loads(text)
    except ValueError:
        raise ConfigError("ASSAY_PARAMS is not valid JSON", "It is set by `assay run`; do not set it by hand.") from None
    return params if isinstance(params, dict) else {}


def _record_artifact(run_dir: Path, name: str) -> None:
    """List the executed notebook among the run's artifacts (one appended event, as assay.log_artifact does)."""
    import time

    line = json.dumps({"t": round(time.time(), 3), "artifact": name}) + "\n"
    fd = os.open(run_dir / "metrics.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv: list[str] | None = None, echo: Callable[[str], None] | None = None) -> int:
    """`python -m assay.integrations.notebook NB [--cell-timeout 10m] [--kernel NAME] [--output PATH]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m assay.integrations.notebook",
                                     description="Execute a notebook headless with the params of an assay run.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--cell-timeout", help="Per-cell limit, e.g. 10m (default: none; the run's timeout applies).")
    parser.add_argument("--kernel", help="Jupyter kernel name (default: ipykernel in this Python).")
    parser.add_argument("--output", type=Path, help="Executed notebook (default: $ASSAY_RUN_DIR/<notebook name>).")
    args = parser.parse_args(argv)
    err = echo or (lambda s: print(s, file=sys.stderr))
    try:
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ImportError:
        err(f"Error: nbclient is not installed in {sys.executable}\n  pip install 'assay[notebooks]'")
        return 1
    failed: list[int] = []  # the index of the cell that raised, in the notebook as written
    run_dir = os.environ.get("ASSAY_RUN_DIR")
    output = args.output or (Path(run_dir) / args.notebook.name if run_dir else None)
    if run_dir and output is not None and output.parent == Path(run_dir):
        _record_artifact(Path(run_dir), output.name)
    try:
        if not args.kernel:
            import importlib.util

            if importlib.util.find_spec("ipykernel") is None:
                raise RunError(f"ipykernel is not installed in {sys.executable}", "pip install 'assay[notebooks]'")
        execute(args.notebook, _params_from_env(), output, _cell_timeout(args.cell_timeout), args.kernel,
                on_error=failed.append)
    except CellTimeoutError as exc:
        err(f"Error: a cell of {args.notebook} ran past its per-cell timeout: {str(exc).splitlines()[0]}")
        return 1
    except CellExecutionError as exc:
        # The traceback was echoed as the cell's output; this last line of the log is the run's reason.
        where = f"cell {failed[0] + 1} of {args.notebook}" if failed else str(args.notebook)
        err(f"Error: {exc.ename}: {exc.evalue} (in {where})")
        return 1
    except DeadKernelError as exc:
        err(f"Error: the kernel died: {exc}")
        return 1
    except (ConfigError, RunError) as exc:
        err(f"Error: {exc.message}" + (f"\n  {exc.hint}" if exc.hint else ""))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
