"""The autonomous loop: a keep-or-discard ratchet over git commits on branch `assay/<tag>`.

Its Python API (`start`, `try_`, `run`, `status`, `resume`, `log`, `confirm`, `drop`, `prompt`,
`plot`) lives in assay.loop.api and loads on
first use, so that importing the package stays light.
"""

_API = ("start", "try_", "run", "status", "resume", "log", "confirm", "drop", "prompt", "plot",
        "LoopRun", "LoopStatus", "Resumed", "LoopLog", "Dropped", "Prompt", "LoopPlot")


def __getattr__(name: str) -> object:
    if name in _API:
        from assay.loop import api

        return getattr(api, name)
    raise AttributeError(f"module 'assay.loop' has no attribute {name!r}")


__all__ = list(_API)
