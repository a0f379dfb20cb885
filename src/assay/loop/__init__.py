"""The autonomous loop: a keep-or-discard ratchet over git commits on branch `assay/<tag>`.

Its Python API (`start`, `try_`, `run`, `status`, `resume`, `log`, `confirm`, `drop`, `prompt`,
`plot`) lives in assay.loop.api and loads on
first use, so that importing the package stays light.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real names for type checkers; at run time __getattr__ loads them on first use
    from assay.loop.api import (
        Dropped,
        LoopLog,
        LoopPlot,
        LoopRun,
        LoopStatus,
        Prompt,
        Resumed,
        confirm,
        drop,
        log,
        plot,
        prompt,
        resume,
        run,
        start,
        status,
        try_,
    )

__all__ = ["start", "try_", "run", "status", "resume", "log", "confirm", "drop", "prompt", "plot",
           "LoopRun", "LoopStatus", "Resumed", "LoopLog", "Dropped", "Prompt", "LoopPlot"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from assay.loop import api

        return getattr(api, name)
    raise AttributeError(f"module 'assay.loop' has no attribute {name!r}")

