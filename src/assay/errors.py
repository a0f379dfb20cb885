"""Every error assay raises on purpose.

    AssayError              message + hint (the fix, ideally as a command)
    ├── ConfigError         assay.toml, experiment.yaml, config.yaml, key=value overrides
    ├── RunError            launching a run, missing entry points
    │   └── UnknownRunError a run reference that names no run, or several
    ├── StoreError          run records and the SQLite index
    ├── GitError            git state that assay refuses to work with
    ├── GateFailed          a pipeline gate (`assay gate`) that does not hold
    └── PluginError         unknown executor/sampler/decision/proposer names

Library code raises these; only the CLI prints them (one or two lines) and exits with the error's
`exit_code` (the contract in README's "Exit codes" table: 1 a run or store problem, 2 usage or
configuration, 130 interrupted).
Foreign exceptions (yaml, tomllib, sqlite3, OSError) are translated where they enter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class AssayError(Exception):
    """Base class: `message` says what is wrong, `hint` how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  {self.hint}"


class ConfigError(AssayError):
    """A configuration file or a command-line override is wrong (exit 2: usage or configuration)."""

    exit_code = 2


class RunError(AssayError):
    """A run could not be launched or found."""


class UnknownRunError(RunError):
    """A run reference names no run, or several (exit 2: a usage error)."""

    exit_code = 2


class StoreError(AssayError):
    """A run record or the index is unreadable or from a newer assay."""


class GitError(AssayError):
    """The git repository is not in a state assay will touch."""


class GateFailed(AssayError):
    """A gate's criterion fails on the gated run, or its interval over seeds straddles the threshold
    (exit 1, as a run that did not end ok). `result` is the GateResult that says which."""

    def __init__(self, message: str, hint: str | None = None, *, result: Any = None) -> None:
        super().__init__(message, hint)
        self.result = result


class PluginError(AssayError):
    """A plug-in name is unknown or a plug-in misbehaved (exit 2: a configuration error)."""

    exit_code = 2


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest known word, or '' when nothing is close."""
    import difflib

    words = sorted(known)
    close = difflib.get_close_matches(word, words, n=1, cutoff=0.6)
    if not close:  # 'lr_max' -> 'lr', 'val' -> 'val_f1': a shared prefix is a good guess too
        close = [w for w in words if len(w) >= 2 and (word.startswith(w) or w.startswith(word))][:1]
    return f" Did you mean '{close[0]}'?" if close else ""
