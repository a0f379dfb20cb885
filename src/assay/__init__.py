"""assay: hypothesis-driven ML experiments. In-script API (fast to import)."""

from assay.tracking import (
    Run,
    finish,
    init,
    log,
    log_artifact,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_values,
    params,
    set_tag,
)

__version__ = "0.1.0"

__all__ = [
    "Run",
    "__version__",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_values",
    "params",
    "set_tag",
]
