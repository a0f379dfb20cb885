"""The CLI as a real subprocess: the tour works, errors are one or two lines with the fix."""

from __future__ import annotations

import json
import re

from assay.demo import VARIANTS
from tests.conftest import run_cli


def test_init_new_run_runs_compare_show_note_journal(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    assert run_cli("init", cwd=root).returncode == 0
    assert "assay:begin" in (root / "AGENTS.md").read_text()
    out = run_cli("new", "base", "--hypothesis", "more epochs help", "--metric", "val_f1", "--goal", "max",
                  "--success", "val_f1 >= 0.8", "--failure", "val_f1 < 0.5", cwd=root)
    assert out.returncode == 0, out.stderr
    exp = root / "experiments" / "base"
    assert {p.name for p in exp.iterdir()} >= {"experiment.yaml", "README.md", "JOURNAL.md", "config.yaml", "train.py"}
    # The scaffold trains nothing: its run fails, says why, and exits 1 (it never reports a made-up number).
    out = run_cli("run", "base", "scaffold", cwd=root)
    assert out.returncode == 1 and out.stdout.startswith("failed ") and "this is the scaffold" in out.stdout
    (exp / "train.py").write_text("import assay\np = assay.params()\nfor e in range(p['epochs']):\n"
                                  "    assay.log({'val_f1': 1 - 1 / (e + 2)}, step=e)\n")
    for epochs in ("2", "6"):
        out = run_cli("run", "base", f"e{epochs}", f"epochs={epochs}", cwd=root)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("ok ") and len(out.stdout.splitlines()) == 1
    table = run_cli("compare", "base", "--by", "epochs", cwd=root).stdout
    assert "val_f1 (mean" in table and "* 6" in table.replace("  ", " ") and "scaffold" not in table
    assert "best_val_f1" in run_cli("compare", "base", "--by", "epochs", "--value", "best", cwd=root).stdout
    runs = json.loads(run_cli("runs", "--json", cwd=root).stdout)
    assert runs["total"] == 3
    assert run_cli("note", "base", "[WEIRD] f1 jumps at epoch 3", "--run", "e6", cwd=root).returncode == 0
    j = json.loads(run_cli("journal", "base", "--tag", "weird", "--json", cwd=root).stdout)
    assert j[0]["text"] == "f1 jumps at epoch 3" and j[0]["run"].endswith("-e6")
    shown = run_cli("show", "e2", cwd=root).stdout
    assert "epochs=2" in shown
    out = run_cli("new", "attn", "--hypothesis", "attention pooling", "--from", "base", cwd=root)
    assert out.returncode == 0, out.stderr
    assert (root / "experiments" / "attn" / "train.py").read_text() == (exp / "train.py").read_text()
    assert not (root / "experiments" / "attn" / "runs").joinpath("x").exists()
    assert "attention pooling" in (root / "experiments" / "attn" / "README.md").read_text()


def _error(out, code: int = 2) -> str:
    """A one- or two-line error; exit 2 for usage and configuration errors (README, "Exit codes")."""
    assert out.returncode == code, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and len(lines) <= 2, out.stderr
    return out.stderr


def test_errors_are_short_and_say_the_fix(lab, make_experiment, cli):
    make_experiment("print('val_bpb: 1')\n", config={"seed": 0, "lr": 0.1})
    assert "assay new" in _error(cli("run", "nope", "x"))
    err = _error(cli("run", "exp", "x", "lrr=1"))
    assert "Did you mean 'lr'" in err and "+lrr" in err
    (lab.experiment_dir("exp") / "config.yaml").write_text("lr: [0.1\n")
    assert "config.yaml:" in _error(cli("run", "exp", "x"))
    assert "--timeout" not in _error(cli("run", "exp", "x", "--timeout", "soon"))
    assert "No run matches" in _error(cli("show", "zzz"))


def test_debug_shows_the_traceback(lab, cli):
    out = cli("--debug", "run", "nope", "x")
    assert out.returncode == 1 and "Traceback" in out.stderr


def test_no_lab_is_a_clear_error(tmp_path):
    assert "assay init" in _error(run_cli("runs", cwd=tmp_path))


def test_missing_script_is_a_clear_error(lab, make_experiment, cli):
    make_experiment("print('val_bpb: 1')\n", entry="missing.py")
    assert "missing.py" in _error(cli("run", "exp", "x"))


def test_demo_runs_and_prints_the_comparison(tmp_path):
    out = run_cli("demo", str(tmp_path / "d"), cwd=tmp_path, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\nok ") + out.stdout.startswith("ok ") >= 6
    assert "val_f1 (mean ± std)" in out.stdout and "* " in out.stdout and " ± " in out.stdout
    # Three seeds per side measure the noise a verdict needs (its value depends on scikit-learn's SGD).
    assert re.search(r"^verdict: (SUPPORTED|REFUTED|INCONCLUSIVE): .*n=3", out.stdout, re.M), out.stdout
    assert "val_f1[loss=log_loss, alpha=0.0001] > val_f1[loss=hinge, alpha=0.0001]" in out.stdout  # judged, not just stated
    runs = json.loads(run_cli("runs", "digits", "--json", cwd=tmp_path / "d").stdout)
    assert runs["total"] == 10 and all(r["status"] == "ok" for r in runs["runs"])
    # One truth: the table and the verdict show the same configurations with the same numbers.
    cmp = json.loads(run_cli("compare", "digits", "--by", "loss,alpha", "--json", cwd=tmp_path / "d").stdout)
    verdict = json.loads(run_cli("verdict", "digits", "--json", cwd=tmp_path / "d").stdout)
    judged = {(c["params"]["loss"], c["params"]["alpha"]): c["criteria"][0] for c in verdict["configurations"]}
    assert len(judged) == len(cmp["rows"]) == len(VARIANTS)
    for row in cmp["rows"]:
        j = judged[(row["loss"], row["alpha"])]
        assert j["n"] == row["n"] and abs(j["mean"] - row["mean"]) < 1e-12
    best = cmp["rows"][cmp["best"]]
    assert f"* {best['loss']}" in out.stdout.replace("  ", " ")


def test_plain_help_setting_does_not_leak_into_launched_scripts(lab, make_experiment, cli):
    make_experiment("import os\nprint('rich setting:', os.environ.get('TYPER_USE_RICH', 'unset'))\nprint('val_bpb: 1')\n")
    assert cli("run", "exp", "env").returncode == 0
    (log,) = (lab.experiment_dir("exp") / "runs").glob("*/logs/output.log")
    assert "rich setting: unset" in log.read_text()
