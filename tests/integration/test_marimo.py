"""marimo notebooks as entry points: a real marimo install runs them as scripts with params as CLI args."""

from __future__ import annotations

import pytest

from assay.runner import RunSpec, run_experiment

pytest.importorskip("marimo")

NOTEBOOK = '''
import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import assay
    return assay, mo


@app.cell
def _(assay, mo):
    args = mo.cli_args()
    print("cli", sorted(args.keys()))
    lr = float(args.get("lr"))
    assert lr == assay.params()["lr"], (dict(args), assay.params())
    for epoch in range(int(args.get("epochs"))):
        print(f"epoch={epoch} val_loss={lr / (epoch + 1)}")
    print("optimizer", args.get("opt.name"))
    return


if __name__ == "__main__":
    app.run()
'''


def test_marimo_notebook_runs_as_script_with_params_as_cli_args(lab, make_experiment):
    exp = make_experiment(NOTEBOOK, config={"seed": 0, "lr": 0.5, "epochs": 2, "opt": {"name": "sgd"}},
                          metric="val_loss", goal="min")
    (res,) = run_experiment(lab, RunSpec("exp", "mo", ["lr=0.25", "opt.name=adam"]))
    assert res.status == "ok", res.record["log_tail"]
    assert res.record["command"][1:4] == ["-u", "-m", "assay.integrations.marimo_notebook"]
    assert res.record["command"][4] == str(exp.path / "train.py")
    assert res.record["metrics"]["val_loss"]["count"] == 2
    assert res.record["metrics"]["val_loss"]["last"] == pytest.approx(0.125)
    assert "optimizer adam" in res.record["log_tail"]
    assert "cli ['epochs', 'lr', 'opt.name', 'seed']" in res.record["log_tail"]


def test_a_failing_marimo_cell_fails_the_run(lab, make_experiment):
    make_experiment(NOTEBOOK.replace('lr = float(args.get("lr"))', 'lr = float(args.get("missing"))'),
                    config={"seed": 0, "lr": 0.5, "epochs": 1}, metric="val_loss")
    (res,) = run_experiment(lab, RunSpec("exp", "mo-crash"))
    assert res.status == "failed" and res.record["exit_code"] != 0
    assert "TypeError" in res.record["log_tail"]


def test_plain_script_mentioning_marimo_is_not_treated_as_a_notebook(lab, make_experiment):
    make_experiment("# we could use marimo.App( someday\nprint('val_loss: 1.0')\n", metric="val_loss")
    (res,) = run_experiment(lab, RunSpec("exp", "plain"))
    assert res.status == "ok" and "-m" not in res.record["command"]


CLI_ONLY = '''
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    args = mo.cli_args()
    print(f"val_loss: {float(args.get('lr')) / float(args.get('opt.scale'))}")
    return


if __name__ == "__main__":
    app.run()
'''


def test_params_read_with_mo_cli_args_raise_no_never_reached_warning(lab, make_experiment):
    make_experiment(CLI_ONLY, config={"seed": 0, "lr": 0.5, "opt": {"scale": 1}}, metric="val_loss")
    (res,) = run_experiment(lab, RunSpec("exp", "cli-only", ["lr=0.25", "opt.scale=2"]))
    assert res.status == "ok", res.record["log_tail"]
    assert res.record["metrics"]["val_loss"]["last"] == pytest.approx(0.125)
    assert not res.record.get("params_unreached") and not res.record.get("warnings")


def test_new_with_app_py_scaffolds_a_marimo_app_that_refuses_to_run_until_edited(lab, cli):
    out = cli("new", "mo", "--hypothesis", "a marimo app", "--metric", "val_f1", "--goal", "max", "--entry", "app.py")
    assert out.returncode == 0, out.stderr
    app = lab.experiment_dir("mo") / "app.py"
    assert not (app.parent / "train.py").exists()
    from assay.integrations.marimo_notebook import is_marimo_notebook

    assert is_marimo_notebook(app.read_text())
    (res,) = run_experiment(lab, RunSpec("mo", "untouched"))
    assert res.status == "failed" and "this is the scaffold from `assay new`: edit app.py" in res.record["reason"]
    assert res.record["command"][1:4] == ["-u", "-m", "assay.integrations.marimo_notebook"]

    text = app.read_text()
    text = "\n".join(ln for ln in text.splitlines() if "raise RuntimeError" not in ln).replace("score = ...", "score = 0.5 + epoch / 10")
    app.write_text(text)
    (res,) = run_experiment(lab, RunSpec("mo", "edited", ["epochs=3"]))
    assert res.status == "ok", res.record["log_tail"]
    assert res.record["metrics"]["val_f1"]["count"] == 3 and res.record["metrics"]["val_f1"]["last"] == pytest.approx(0.7)
    assert not res.record.get("warnings")
