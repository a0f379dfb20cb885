"""The in-script API in a real process: points reach metrics.jsonl within a second, values files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import wait_for

SLOW_EPOCH = """
import time
import assay
assay.init()
assay.log({"val_loss": 0.25}, step=0)
print("logged", flush=True)
time.sleep(5)  # the next epoch: no further call that could flush the point
"""


def _metric_lines(run_dir: Path) -> list[dict]:
    file = run_dir / "metrics.jsonl"
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def test_a_point_reaches_disk_within_a_second_without_a_further_call(tmp_path: Path):
    script = tmp_path / "train.py"
    script.write_text(SLOW_EPOCH)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Attached as `assay run` launches a script: the run folder comes from ASSAY_RUN_DIR.
    env = {**os.environ, "ASSAY_RUN_DIR": str(run_dir), "ASSAY_PARAMS": "{}"}
    proc = subprocess.Popen([sys.executable, "-u", str(script)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "logged"
        logged_at = time.monotonic()
        lines = wait_for(lambda: [e for e in _metric_lines(run_dir) if "m" in e], deadline_s=1.5,
                         what="the point in metrics.jsonl")
        assert lines[0]["m"] == {"val_loss": 0.25} and lines[0]["step"] == 0
        assert time.monotonic() - logged_at < 1.5
        assert proc.poll() is None  # still in its sleep: the point did not wait for the exit
    finally:
        proc.kill()
        proc.wait()


VALUES = """
import numpy as np
import assay
assay.init()
assay.log_values("val/correct", np.array([1, 0, 1, 1], dtype=np.int64))
assay.log_values("val/correct", np.array([[0.5, 1.0], [0.25, 2.0]]).ravel())  # the last call wins
"""


def test_log_values_writes_little_endian_float64_and_an_event(tmp_path: Path):
    import struct

    script = tmp_path / "train.py"
    script.write_text(VALUES)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "ASSAY_RUN_DIR": str(run_dir), "ASSAY_PARAMS": "{}"}
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=60)
    data = (run_dir / "data" / "values" / "val_correct.f64").read_bytes()
    assert struct.unpack("<4d", data) == (0.5, 1.0, 0.25, 2.0)  # readable without numpy
    events = [e["values"] for e in _metric_lines(run_dir) if "values" in e]
    assert events == [{"name": "val/correct", "path": "data/values/val_correct.f64", "n": 4}] * 2
    from assay.tracking import read_values

    assert read_values(run_dir, "val/correct") == [0.5, 1.0, 0.25, 2.0] and read_values(run_dir, "other") is None
