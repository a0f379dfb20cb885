"""A loop's settings and progress, in experiments/NAME/loops/TAG/state.json (written atomically).

The settings are also kept in git, as a blob under refs/assay/TAG/settings; the progress is
rebuilt from git refs, results.tsv and the run folders (`loop resume`). So a deleted state.json
loses nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assay.config import write_atomic
from assay.errors import GitError
from assay.lab import Lab


@dataclass
class LoopState:
    tag: str
    experiment: str
    editable: list[str]  # repo-relative paths the candidates may change
    protected: dict[str, str | None]  # repo-relative path -> sha256 at start
    decision: str = "noise-aware"
    repeats: int = 3  # baseline runs (seeds) for the noise estimate
    max_repeats: int = 4
    min_delta: float = 0.0
    confidence: float = 0.95
    lines_per_delta: float = 0.0
    timeout: str | None = None
    max_retries: int = 2
    origin_branch: str | None = None
    value: str = "last"  # which value of a run counts: its primary metric's last, or best
    best_commit: str | None = None
    best_values: list[float] = field(default_factory=list)
    best_runs: list[str] = field(default_factory=list)
    noise_groups: list[list[float]] = field(default_factory=list)
    sigma: float | None = None
    sigma_df: int = 0
    tried: dict[str, int] = field(default_factory=dict)  # normalized diff hash -> iteration
    seeds_used: dict[str, int] = field(default_factory=dict)  # editable files' content -> seed offsets run
    iteration: int = 0
    pending_crash: dict[str, Any] | None = None  # {"commit", "hash", "attempts", "description"}
    counts: dict[str, int] = field(default_factory=lambda: {"keep": 0, "discard": 0, "crash": 0})
    outputs: list[str] = field(default_factory=list)  # untracked files the runs wrote (not a proposer's)
    looks: int = 0  # runs whose validation value the loop read, to decide or to re-measure (baseline included)
    looks_lower_bound: bool = False  # rebuilt after run folders were deleted: at least this many
    confirms: int = 0  # `loop confirm` attempts: each one used the held-out split (confirms.jsonl)
    stopped: str | None = None  # why the last `loop run` stopped (a budget, max cost, exhaustion)

    @property
    def branch(self) -> str:
        return f"assay/{self.tag}"


# What `loop start` decides, as opposed to progress: the part of the state git must remember.
SETTINGS = ("tag", "experiment", "editable", "protected", "decision", "repeats", "max_repeats", "min_delta",
            "confidence", "lines_per_delta", "timeout", "max_retries", "origin_branch", "value")


def settings_ref(tag: str) -> str:
    return f"refs/assay/{tag}/settings"


def state_dir(lab: Lab, experiment: str, tag: str) -> Path:
    return lab.experiment_dir(experiment) / "loops" / tag


def save(lab: Lab, state: LoopState) -> None:
    d = state_dir(lab, state.experiment, state.tag)
    d.mkdir(parents=True, exist_ok=True)
    write_atomic(d / "state.json", json.dumps(asdict(state), indent=1))


def load(lab: Lab, experiment: str, tag: str) -> LoopState:
    f = state_dir(lab, experiment, tag) / "state.json"
    if not f.is_file():
        raise GitError(f"No loop '{tag}' in experiment '{experiment}' ({f} is missing)",
                       f"Start it: assay loop start {experiment} --tag {tag} --edit train.py")
    return LoopState(**json.loads(f.read_text()))


def find_by_tag(lab: Lab, tag: str, recover: bool = False) -> LoopState:
    """The loop's state; with `recover`, a missing state.json is recreated from the settings in git
    (its progress then comes from `loop resume`)."""
    hits = sorted(lab.experiments_dir.glob(f"*/loops/{tag}/state.json"))
    if hits:
        return load(lab, hits[0].parent.parent.parent.name, tag)
    settings = _settings_from_git(lab, tag)
    if settings is None:
        raise GitError(f"No loop with tag '{tag}' in this lab",
                       "Start one: assay loop start NAME --tag TAG --edit train.py --protect prepare.py")
    if not recover:
        raise GitError(f"Loop '{tag}' has lost its state.json", f"Rebuild it from git: assay loop resume {tag}")
    st = LoopState(**settings)
    save(lab, st)
    return st


def _settings_from_git(lab: Lab, tag: str) -> dict[str, Any] | None:
    from assay.gitops import read_blob

    text = read_blob(lab.root, settings_ref(tag))
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return {k: data[k] for k in SETTINGS if k in data} if isinstance(data, dict) else None


@contextmanager
def locked(lab: Lab, st: LoopState) -> Iterator[None]:
    """Hold the loop's lock (flock on loops/TAG/lock) for one try, resume or drop.

    The kernel drops the lock when its process dies, so a killed `assay try` never leaves a
    stale lock behind; a second command while one runs is refused instead of corrupting the loop.
    """
    import fcntl

    d = state_dir(lab, st.experiment, st.tag)
    d.mkdir(parents=True, exist_ok=True)
    with (d / "lock").open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise GitError(f"Another assay command is working on loop '{st.tag}' (pid {holder})",
                           f"Wait for it to finish; if it is stuck: kill {holder}, then assay loop resume {st.tag}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
