"""Shared fixtures: a lab in tmp_path, an experiment with a script of our choosing, the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ASSAY = [sys.executable, "-m", "assay.cli.main"]


@pytest.fixture
def lab(tmp_path: Path):
    from assay.lab import init_lab

    lab, _ = init_lab(tmp_path / "lab")
    return lab


@pytest.fixture
def make_experiment(lab) -> Callable[..., object]:
    """make_experiment(script_source, name="exp", config={...}, metric="val_bpb", goal="min", **fields)."""
    from assay.config import dump_yaml
    from assay.experiment import load_experiment

    def make(script: str, name: str = "exp", config: dict | None = None, metric: str = "val_bpb",
             goal: str = "min", entry: str = "train.py", **fields: object):
        path = lab.experiment_dir(name)
        path.mkdir(parents=True, exist_ok=True)
        (path / "train.py").write_text(textwrap.dedent(script))
        (path / "config.yaml").write_text(dump_yaml(config if config is not None else {"seed": 0}))
        data = {"hypothesis": "test", "metric": {"name": metric, "goal": goal}, "entry": entry, "timeout": "60s", **fields}
        (path / "experiment.yaml").write_text(dump_yaml(data))
        return load_experiment(lab, name)

    return make


def run_cli(*args: str, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """Run `assay ARGS` as a real subprocess in `cwd`."""
    return subprocess.run([*ASSAY, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def cli(lab) -> Callable[..., subprocess.CompletedProcess[str]]:
    def call(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=lab.root, timeout=timeout, env=env)

    return call


def wait_for(predicate: Callable[[], object], deadline_s: float = 30.0, what: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy (and return that), or fail at the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                         env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                              "GIT_COMMITTER_EMAIL": "t@t"})
    return out.stdout.strip()
