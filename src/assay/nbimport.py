"""Import names from a Jupyter notebook as from a module.

The notebook's code cells run top to bottom, in a fresh module, up to (not including) the first
cell that contains `# STOP_WHEN_IMPORTED`; cells below it are the notebook's own try-outs and
never run on import. With no marker every code cell runs. Cells tagged `skip-in-run` are skipped
here too (they are for interactive use only). Only the standard library is needed.

    from assay.nbimport import load_notebook
    helpers = load_notebook("helpers.ipynb")

    import assay.nbimport            # or: after this, notebooks on sys.path import by name
    from helpers import Net          # helpers.ipynb (a helpers.py, if any, still wins)

IPython syntax: inside a running IPython/Jupyter kernel, `%magics` and `!commands` go through the
shell as usual. In plain Python, line magics and `!` lines are left out (they configure an
interactive session: `%matplotlib inline`, `%load_ext autoreload`), and a `%%cell` magic is an
error naming the cell: move it below the marker or tag the cell `skip-in-run`.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import linecache
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay.errors import ConfigError

STOP_MARKER = "# STOP_WHEN_IMPORTED"
SKIP_TAG = "skip-in-run"

__all__ = ["STOP_MARKER", "NotebookFinder", "NotebookLoader", "import_cells", "install", "load_notebook", "uninstall"]


def import_cells(path: Path) -> list[tuple[int, str]]:
    """(cell number, source) of the code cells an import runs, in order; numbers count from 1.

    Raises:
        ConfigError: the file is not a readable nbformat-4 notebook.
    """
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Notebook {path} does not exist", "Check the path (relative to the current folder).") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Notebook {path} is not readable JSON: {exc}", "Open it in Jupyter and save it again.") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ConfigError(f"{path} is not an nbformat-4 notebook (no top-level 'cells')",
                          f"Convert it: jupyter nbconvert --to notebook --nbformat 4 {path}")
    out = []
    for number, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        if STOP_MARKER in src:
            break
        if SKIP_TAG in (cell.get("metadata") or {}).get("tags", []):
            continue
        out.append((number, src))
    return out


def _shell() -> Any:
    """The running IPython shell, if this is an IPython session (never imports IPython itself)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _plain_python(src: str, path: Path, number: int) -> str:
    """Drop the IPython-only lines that configure a session; refuse cell magics."""
    if src.lstrip().startswith("%%"):
        magic = src.lstrip().split(None, 1)[0]
        raise ConfigError(f"Cell {number} of {path} starts with the cell magic '{magic}', which needs IPython",
                          f"Move the cell below '{STOP_MARKER}', or tag it '{SKIP_TAG}'.")
    lines = src.splitlines(keepends=True)
    return "".join("\n" if line.lstrip().startswith(("%", "!")) else line for line in lines)


class NotebookLoader(importlib.abc.Loader):
    """Executes a notebook's import cells in a module's namespace."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        shell = _shell()
        for number, src in import_cells(self.path):
            code_src = shell.transform_cell(src) if shell is not None else _plain_python(src, self.path, number)
            filename = f"{self.path}#cell{number}"
            # Register the source so tracebacks show the notebook's lines, as for a .py file.
            linecache.cache[filename] = (len(code_src), None, code_src.splitlines(keepends=True), filename)
            try:
                code = compile(code_src, filename, "exec")
            except SyntaxError as exc:
                raise ConfigError(f"Cell {number} of {self.path} is not valid Python: {exc.msg} (line {exc.lineno})",
                                  f"Fix the cell, or move it below '{STOP_MARKER}'.") from None
            try:
                exec(code, module.__dict__)
            except BaseException as exc:
                exc.add_note(f"(while importing cell {number} of notebook {self.path})")
                raise


class NotebookFinder(importlib.abc.MetaPathFinder):
    """Finds `<name>.ipynb` on sys.path (or a package's path) when no regular module matched."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        leaf = fullname.rpartition(".")[2]
        for folder in (path if path is not None else sys.path):
            if not isinstance(folder, str):
                continue
            candidate = Path(folder or ".") / f"{leaf}.ipynb"
            if candidate.is_file():
                return importlib.util.spec_from_file_location(fullname, candidate, loader=NotebookLoader(candidate))
        return None


_FINDER = NotebookFinder()


def install() -> None:
    """Let `import name` find `name.ipynb` (appended last, so regular modules always win)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def load_notebook(path: str | Path, name: str | None = None) -> types.ModuleType:
    """Run a notebook's import cells in a new module and return it (registered in sys.modules).

    Args:
        path: the `.ipynb` file.
        name: module name (default: the file's stem).

    Raises:
        ConfigError: unreadable notebook, a cell that is not Python, or a cell magic outside IPython.
        Whatever a cell raises, with a note naming the notebook and cell.

    Example:
        >>> helpers = load_notebook("helpers.ipynb")  # doctest: +SKIP
        >>> model = helpers.Net()                      # doctest: +SKIP
    """
    file = Path(path)
    name = name or file.stem
    spec = importlib.util.spec_from_file_location(name, file, loader=NotebookLoader(file))
    assert spec is not None and spec.loader is not None  # a loader was given, so a spec is always made
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before executing, as importlib does (dataclasses, pickling look it up)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


install()  # importing this module is what makes notebooks importable, as nbimporter did
