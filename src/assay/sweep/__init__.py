"""Sweeps: search spaces, samplers (grid, random, Optuna), executors (local pool, Ray), the driver.

Nothing heavy is imported here; Optuna and Ray load only when a sweep names them.
"""

from assay.sweep.driver import SweepConfig, SweepEvent, SweepOutcome, resume_config, run_sweep, start_sweep
from assay.sweep.executors import EXECUTORS, Executor, LocalPool, get_executor
from assay.sweep.samplers import SAMPLERS, Sampler, TrialResult, get_sampler
from assay.sweep.space import SearchSpace, space_from_args, space_from_mapping

__all__ = [
    "EXECUTORS", "SAMPLERS", "Executor", "LocalPool", "Sampler", "SearchSpace", "SweepConfig", "SweepEvent",
    "SweepOutcome", "TrialResult", "get_executor", "get_sampler", "resume_config", "run_sweep", "space_from_args",
    "space_from_mapping", "start_sweep",
]
