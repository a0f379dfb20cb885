"""The loop's Python front door: `assay.loop.start`, `try_`, `run`, `status`, `resume`, `log`,
`confirm`, `drop`, `prompt`, `plot`.

Each takes keyword-only options (and `lab`: a Lab or a folder, default: the lab around the working directory) and
returns a typed record whose `to_dict()` is what the CLI prints under `--json`.

    import assay.loop
    assay.loop.start("nanogpt", tag="nov23", edit=["train.py"], protect=["prepare.py"])
    out = assay.loop.run("nov23", parallel=2, agent="claude -p \"$ASSAY_PROMPT\"", max_iterations=10)
    print(out.stopped, assay.loop.status("nov23").best)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from assay.api import LabLike
    from assay.lab import Lab
    from assay.loop.confirmation import Confirmation
    from assay.loop.ratchet import Outcome


def _lab(lab: LabLike) -> Lab:
    from assay.api import find  # the front door's one rule: a Lab, a folder, else ASSAY_LAB's or the cwd's

    return find(lab)


@dataclass(frozen=True)
class LoopRun:
    """What `run` did: why it stopped, and one line per decision (or refusal), in decision order."""

    tag: str
    stopped: str
    lines: list[str] = field(default_factory=list)
    parallel: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoopStatus:
    """A loop's best so far, noise, counts, looks, and what a parallel run has in flight."""

    tag: str
    experiment: str
    branch: str
    metric: str
    goal: str
    value: str
    label: str
    decision: str
    best_commit: str | None
    best: float | None
    best_n: int
    sigma: float | None
    sigma_df: int
    iterations: int
    counts: dict[str, int]
    pending_crash: dict[str, Any] | None
    editable: list[str]
    protected: list[str]
    results: str
    last: list[dict[str, Any]]
    looks: int
    looks_lower_bound: bool
    confirms: int
    confirmation: dict[str, Any] | None
    in_flight: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Resumed:
    """What `resume` rebuilt or cleaned up (`notes`, one line each)."""

    tag: str
    best_commit: str | None
    iterations: int
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def start(name: str, *, tag: str, edit: Sequence[str], protect: Sequence[str] = (), decision: str = "noise-aware",
          repeats: int = 3, max_repeats: int = 4, min_delta: float = 0.0, confidence: float = 0.95,
          lines_per_delta: float = 0.0, timeout: str | None = None, max_retries: int = 2, value: str = "last",
          warn: Callable[[str], None] | None = None, lab: LabLike = None) -> Outcome:
    """Create branch assay/TAG from the checked-out commit and run the unmodified baseline.

    `warn` is told when the experiment declares no held-out `confirm:` split.

    Returns:
        The baseline's Outcome (`line()` for one line, `to_dict()` for JSON).
    Raises:
        GitError: not a git repo, uncommitted changes outside `edit`, the branch exists.
        ConfigError: unknown experiment, missing files, bad settings.
    """
    from assay.experiment import confirm_settings, load_experiment
    from assay.loop.ratchet import start as do_start

    lab = _lab(lab)
    if warn is not None and confirm_settings(load_experiment(lab, name)) is None:
        warn(f"experiment '{name}' declares no `confirm:` in experiment.yaml: every decision looks at the validation "
             "split and no held-out split can check the result (add e.g. `confirm: {params: {split: test}}`)")
    return do_start(lab, name, tag, list(edit), list(protect), decision=decision, repeats=repeats,
                    max_repeats=max_repeats, min_delta=min_delta, confidence=confidence, lines_per_delta=lines_per_delta,
                    timeout=timeout, max_retries=max_retries, value=value)


def try_(description: str, *, force: bool = False, retry: bool = False, lab: LabLike = None) -> Outcome:
    """Commit the edits in the work tree, run them, keep or reset (`assay try`).

    Raises:
        GitError: a guard refused the edits (see docs/loop.md, Try).
    """
    from assay.loop.ratchet import try_candidate

    return try_candidate(_lab(lab), description, force, retry)


def run(tag: str, *, parallel: int = 1, agent: str | None = None, propose: str | None = None,
        params: Sequence[str] | None = None, space: Sequence[str] | None = None, max_iterations: int | None = 20,
        max_time: str | None = None, plateau: int | None = 10, max_crashes: int | None = 5, agent_timeout: str = "30m",
        cost_per_hour: float | None = None, max_cost: str | float | None = None, executor: str = "local",
        address: str | None = None, yes: bool = False, ask: Callable[[str], bool] | None = None,
        say: Callable[[str], None] | None = None, lab: LabLike = None) -> LoopRun:
    """Let an agent command (`agent`) or a built-in proposer (`propose="params"`) drive the loop
    within budgets; with `parallel=N`, up to N candidates at once, each in its own worktree, their
    runs on this machine's slots (`executor="local"`) or on Ray (`executor="ray"`, a cluster at
    `address`, else a local Ray instance; the workers need not share the lab's disk).

    `say` gets each decision's line as it is taken (they are also in the result). `max_cost` is a
    limit in assay.cost's units ('$20', '10gpu-h', '5cpu-h'). When the lab sets `approve_above`
    and the loop's estimate is above it, `yes=True` approves, else `ask(question)` decides (None:
    refuse with ConfigError, exit 2).

    Raises:
        ConfigError: both or neither of agent/propose, a bad space.
        PluginError: an unknown executor, or `address` with the local one.
        GitError: the loop's branch is not checked out, or another command holds the loop.
    """
    from assay.experiment import load_experiment
    from assay.loop.driver import Budget, approve_loop, record_stop, run_loop
    from assay.loop.proposers import make_proposer
    from assay.loop.state import find_by_tag

    lab = _lab(lab)
    st = find_by_tag(lab, tag)
    proposer = make_proposer(lab, st, load_experiment(lab, st.experiment).goal, agent, propose or (None if agent else "params"),
                             list(params) if params else None, agent_timeout, list(space) if space else None)
    budget = Budget(max_iterations, max_time, plateau, cost_per_hour, max_cost, max_crashes)
    lines: list[str] = []

    def tell(line: str) -> None:
        lines.append(line)
        if say is not None:
            say(line)

    if approved := approve_loop(lab, tag, budget, yes=yes, ask=ask):
        tell(approved)

    if parallel == 1 and executor == "local" and address is None:
        why = run_loop(lab, tag, proposer, budget, tell)
    else:
        from assay.loop.parallel import run_parallel

        why = run_parallel(lab, tag, proposer, budget, parallel, tell, executor, {"address": address} if address else None)
        record_stop(lab, tag, why)
    return LoopRun(tag, why, lines, parallel)


def status(tag: str | None = None, *, lab: LabLike = None) -> LoopStatus:
    """The loop's state (default: the loop whose branch is checked out)."""
    from assay.loop.ratchet import status as do_status

    return LoopStatus(**do_status(_lab(lab), tag))


def resume(tag: str, *, lab: LabLike = None) -> Resumed:
    """Rebuild the loop's progress from git and results.tsv after an interruption or a kill, and
    remove what a killed parallel run left (its worktrees, candidate refs and locks)."""
    from assay.loop.ratchet import resume as do_resume

    out = do_resume(_lab(lab), tag)
    return Resumed(tag, out["best_commit"], out["iterations"], out["notes"])


@dataclass(frozen=True)
class LoopLog:
    """results.tsv's rows of one loop (`assay loop log`), oldest first; `label` names the value column."""

    tag: str
    label: str
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Dropped:
    """The crashed candidate `drop` abandoned (None: there was none)."""

    tag: str
    dropped: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prompt:
    """The compact brief for whoever proposes the next change."""

    tag: str
    prompt: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoopPlot:
    """The progress figure and its data sidecar."""

    tag: str
    path: str
    sidecar: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def log(tag: str | None = None, *, last: int = 20, lab: LabLike = None) -> LoopLog:
    """The last `last` rows (0: all) of results.tsv for the loop (default: the checked-out one)."""
    from pathlib import Path

    from assay.loop import results
    from assay.loop.ratchet import status as do_status

    s = do_status(_lab(lab), tag)
    rows = [r for r in results.read(Path(s["results"])) if r.tag == s["tag"]]
    return LoopLog(s["tag"], s["label"], [r.to_dict() for r in (rows[-last:] if last else rows)])


def confirm(tag: str, *, force: bool = False, lab: LabLike = None) -> Confirmation:
    """Run the baseline and the best on the held-out split (`confirm:`), once (`assay loop confirm`)."""
    from assay.loop.confirmation import confirm as do_confirm

    return do_confirm(_lab(lab), tag, force)


def drop(tag: str, *, lab: LabLike = None) -> Dropped:
    """Abandon the crashed candidate (its diff stays under refs/assay/TAG/tried/)."""
    from assay.loop.ratchet import drop as do_drop

    return Dropped(tag, do_drop(_lab(lab), tag))


def prompt(tag: str | None = None, *, last: int = 10, lab: LabLike = None) -> Prompt:
    """The brief an agent gets: goal, rules, best so far and the last `last` results."""
    from assay.loop.brief import brief
    from assay.loop.ratchet import current
    from assay.loop.state import find_by_tag

    the_lab = _lab(lab)
    st = find_by_tag(the_lab, tag) if tag else current(the_lab)[0]
    return Prompt(st.tag, brief(the_lab, st, last))


def plot(tag: str | None = None, *, lab: LabLike = None) -> LoopPlot:
    """Draw the progress plot from results.tsv (kept green and labelled, discarded grey, crashes red)."""
    from assay.loop.progress import progress_plot
    from assay.loop.ratchet import current
    from assay.loop.state import find_by_tag

    the_lab = _lab(lab)
    st = find_by_tag(the_lab, tag) if tag else current(the_lab)[0]
    path: Path = progress_plot(the_lab, st)
    return LoopPlot(st.tag, str(path), str(path.with_suffix(".json")))
