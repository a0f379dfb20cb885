"""`import assay` and `assay --help` must stay light: no heavy libraries at start-up."""

import subprocess
import sys

HEAVY = ["optuna", "ray", "matplotlib", "pandas", "mlflow", "starlette", "sklearn", "numpy", "yaml", "sqlite3", "psutil", "rich"]


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_assay_loads_nothing_heavy():
    mods = _loaded("import assay")
    assert not {m for m in HEAVY if m in mods}


def test_help_loads_no_optional_extras():
    mods = _loaded("import sys; sys.argv=['assay','--help']\nfrom assay.cli.main import app\ntry:\n    app()\nexcept SystemExit: pass")
    assert not {m for m in HEAVY[:6] if m in mods}
