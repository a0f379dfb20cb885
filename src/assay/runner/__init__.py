"""Launching runs: process groups, timeouts, memory, status classification."""

from assay.runner.launch import RunResult, RunSpec, run_experiment, start_run

__all__ = ["RunResult", "RunSpec", "run_experiment", "start_run"]
