"""Unmodified scripts take their params in their own style: real argparse, click, nanoGPT-configurator,
Hydra (real hydra-core, config groups) and template scripts from tests/fixtures/scripts, each run
with `assay run` and swept with `assay sweep` as real subprocesses. Each script prints the values it
received (`lr_seen: 0.01`), so every assertion is on what reached the script."""

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from assay.config import dump_yaml
from assay.store import records

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scripts"

# app folder, style, config.yaml, overrides for one run, what the script must have received
CASES = {
    "argparse": ("argparse_app", "argparse", {"lr": 0.1, "batch_size": 32, "layers": [64, 64], "shuffle": True, "model": {"depth": 2}},
                 ["lr=0.05", "batch_size=16", "layers=[1,2]", "shuffle=false", "model.depth=5"],
                 {"lr_seen": 0.05, "batch_seen": 16, "layers_seen": 3, "shuffle_seen": 0, "depth_seen": 5}),
    "click": ("click_app", "argparse", {"lr": 0.1, "epochs": 3, "warmup": False},
              ["lr=0.05", "epochs=4", "warmup=true"], {"lr_seen": 0.05, "epochs_seen": 4, "warmup_seen": 1}),
    "nanogpt": ("nanogpt_app", "equals", {"lr": 6e-4, "batch_size": 12, "compile": True, "dataset": "openwebtext"},
                ["lr=0.05", "batch_size=4", "compile=false", "dataset=shakespeare"],
                {"lr_seen": 0.05, "batch_seen": 4, "compile_seen": 0, "dataset_is_shakespeare": 1}),
    "hydra": ("hydra_app", "hydra", {"lr": 0.1, "model": "resnet", "seed": 0},
              ["lr=0.05", "model=vit"], {"lr_seen": 0.05, "depth_seen": 12, "is_vit": 1}),
    "template": ("template_app", "template", {"lr": 0.1, "batch": 8},
                 ["lr=0.05", "batch=16"], {"lr_seen": 0.05, "batch_seen": 16}),
}


def adopt(lab, app: str, style: str, config: dict, name: str | None = None, **fields):
    """Put a fixture app in the lab as an experiment, unmodified, with `params: STYLE`."""
    path = lab.experiment_dir(name or app)
    shutil.copytree(FIXTURES / app, path)
    (path / "config.yaml").write_text(dump_yaml(config))
    data = {"hypothesis": "t", "metric": {"name": "val_loss", "goal": "min"}, "entry": "train.py", "timeout": "60s",
            "params": style, **fields}
    (path / "experiment.yaml").write_text(dump_yaml(data))
    return path


def runs(path: Path) -> list[dict]:
    return [records.read_record(d) for d in sorted((path / "runs").iterdir()) if (d / "run.json").is_file()]


def seen(record: dict) -> dict:
    return {k: v["last"] for k, v in record["metrics"].items()}


def setup_case(lab, case: str):
    app, style, config, overrides, expected = CASES[case]
    if case == "nanogpt":  # nanoGPT's own name for the learning rate
        config = {"learning_rate" if k == "lr" else k: v for k, v in config.items()}
        overrides = [o.replace("lr=", "learning_rate=") for o in overrides]
    fields = {"entry": "python train.py -lr {lr} -bs {batch}"} if style == "template" else {}
    return adopt(lab, app, style, config, **fields), overrides, expected, "learning_rate" if case == "nanogpt" else "lr"


@pytest.mark.parametrize("case", list(CASES))
def test_unmodified_script_gets_each_param_on_run_and_each_trial_its_own_in_a_sweep(lab, cli, case):
    path, overrides, expected, lr = setup_case(lab, case)
    out = cli("run", path.name, "styled", *overrides)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warning" not in out.stdout
    (rec,) = runs(path)
    assert {k: seen(rec)[k] for k in expected} == expected
    assert not rec.get("params_unreached")
    if case != "template":  # the command line in run.json reproduces the run
        assert any("0.05" in arg for arg in rec["command"])

    out = cli("sweep", path.name, f"{lr}=0.01,0.2", "-j", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warning" not in out.stdout
    trials = [r for r in runs(path) if "sweep" in r["tags"]]
    assert sorted(seen(r)["lr_seen"] for r in trials) == [0.01, 0.2]
    assert all(seen(r)["lr_seen"] == r["params"][lr] for r in trials)
    assert len({r["metrics"]["val_loss"]["last"] for r in trials}) == 2


def test_hydra_run_records_group_choices_and_keeps_hydra_output_in_the_run_folder(lab, cli):
    path = adopt(lab, "hydra_app", "hydra", {"lr": 0.1, "model": "resnet", "seed": 0})
    out = cli("run", "hydra_app", "vit", "model=vit", "+note=hello")
    assert out.returncode == 0, out.stdout + out.stderr
    (rec,) = runs(path)
    assert rec["params"]["model"] == "vit" and rec["params"]["model.depth"] == 12 and rec["params"]["epochs"] == 2
    assert rec["params"]["note"] == "hello" and rec["overrides"] == ["model=vit", "+note=hello"]
    assert "+note=hello" in rec["command"] and "seed=0" not in " ".join(rec["command"])  # the app has no seed
    run_dir = path / "runs" / rec["id"].split("/")[1]
    assert (run_dir / "hydra" / ".hydra" / "config.yaml").is_file()
    assert not (path / "outputs").exists() and not (path / "multirun").exists()


def test_hydra_sweep_over_a_config_group_runs_each_choice(lab, cli):
    path = adopt(lab, "hydra_app", "hydra", {"lr": 0.1, "model": "resnet", "seed": 0})
    out = cli("sweep", "hydra_app", "-m", "model=resnet,vit", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["counts"] == {"ok": 2}
    assert sorted((r["params"]["model"], seen(r)["depth_seen"]) for r in runs(path)) == [("resnet", 18), ("vit", 12)]


def test_hydra_rejects_an_unknown_group_choice_before_any_run(lab, cli):
    path = adopt(lab, "hydra_app", "hydra", {"lr": 0.1, "model": "resnet", "seed": 0})
    out = cli("run", "hydra_app", "bad", "model=transformer")
    assert out.returncode == 2
    assert "Hydra rejected" in out.stderr and "Could not find 'model/transformer'" in out.stderr and "resnet, vit" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli("sweep", "hydra_app", "model=resnet,transformer")
    assert out.returncode == 2 and "model/transformer" in out.stderr
    assert not (path / "runs").exists() or not list((path / "runs").iterdir())


def test_sweep_of_an_argparse_script_left_in_env_style_stops_naming_the_param_and_the_fix(lab, cli):
    path = adopt(lab, "argparse_app", "env", {"lr": 0.1})
    out = cli("sweep", "argparse_app", "lr=0.01,0.1,0.5", "-j", "1")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "swept param 'lr' never reached the script" in out.stderr and "ASSAY_PARAM_LR" in out.stderr
    assert "`params: argparse`" in out.stderr and "assay new NAME --from-script train.py" in out.stderr
    assert len(runs(path)) == 1  # stopped after its first trial
    (sweep,) = (path / "sweeps").iterdir()
    assert json.loads((sweep / "sweep.json").read_text())["status"] == "refused"


def test_run_of_an_env_style_script_warns_about_a_param_it_never_read(lab, cli):
    path = adopt(lab, "argparse_app", "env", {"lr": 0.1})
    out = cli("run", "argparse_app", "d", "lr=0.3")
    assert out.returncode == 0, out.stderr
    assert "warning: param 'lr' never reached the script" in out.stdout
    assert runs(path)[0]["params_unreached"] == ["lr"]


def test_env_variable_read_counts_as_reached_and_identical_trials_are_warned_about(lab, cli):
    path = adopt(lab, "env_app", "env", {"lr": 0.1})
    out = cli("sweep", "env_app", "lr=0.01,0.2", "-j", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(seen(r)["lr_seen"] for r in runs(path)) == [0.01, 0.2]
    assert "warning" not in out.stdout

    (path / "train.py").write_text(textwrap.dedent("""\
        import os
        os.environ["ASSAY_PARAM_LR"]  # read, then ignored
        print("val_loss: 0.5")
    """))
    out = cli("sweep", "env_app", "lr=0.01,0.2", "-j", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warning: trials 1, 2 have different params but bit-identical metrics" in out.stdout


def test_params_read_through_the_api_reach_the_script_in_env_style(lab, cli, make_experiment):
    exp = make_experiment("import assay\nprint('val_bpb:', assay.params()['lr'])\n", config={"seed": 0, "lr": 0.1})
    out = cli("sweep", "exp", "lr=0.5,0.7", "-j", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(r["metrics"]["val_bpb"]["last"] for r in runs(exp.path)) == [0.5, 0.7]


def test_template_placeholder_that_is_no_param_is_refused_by_name(lab, cli):
    path = adopt(lab, "template_app", "template", {"lr": 0.1, "batch": 8}, entry="python train.py -lr {lr} -bs {bacth}")
    out = cli("run", "template_app", "d")
    assert out.returncode == 2
    assert "Unknown placeholder {bacth}" in out.stderr and "Did you mean 'batch'?" in out.stderr
    assert not (path / "runs").exists() or not list((path / "runs").iterdir())


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed (it is in the test extra)")
def test_pep723_script_runs_through_uv_with_its_arguments(lab, cli):
    path = adopt(lab, "argparse_app", "argparse", {"lr": 0.1})
    script = path / "train.py"
    script.write_text("# /// script\n# dependencies = []\n# ///\n" + script.read_text())
    out = cli("run", "argparse_app", "d", "lr=0.3")
    assert out.returncode == 0, out.stdout + out.stderr
    (rec,) = runs(path)
    assert rec["command"][:2] == ["uv", "run"] and rec["command"][-2:] == ["--lr", "0.3"] and seen(rec)["lr_seen"] == 0.3
