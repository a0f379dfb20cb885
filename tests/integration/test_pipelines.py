"""The Prefect flow of docs/pipelines.md, run as printed there with real Prefect (no server): the gate
holds and the best checkpoint is evaluated; the gate is shut and the flow fails before evaluating."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("prefect")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"
# Seeds 0, 1, 2 give q - 0.01, q, q + 0.01; each run saves its checkpoint into its folder.
TRAIN = """
import os, pathlib, assay
p = assay.params()
ckpt = pathlib.Path(os.environ["ASSAY_RUN_DIR"]) / "checkpoints" / "model.pt"
ckpt.parent.mkdir(exist_ok=True)
ckpt.write_text(str(p["q"] + 0.01 * (p["seed"] - 1)))
assay.log({"val_f1": p["q"] + 0.01 * (p["seed"] - 1)}, step=0)
"""
HOLDOUT = """
import pathlib

def evaluate(checkpoint):
    pathlib.Path("EVALUATED").write_text(checkpoint)
    return float(pathlib.Path(checkpoint).read_text()) - 0.02
"""


def _flow_source() -> str:
    block = DOCS.read_text().split("<!-- prefect-flow:begin -->")[1].split("<!-- prefect-flow:end -->")[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def _run_flow(lab_root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": os.pathsep.join(
               [str(lab_root), *filter(None, [os.environ.get("PYTHONPATH")])]),
           # the `assay` the flow calls is this interpreter's
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "nightly.py", "digits", "val_f1 >= 0.75"], cwd=lab_root, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_documented_prefect_flow_evaluates_the_best_checkpoint_only_when_the_gate_holds(lab, make_experiment, tmp_path):
    from assay.config import dump_yaml

    exp = make_experiment(TRAIN, name="digits", config={"seed": 0, "q": 0.8}, metric="val_f1", goal="max")
    (lab.root / "nightly.py").write_text(_flow_source())
    (lab.root / "holdout.py").write_text(HOLDOUT)

    held = _run_flow(lab.root, tmp_path)
    assert held.returncode == 0, held.stdout + held.stderr
    assert "holdout score: 0.79" in held.stdout  # the best seed (0.81) minus the holdout's gap
    evaluated = Path((lab.root / "EVALUATED").read_text())
    assert evaluated.name == "model.pt" and evaluated.parent.parent.name.endswith("-nightly-seed2")

    (lab.root / "EVALUATED").unlink()
    (exp.path / "config.yaml").write_text(dump_yaml({"seed": 0, "q": 0.7}))  # a regression: 0.69..0.71
    shut = _run_flow(lab.root, tmp_path)
    assert shut.returncode != 0
    logs = shut.stdout + shut.stderr
    assert "Command '['assay', 'gate', 'digits', 'val_f1 >= 0.75']' returned non-zero exit status 1" in logs, logs
    assert "Finished in state Failed" in logs
    assert not (lab.root / "EVALUATED").exists()  # evaluate_on_holdout never ran
