"""assay.nbimport: notebooks import like modules, up to `# STOP_WHEN_IMPORTED`."""

from __future__ import annotations

import json
import subprocess
import sys
import traceback

import pytest

from assay.errors import ConfigError
from assay.nbimport import STOP_MARKER, import_cells, load_notebook


def write_nb(path, *cells):
    """cells: source strings, or (source, tags), or ("markdown", text)."""
    out = []
    for c in cells:
        if isinstance(c, tuple) and c[0] == "markdown":
            out.append({"cell_type": "markdown", "metadata": {}, "source": c[1]})
            continue
        src, tags = c if isinstance(c, tuple) else (c, [])
        # Sources as line lists, the way Jupyter saves them.
        out.append({"cell_type": "code", "metadata": {"tags": tags}, "source": src.splitlines(keepends=True),
                    "outputs": [], "execution_count": None})
    path.write_text(json.dumps({"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.fixture(autouse=True)
def _clean_modules():
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("nbmod_"):
            del sys.modules[name]


def test_import_stops_at_marker_and_skips_tagged_cells(tmp_path):
    nb = write_nb(tmp_path / "nbmod_a.ipynb",
                  "import dataclasses\n\n@dataclasses.dataclass\nclass Net:\n    width: int = 4\n",
                  ("markdown", "# notes"),
                  ("raise RuntimeError('interactive only')", ["skip-in-run"]),
                  "def double(x):\n    return 2 * x\n",
                  f"{STOP_MARKER}\nraise RuntimeError('try-out cell ran on import')",
                  "after = True")
    mod = load_notebook(nb)
    assert mod.double(21) == 42
    assert mod.Net().width == 4 and mod.__name__ == "nbmod_a" and sys.modules["nbmod_a"] is mod
    assert not hasattr(mod, "after")
    assert [n for n, _ in import_cells(nb)] == [1, 4]


def test_without_marker_every_code_cell_runs(tmp_path):
    mod = load_notebook(write_nb(tmp_path / "nbmod_b.ipynb", "a = 1", "b = a + 1"))
    assert (mod.a, mod.b) == (1, 2)


def test_line_magics_are_left_out_in_plain_python_but_cell_magics_are_refused(tmp_path):
    mod = load_notebook(write_nb(tmp_path / "nbmod_c.ipynb", "%matplotlib inline\n!pip list\nx = 5\n"))
    assert mod.x == 5
    with pytest.raises(ConfigError, match=r"Cell 2 of .*nbmod_d.ipynb starts with the cell magic '%%time'") as err:
        load_notebook(write_nb(tmp_path / "nbmod_d.ipynb", "y = 1", "%%time\ny = 2"))
    assert STOP_MARKER in err.value.hint
    assert "nbmod_d" not in sys.modules  # a failed import leaves no half-made module behind


def test_error_in_a_cell_names_notebook_cell_and_source_line(tmp_path):
    nb = write_nb(tmp_path / "nbmod_e.ipynb", "ok = 1", "def f():\n    return {}['missing']\nf()\n")
    with pytest.raises(KeyError) as err:
        load_notebook(nb)
    assert any("cell 2 of notebook" in n for n in err.value.__notes__)
    text = "".join(traceback.format_exception(err.value))
    assert f"{nb}#cell2" in text and "return {}['missing']" in text


def test_bad_files_are_config_errors_with_the_path(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_notebook(tmp_path / "nbmod_missing.ipynb")
    (tmp_path / "nbmod_f.ipynb").write_text("{not json")
    with pytest.raises(ConfigError, match="nbmod_f.ipynb is not readable JSON"):
        load_notebook(tmp_path / "nbmod_f.ipynb")
    (tmp_path / "nbmod_g.ipynb").write_text(json.dumps({"worksheets": []}))
    with pytest.raises(ConfigError, match="not an nbformat-4 notebook"):
        load_notebook(tmp_path / "nbmod_g.ipynb")
    write_nb(tmp_path / "nbmod_h.ipynb", "x = = 1")
    with pytest.raises(ConfigError, match="Cell 1 of .* is not valid Python"):
        load_notebook(tmp_path / "nbmod_h.ipynb")


def test_import_statement_finds_notebooks_on_sys_path_and_py_files_win(tmp_path, monkeypatch):
    write_nb(tmp_path / "nbmod_helpers.ipynb", "VALUE = 'from notebook'")
    write_nb(tmp_path / "nbmod_shadowed.ipynb", "VALUE = 'from notebook'")
    (tmp_path / "nbmod_shadowed.py").write_text("VALUE = 'from py'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # The finder was installed when this test module imported assay.nbimport.
    import nbmod_shadowed  # type: ignore[import-not-found]
    from nbmod_helpers import VALUE  # type: ignore[import-not-found]

    assert VALUE == "from notebook" and nbmod_shadowed.VALUE == "from py"


def test_inside_ipython_magics_run_through_the_shell(tmp_path):
    nb = write_nb(tmp_path / "nbmod_i.ipynb", "%env NBMOD_FLAG=on\nimport os\nflag = os.environ['NBMOD_FLAG']")
    code = f"from assay.nbimport import load_notebook; print('flag', load_notebook({str(nb)!r}).flag)"
    out = subprocess.run([sys.executable, "-m", "IPython", "--quick", "--no-banner", "-c", code],
                         capture_output=True, text=True, timeout=60)
    assert "flag on" in out.stdout, out.stderr


def test_import_assay_does_not_load_nbimport():
    out = subprocess.run([sys.executable, "-c", "import assay, sys; print('assay.nbimport' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
