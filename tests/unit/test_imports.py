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


def test_a_command_line_builds_only_the_command_it_names():
    from typer.main import get_command

    from assay.cli.main import _only_the_named_command, app

    every = set(get_command(app).commands)
    assert {"run", "loop", "sweep", "runs"} <= every
    assert set(get_command(_only_the_named_command(["run", "exp", "d", "lr=1"])).commands) == {"run"}
    assert set(get_command(_only_the_named_command(["--debug", "loop", "status"])).commands) == {"loop"}
    for argv in ([], ["--help"], ["rnu"], ["--debug"]):  # help, typos and bare options see every command
        assert set(get_command(_only_the_named_command(argv)).commands) == every


def test_narrowed_dispatch_keeps_help_and_did_you_mean(tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "assay.cli.main", *args], capture_output=True, text=True, cwd=tmp_path)

    assert "Usage: assay run" in cli("run", "--help").stdout
    out = cli("rnu")
    assert out.returncode != 0 and "Did you mean 'run'" in out.stderr
    assert "Usage: assay loop" in cli("loop", "--help").stdout
    from assay import __version__

    assert cli("--version").stdout.strip() == f"assay {__version__}"
