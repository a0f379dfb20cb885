"""`assay new NAME --from-script PATH` on real-style scripts (tests/fixtures/adopt/): the params it reads,
the config.yaml and experiment.yaml it writes, and runs of the adopted script in its own folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli

FIXTURES = Path(__file__).parent.parent / "fixtures" / "adopt"


@pytest.fixture
def adopt(lab):
    """adopt(fixture_folder, script, *args) -> (completed `assay new`, experiment folder), the fixture
    copied into the lab at project/<folder> (so nothing of the repository is touched)."""

    def call(folder: str, script: str = "train.py", *args: str, name: str = "exp"):
        dst = lab.root / "project" / folder
        shutil.copytree(FIXTURES / folder, dst)
        out = run_cli("new", name, "-H", "adopted as it is", "--from-script", str(dst / script), *args, cwd=lab.root)
        return out, lab.experiment_dir(name)

    return call


def _config(exp_dir: Path) -> tuple[dict, str]:
    text = (exp_dir / "config.yaml").read_text()
    return yaml.safe_load(text), text


def _experiment(exp_dir: Path) -> dict:
    return yaml.safe_load((exp_dir / "experiment.yaml").read_text())


def _comment_above(text: str, key: str) -> str:
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    return lines[i - 1] if lines[i - 1].startswith("#") else ""


def test_argparse_script_gives_defaults_types_choices_and_help_and_runs_in_its_own_folder(adopt, lab, cli):
    out, exp_dir = adopt("argparse_cls")
    assert out.returncode == 0, out.stderr
    cfg, text = _config(exp_dir)
    assert cfg == {"lr": 0.1, "epochs": 3, "optimizer": "sgd", "hidden-sizes": [64, 32], "amp": False,
                   "verbose": 0, "seed": 0, "data": "data/labels.txt"}
    assert isinstance(cfg["epochs"], int)  # default="3" with type=int: argparse converts it, so do we
    assert _comment_above(text, "lr") == "# learning rate"
    assert _comment_above(text, "optimizer") == "# update rule (choices: sgd, adam)"
    assert _comment_above(text, "hidden-sizes") == "# width of each hidden layer"
    assert "hidden-sizes: [64, 32]" in text
    exp = _experiment(exp_dir)
    assert exp["params"] == "argparse" and exp["entry"] == "../../project/argparse_cls/train.py"
    assert exp["workdir"] == "../../project/argparse_cls" and exp["code"] == ["../../project/argparse_cls/train.py"]
    assert exp["metric"] == {"name": "val_acc", "goal": "max"}  # the one `val_acc: ...` line it prints
    assert "metric val_acc: the one metric the script prints (train.py:20)" in out.stdout
    assert sorted(p.name for p in exp_dir.iterdir()) == ["JOURNAL.md", "README.md", "config.yaml", "experiment.yaml", "runs"]

    # Its sibling import (helpers) and relative data path (data/labels.txt) work: it runs in its folder.
    ran = cli("run", "exp", "base")
    assert ran.returncode == 0 and ran.stdout.startswith("ok "), (ran.stdout, ran.stderr)
    run_dir = next((exp_dir / "runs").iterdir())
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["cwd"] == str(lab.root / "project" / "argparse_cls")
    assert rec["metrics"]["val_acc"]["last"] == pytest.approx(0.753, abs=1e-3)
    assert rec["code"]["files"] == 1  # the adopted script (listed in `code:`) is part of the code version
    assert sorted(p.name for p in (lab.root / "project" / "argparse_cls").iterdir()) == ["data", "helpers.py", "train.py"]


def test_script_without_parameters_gets_the_env_style_and_runs_with_its_relative_paths(adopt, lab, cli):
    out, exp_dir = adopt("plain", "train.py", "--metric", "val_acc")
    assert out.returncode == 0, out.stderr
    assert _experiment(exp_dir)["params"] == "env"
    cfg, text = _config(exp_dir)
    assert cfg is None and "No parameters were found" in text
    ran = cli("run", "exp", "base")
    assert ran.returncode == 0 and len(ran.stdout.splitlines()) == 1, (ran.stdout, ran.stderr)
    log = next((exp_dir / "runs").iterdir()) / "logs" / "output.log"
    assert f"cwd: {lab.root / 'project' / 'plain'}" in log.read_text()
    assert "val_acc=0.75" in ran.stdout


def test_click_options_flags_choices_multiple_and_required(adopt):
    out, exp_dir = adopt("click_cls")
    assert out.returncode == 0, out.stderr
    cfg, text = _config(exp_dir)
    assert cfg == {"lr": 0.01, "batch-size": 32, "activation": "relu", "compile": True, "tag": [], "out": None}
    assert _comment_above(text, "activation") == "# (choices: relu, gelu)"
    assert _comment_above(text, "out") == "# Where the checkpoint goes. (required by the script: set it)"
    assert _comment_above(text, "tag") == "# Free-form tags. (type: list)"
    exp = _experiment(exp_dir)
    assert exp["params"] == "argparse" and exp["metric"] == {"name": "val_loss", "goal": "min"}
    assert "goal min: guessed from the name val_loss" in out.stdout


def test_typer_signature_with_annotated_options_enums_and_a_positional_argument(adopt):
    out, exp_dir = adopt("typer_cls")
    assert out.returncode == 0, out.stderr
    cfg, text = _config(exp_dir)
    assert cfg == {"lr": 0.0003, "warmup-steps": 100, "scheduler": "cosine", "fp16": False, "run-name": "baseline"}
    assert _comment_above(text, "lr") == "# Peak learning rate."
    assert _comment_above(text, "scheduler") == "# (choices: cosine, linear)"
    assert _experiment(exp_dir)["params"] == "argparse"
    assert "train.py:14: argument 'data' of main() is positional" in out.stderr


def test_hydra_app_reads_its_config_folder_and_group_defaults(adopt):
    out, exp_dir = adopt("hydra_app")
    assert out.returncode == 0, out.stderr
    cfg, text = _config(exp_dir)
    assert cfg == {"model": "resnet", "optim": {"lr": 0.01, "weight_decay": 0.0001}, "epochs": 2, "seed": 0}
    assert _comment_above(text, "model") == "# config group model/, resnet = {depth: 18, name: resnet} (choices: resnet, vit)"
    exp = _experiment(exp_dir)
    assert exp["params"] == "hydra" and exp["workdir"] == "../../project/hydra_app"
    assert exp["code"] == ["../../project/hydra_app/train.py", "../../project/hydra_app/conf"]


def test_nanogpt_configurator_globals_with_their_trailing_comments(adopt):
    out, exp_dir = adopt("nanogpt", "train.py", "--metric", "val_loss", "--goal", "min")
    assert out.returncode == 0, out.stderr
    cfg, text = _config(exp_dir)
    assert cfg["batch_size"] == 12 and cfg["learning_rate"] == 0.0006 and cfg["eval_only"] is False and cfg["out_dir"] == "out"
    assert cfg["gradient_accumulation_steps"] == 40  # `5 * 8`: arithmetic on constants is read
    assert "dtype" not in cfg and "config_keys" not in cfg
    assert _comment_above(text, "learning_rate") == "# max learning rate"
    assert _experiment(exp_dir)["params"] == "equals"
    assert "train.py:18: `dtype = 'bfloat16' if os.environ.get('BF16') else 'float16'` is not a literal" in out.stderr


def test_hf_argument_parser_dataclasses_with_field_metadata(adopt):
    out, exp_dir = adopt("hf_glue", "run_glue.py")
    assert out.returncode == 0, out.stderr
    cfg, text = _config(exp_dir)
    assert cfg == {"model_name_or_path": None, "layers_to_freeze": [], "task_name": "mrpc", "max_seq_length": 128,
                   "pad_to_max_length": True, "label_smoothing": 0.0}
    assert _comment_above(text, "task_name") == "# The GLUE task to train on. (choices: mrpc, sst2, cola)"
    assert _comment_above(text, "model_name_or_path") == \
        "# Path to pretrained model or model identifier. (type: str; required by the script: set it)"
    exp = _experiment(exp_dir)
    assert exp["params"] == "equals" and exp["metric"]["name"] == "eval_accuracy"
    assert "TrainingArguments is not defined in this file" in out.stderr


def test_dynamic_parameters_are_reported_with_file_and_line_not_guessed(adopt):
    out, exp_dir = adopt("dynamic")
    assert out.returncode == 0, out.stderr
    cfg, _ = _config(exp_dir)
    assert cfg == {"workers": None, "epochs": 5}
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(":")[1:3] for w in warnings] == [[" train.py", "9"], [" train.py", "10"], [" train.py", "11"]]
    assert "add_argument in a loop" in warnings[0] and "**kwargs" in warnings[1] and "os.cpu_count()" in warnings[2]


def test_several_printed_metrics_and_no_metric_option_asks_which(lab, tmp_path):
    script = lab.root / "two.py"
    script.write_text('loss, acc = 0.1, 0.9\nprint(f"val_loss: {loss:.3f}")\nprint(f"val_acc: {acc:.3f}")\n')
    out = run_cli("new", "two", "-H", "h", "--from-script", str(script), cwd=lab.root)
    assert out.returncode == 2 and "two.py prints several (val_loss, val_acc)" in out.stderr and "--metric" in out.stderr
    assert not lab.experiment_dir("two").exists()


def test_missing_script_is_a_one_line_error(lab):
    out = run_cli("new", "x", "-H", "h", "--from-script", "nope.py", "--metric", "m", cwd=lab.root)
    assert out.returncode == 2 and "is not a file" in out.stderr and "Traceback" not in out.stderr


def test_a_missing_workdir_fails_before_any_run_folder(adopt, lab, cli):
    _, exp_dir = adopt("plain", "train.py", "--metric", "val_acc")
    shutil.rmtree(lab.root / "project" / "plain")
    ran = cli("run", "exp", "base")
    assert ran.returncode == 2 and "working directory '../../project/plain'" in ran.stderr, ran.stderr
    assert not any((exp_dir / "runs").iterdir())


def test_docs_scripts_md_shows_the_real_output_of_each_adoption(lab):
    """Each `$ assay new ... --from-script` block of docs/scripts.md is what the command prints today."""
    import re
    import shlex

    docs = (Path(__file__).parents[2] / "docs" / "scripts.md").read_text()
    blocks = re.findall(r"```console\n\$ (assay new .*?)\n(.*?)```", docs, re.S)
    assert len(blocks) == 7
    for folder in ("argparse_cls", "click_cls", "typer_cls", "hydra_app", "nanogpt", "hf_glue", "dynamic"):
        shutil.copytree(FIXTURES / folder, lab.root / ("project" if folder == "argparse_cls" else folder))
    for command, shown in blocks:
        out = run_cli(*shlex.split(command)[1:], cwd=lab.root)
        assert out.returncode == 0, out.stderr
        # stderr's warnings sit before the `created` line in a terminal: they are printed before it
        stdout = out.stdout.splitlines()
        printed = stdout[:-2] + out.stderr.splitlines() + stdout[-2:]
        assert printed == shown.splitlines(), command
