"""How params become a script's arguments in each style (runner.styles), without running anything."""

from pathlib import Path

import pytest

from assay.config import parse_overrides
from assay.errors import ConfigError
from assay.runner.styles import Script, cli_args, hydra_args, invocation, parse_style, template_keys, unreached

CMD = ["python", "-u", "train.py"]


def test_unknown_style_names_the_known_ones_and_the_closest():
    with pytest.raises(ConfigError) as err:
        parse_style("argprase", Path("experiment.yaml"))
    assert "'argprase'" in err.value.message and "env, argparse, equals, hydra, template" in err.value.message
    assert "Did you mean 'argparse'?" in err.value.message


def test_missing_style_is_env():
    assert parse_style(None, Path("experiment.yaml")) == "env"


def test_argparse_spells_flags_as_the_script_declares_them():
    source = 'p.add_argument("--batch-size", type=int)\np.add_argument("--lr")\np.add_argument("--fast", action="store_true")'
    args = cli_args("argparse", {"batch_size": 8, "lr": 1e-05, "layers": [1, 2], "fast": False, "none": None}, source)
    assert args == ["--batch-size", "8", "--lr", "1e-05", "--layers", "1", "2"]  # store_true False: left at its default


def test_argparse_booleans_use_no_flag_where_the_script_has_one():
    assert cli_args("argparse", {"shuffle": False, "aug": True}, "BooleanOptionalAction") == ["--no-shuffle", "--aug"]
    assert cli_args("argparse", {"shuffle": False}, None) == ["--no-shuffle"]
    assert cli_args("argparse", {"warm": False}, '@click.option("--warm/--no-warm")') == ["--no-warm"]


def test_typer_scripts_get_dashed_flags():
    assert cli_args("argparse", {"batch_size": 8}, "import typer\n") == ["--batch-size", "8"]


def test_equals_writes_python_literals_and_keeps_dotted_keys():
    args = cli_args("equals", {"compile": False, "lr": 0.1, "dataset": "shakespeare", "model.depth": 4, "layers": [1, 2]}, None)
    assert args == ["--compile=False", "--lr=0.1", "--dataset=shakespeare", "--model.depth=4", "--layers=[1, 2]"]


def test_hydra_adds_a_plus_only_for_keys_the_app_lacks():
    app = frozenset({"lr", "model", "model.depth"})
    assert hydra_args({"lr": 1e-05, "model": "vit", "note": "a b", "flag": True}, app, set()) == [
        "lr=1e-5", "model=vit", "+note='a b'", "+flag=true"]
    assert hydra_args({"lr": 0.1, "extra": 1}, None, {"extra"}) == ["lr=0.1", "+extra=1"]  # app unknown: the run's own '+'


def test_hydra_quotes_strings_its_grammar_would_retype():
    assert hydra_args({"name": "true", "tag": "1.0", "path": "data/x"}, frozenset({"name", "tag", "path"}), set()) == [
        "name='true'", "tag='1.0'", "path=data/x"]


def test_cli_styles_pass_config_keys_and_seed_only_to_scripts_that_take_one(tmp_path):
    params = {"lr": 0.1, "seed": 3, "extra": 1}
    without_seed = Script("argparse", "train.py", CMD, source='p.add_argument("--lr")')
    inv = invocation(without_seed, params, {"lr", "seed"}, [], tmp_path)
    assert inv.argv == [*CMD, "--lr", "0.1"] and inv.passed == {"lr"}
    with_seed = Script("argparse", "train.py", CMD, source='p.add_argument("--lr")\np.add_argument("--seed")')
    assert invocation(with_seed, params, {"lr", "seed"}, parse_overrides(["+extra=1"]), tmp_path).argv == [
        *CMD, "--lr", "0.1", "--seed", "3", "--extra", "1"]


def test_hydra_output_dir_is_inside_the_run_folder(tmp_path):
    inv = invocation(Script("hydra", "train.py", CMD), {"lr": 0.1}, {"lr"}, [], tmp_path / "run")
    assert inv.argv[-2:] == [f"hydra.run.dir='{tmp_path / 'run' / 'hydra'}'", "hydra.output_subdir=.hydra"]


def test_template_fills_its_own_arguments_each_as_one_argument(tmp_path):
    entry = "python train.py --lr {lr} --name {name} --opt {optim.lr} {{literal}}"
    cmd = ["/venv/python", "train.py", "--lr", "{lr}", "--name", "{name}", "--opt", "{optim.lr}", "{{literal}}"]
    inv = invocation(Script("template", entry, cmd), {"lr": 0.5, "name": "a b", "optim": {"lr": 2}}, set(), [], tmp_path)
    assert inv.argv == ["/venv/python", "train.py", "--lr", "0.5", "--name", "a b", "--opt", "2", "{literal}"]
    assert inv.passed == {"lr", "name", "optim.lr"} and template_keys(entry) == ["lr", "name", "optim.lr"]


def test_env_style_reach_is_read_from_the_api_record_and_the_variable_hook(tmp_path):
    inv = invocation(Script("env", "train.py", CMD), {"lr": 0.1, "bs": 2}, {"lr", "bs"}, [], tmp_path)
    parsed = parse_overrides(["lr=0.2", "bs=4"])
    assert unreached(inv, parsed, tmp_path, None) == []  # nothing reported: nothing claimed
    (tmp_path / "params_env_read.txt").write_text("loaded\nread ASSAY_PARAM_LR\n")
    assert unreached(inv, parsed, tmp_path, None) == ["bs"]
    (tmp_path / "params_read.json").write_text('["bs"]')
    assert unreached(inv, parsed, tmp_path, None) == []


def test_a_shell_entry_that_names_the_variable_counts_as_reading_it(tmp_path):
    (tmp_path / "run.sh").write_text('python train.py --lr "$ASSAY_PARAM_LR"\n')
    (tmp_path / "params_env_read.txt").write_text("loaded\n")
    inv = invocation(Script("env", "run.sh", ["bash", "run.sh"]), {"lr": 0.1, "bs": 2}, {"lr", "bs"}, [], tmp_path)
    assert unreached(inv, parse_overrides(["lr=0.2", "bs=4"]), tmp_path, tmp_path / "run.sh") == ["bs"]


def test_a_counted_flag_is_repeated_and_takes_no_value():
    from assay.runner.styles import cli_args

    source = 'p.add_argument("-v", "--verbose", action="count", default=0)\np.add_argument("--lr", type=float)\n'
    assert cli_args("argparse", {"verbose": 2, "lr": 0.1}, source) == ["--verbose", "--verbose", "--lr", "0.1"]
    assert cli_args("argparse", {"verbose": 0}, source) == []
    click = '@click.option("-v", "--verbose", count=True)\n'
    assert cli_args("argparse", {"verbose": 1}, click) == ["--verbose"]


def test_notebook_runners_count_as_delivering_the_params_they_pass_themselves(tmp_path):
    # The hook saw the runner load but no ASSAY_PARAM_* read: the notebook took its params from
    # mo.cli_args() (marimo) or from the injected parameters cell (Jupyter), not from the environment.
    (tmp_path / "params_env_read.txt").write_text("loaded\n")
    parsed = parse_overrides(["lr=0.2", "opt.scale=2", "bad-key=1"])
    params = {"lr": 0.2, "opt": {"scale": 2}, "bad-key": 1}
    marimo = Script("env", "app.py", ["python", "-u", "-m", "assay.integrations.marimo_notebook", "app.py"])
    inv = invocation(marimo, params, set(), parsed, tmp_path)
    assert inv.passed == {"lr", "opt.scale", "bad-key"} and unreached(inv, parsed, tmp_path, None) == []
    jupyter = Script("env", "train.ipynb", ["python", "-m", "assay.integrations.notebook", "train.ipynb"])
    inv = invocation(jupyter, params, set(), parsed, tmp_path)
    # `bad-key` is no Python name: the injected cell cannot assign it, so only the environment carries it.
    assert inv.passed == {"lr", "opt"} and unreached(inv, parsed, tmp_path, None) == ["bad-key"]
