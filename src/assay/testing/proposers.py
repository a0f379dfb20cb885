"""The proposer conformance suite: what `assay loop run` relies on from every `Proposer`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.lab import Lab
from assay.loop.proposers import Exhausted, Proposer, ProposerOptions
from assay.loop.state import LoopState, state_dir

ProposerFactory = Callable[[ProposerOptions], Proposer]  # as `assay.proposers` entry points are called

OUTCOMES: list[tuple[str, float | None]] = [("keep", 1.2), ("discard", 1.5), ("crash", None), ("dropped", None), ("refused", None)]


def check_proposer(factory: ProposerFactory, lab: Lab, state: LoopState, *, goal: str = "min", **options: Any) -> None:
    """Check a proposer factory against the `Proposer` protocol, in a real lab.

    Each call of propose() must change something, only in the loop's editable files (never a
    protected one, nor anything else in the lab), and describe it in one line (or return None);
    observe() must accept every outcome the loop reports.

    Args:
        factory: called with ProposerOptions(lab, state, goal, **options), as `assay.proposers`
            entry points are.
        lab: a lab holding the loop's experiment; `state.editable` and `state.protected` are paths
            relative to `lab.root`.
        options: the other ProposerOptions fields (command, keys, timeout, space).

    Raises:
        AssertionError: the first broken promise, with the files or text that broke it.
    """
    proposer = factory(ProposerOptions(lab, state, goal, **options))
    _check(callable(getattr(proposer, "propose", None)) and callable(getattr(proposer, "observe", None)),
           f"{proposer!r} lacks propose() or observe(): not a Proposer")
    editable = set(state.editable)
    for outcome, value in OUTCOMES:
        before = snapshot(lab, state)
        desc = proposer.propose("# brief\nminimize the metric", state)
        after = snapshot(lab, state)
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        _check(bool(changed), "propose() changed no file")
        _check(changed <= editable, f"propose() changed {sorted(changed - editable)}, outside the editable {sorted(editable)}")
        _check(desc is None or (isinstance(desc, str) and bool(desc.strip()) and "\n" not in desc),
               f"propose() described its change as {desc!r}: expected one line of text, or None")
        proposer.observe(desc or "a change", outcome, value)


def check_exhaustion(factory: ProposerFactory, lab: Lab, state: LoopState, *, limit: int = 50, goal: str = "min",
                     **options: Any) -> int:
    """A proposer over a finite set of ideas (options such as a small `space`) must stop with
    `Exhausted` (a ConfigError, so the loop ends with its message) within `limit` proposals, and
    never propose the same change twice before. Returns how many it proposed.

    Raises:
        AssertionError: it went on past `limit`, or repeated a change.
    """
    proposer = factory(ProposerOptions(lab, state, goal, **options))
    seen: set[str] = set()
    for n in range(limit):
        try:
            desc = proposer.propose("brief", state)
        except Exhausted:
            return n
        change = snapshot(lab, state)
        key = repr(sorted((p, change[p]) for p in state.editable if p in change))
        _check(key not in seen, f"proposal {n + 1} ({desc!r}) repeats an earlier one")
        seen.add(key)
        proposer.observe(desc or "a change", "discard", 1.0 + n)
    raise AssertionError(f"no Exhausted after {limit} proposals")


def snapshot(lab: Lab, state: LoopState) -> dict[str, bytes]:
    """Every file of the lab (lab-relative path -> bytes), less git's and the loop's own records."""
    own = state_dir(lab, state.experiment, state.tag)
    return {p.relative_to(lab.root).as_posix(): p.read_bytes() for p in lab.root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(lab.root).parts and not _under(p, own)}


def _under(path: Path, folder: Path) -> bool:
    return path.is_relative_to(folder)


def _check(ok: bool, message: str) -> None:
    if not ok:  # not `assert`: the checks must hold under python -O too
        raise AssertionError(message)
