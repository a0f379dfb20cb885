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

# Pipeline steps and the front door (assay.api), loaded on first use so that `import assay` in a
# training script stays light. `assay.run` runs an experiment; `assay.Run` is the in-script tracker.
_LAZY = {"gate": "assay.gates", "best": "assay.gates", "GateFailed": "assay.errors",
         **{name: "assay.api" for name in ("run", "runs", "show", "compare", "verdict", "sweep", "new_experiment",
                                            "report")}}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'assay' has no attribute {name!r}")


__all__ = [
    "GateFailed",
    "Run",
    "__version__",
    "best",
    "compare",
    "finish",
    "gate",
    "init",
    "log",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_values",
    "new_experiment",
    "params",
    "report",
    "run",
    "runs",
    "set_tag",
    "show",
    "sweep",
    "verdict",
]
