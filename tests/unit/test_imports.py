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


def test_assay_loop_functions_stay_functions_once_the_loop_modules_are_loaded():
    # Loading a submodule binds its name on the package, so a module named like one of the lazy API
    # names (assay.loop.confirm) would replace the function for the rest of the process.
    code = ("import importlib, pkgutil, types\nimport assay.loop as loop\n"
            "for m in pkgutil.iter_modules(loop.__path__):\n    importlib.import_module(f'assay.loop.{m.name}')\n"
            "print('hidden:', *[n for n in loop.__all__ if isinstance(getattr(loop, n), types.ModuleType)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["hidden:"]
