"""What a parallel loop (`loop run --parallel N`, loop/parallel.py) has in flight, and what a
killed one leaves behind: candidate worktrees under the lab's state folder, candidate refs under
refs/assay/TAG/cand/, and its in-flight record. `loop status` reads it; `loop resume` cleans up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay.gitops import Repo
from assay.lab import Lab
from assay.loop.state import LoopState, state_dir
from assay.store.records import process_start_time


def worktrees_dir(lab: Lab, tag: str) -> Path:
    """Where a parallel loop's candidate worktrees live: inside the lab's state folder (.assay/,
    ignored by git), so they never show up as changes of the main work tree."""
    return lab.state_dir / "loop" / tag / "wt"


def cand_prefix(tag: str) -> str:
    return f"refs/assay/{tag}/cand/"


def inflight_path(lab: Lab, st: LoopState) -> Path:
    return state_dir(lab, st.experiment, st.tag) / "inflight.json"


def in_flight(lab: Lab, st: LoopState) -> dict[str, Any]:
    """What a running parallel loop is evaluating: `candidates` (empty when none runs) and
    `leftovers`, worktrees an interrupted one left behind (`loop resume` removes them)."""
    try:
        data = json.loads(inflight_path(lab, st).read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    pid = data.get("pid")
    alive = isinstance(pid, int) and process_start_time(pid) is not None and _same_start(process_start_time(pid), data.get("pid_started"))
    if alive and _zombie(pid):
        alive = False
    leftovers = [] if alive else sorted(str(p) for p in _worktree_paths(lab, st.tag))
    return {"pid": pid if alive else None, "slots": data.get("slots") if alive else None,
            "candidates": data.get("candidates", []) if alive else [], "leftovers": leftovers}


def _same_start(now: float | None, recorded: Any) -> bool:
    return now is not None and isinstance(recorded, (int, float)) and abs(now - recorded) < 2.0


def _zombie(pid: int) -> bool:
    """A killed process not yet reaped by its parent still has a start time; it runs nothing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _worktree_paths(lab: Lab, tag: str) -> list[Path]:
    base = worktrees_dir(lab, tag)
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def leftovers(lab: Lab, repo: Repo, tag: str) -> list[str]:
    base = worktrees_dir(lab, tag).resolve()
    known = [p for p in repo.worktrees() if p.resolve().is_relative_to(base)]
    return sorted({*map(str, known), *map(str, _worktree_paths(lab, tag))}) + repo.refs(cand_prefix(tag))


def cleanup(lab: Lab, st: LoopState, repo: Repo) -> list[str]:
    """After a killed parallel loop (called by `loop resume` under the loop's lock): remove its
    candidate worktrees (`git worktree remove --force`, then prune), delete its candidate refs,
    its in-flight record, and finish a keep whose row was written but whose branch did not move.
    Touches nothing else: other worktrees, branches and refs stay. Returns notes for the user."""
    notes: list[str] = []
    base = worktrees_dir(lab, st.tag).resolve()
    gone = [p for p in repo.worktrees() if p.resolve().is_relative_to(base)]
    gone += [p for p in _worktree_paths(lab, st.tag) if p not in gone]
    for path in gone:
        repo.remove_worktree(path)
    if gone:
        repo.git("worktree", "prune")
        notes.append(f"removed {len(gone)} candidate worktree(s) of an interrupted parallel run (their tries stay under refs/assay/{st.tag}/tried/)")
    refs = repo.refs(cand_prefix(st.tag))
    for ref in refs:
        repo.delete_ref(ref)
    if refs:
        notes.append(f"deleted {len(refs)} candidate ref(s) under {cand_prefix(st.tag)}")
    inflight_path(lab, st).unlink(missing_ok=True)
    return notes


def finish_keep(repo: Repo, st: LoopState, keep: tuple[str, ...]) -> str | None:
    """A parallel keep writes its row, then moves the branch forward to the kept commit; killed in
    between, the branch is behind the best: move it (only forward). A note, or None."""
    tip = repo.head()
    if st.best_commit is None or tip == st.best_commit:
        return None
    if repo.git("rev-list", "--count", f"{st.best_commit}..{tip}").strip() != "0":  # not behind the best: not ours
        return None
    repo.reset_branch(st.branch, st.best_commit, hard=True, keep=keep)
    return f"moved {st.branch} forward to the kept {st.best_commit[:8]} (interrupted after its decision)"


