"""`assay loop run`: propose, try, decide, repeat, within budgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from assay.config import parse_duration
from assay.errors import GitError, RunError, StoreError
from assay.gitops import Repo, diff_hash
from assay.lab import Lab
from assay.loop.brief import brief
from assay.loop.decisions import Decision
from assay.loop.proposers import Exhausted, Proposer
from assay.loop.ratchet import Outcome, set_aside, try_candidate
from assay.loop.state import LoopState, find_by_tag, locked, save


@dataclass(frozen=True)
class Budget:
    max_iterations: int | None = 20
    max_time: str | None = None
    plateau: int | None = 10  # stop after this many consecutive measured tries without a keep
    cost_per_hour: float | None = None  # of run time (e.g. a GPU's price)
    max_cost: float | None = None
    max_crashes: int | None = 5  # stop after this many consecutive crashes (they do not count towards plateau)


def run_loop(lab: Lab, tag: str, proposer: Proposer, budget: Budget, say: Callable[[str], None]) -> str:
    """Iterate until a budget runs out; returns why it stopped. Refused proposals are saved as
    patches under loops/TAG/ and cleared, so the next iteration starts from the best commit.

    A crash measures nothing about the idea, so it is accounted apart: it does not use up the
    plateau budget (tries measured and not kept), and `max_crashes` crashes in a row stop the loop."""
    st = find_by_tag(lab, tag)
    repo = Repo(lab.experiment_dir(st.experiment))
    if repo.branch() != st.branch:
        raise GitError(f"Loop {tag} runs on {st.branch}, but {repo.branch()} is checked out", f"git checkout {st.branch}")
    deadline = time.monotonic() + (parse_duration(budget.max_time) or float("inf"))
    non_keeps = iterations = crashes = 0
    last_crash = ""
    run_seconds = 0.0
    while True:
        if budget.max_iterations is not None and iterations >= budget.max_iterations:
            return f"max iterations ({budget.max_iterations})"
        if time.monotonic() >= deadline:
            return f"max time ({budget.max_time})"
        if budget.plateau is not None and non_keeps >= budget.plateau:
            return f"plateau: {non_keeps} tries without a keep"
        if budget.max_crashes is not None and crashes >= budget.max_crashes:
            return (f"max crashes: {crashes} crashes in a row (last: {last_crash[:200]}); fix what makes the runs crash, "
                    f"or allow more with --max-crashes")
        if budget.cost_per_hour and budget.max_cost is not None and run_seconds / 3600 * budget.cost_per_hour >= budget.max_cost:
            return f"max cost ({budget.max_cost})"
        st = find_by_tag(lab, tag)
        try:
            description = proposer.propose(brief(lab, st), st)
        except Exhausted as exc:
            return f"search space exhausted: {exc.message}"
        iterations += 1
        retry = _is_retry(lab, st, repo)
        try:
            out: Outcome = try_candidate(lab, description or "(no description)", retry=retry)
        except GitError as exc:  # a guard refused the proposal: keep it as a patch, start clean
            patch = set_aside(lab, tag, f"refused-{st.iteration + 1}")
            say(f"refused  {description}: {exc.message} (saved {patch.name})")
            proposer.observe(description or "", Decision.REFUSED, None)
            non_keeps += 1
            continue
        say(out.line())
        run_seconds += _seconds(lab, out)
        proposer.observe(out.description, out.decision, out.value)
        if out.decision in (Decision.CRASH, Decision.DROPPED):
            crashes, last_crash = crashes + 1, out.reason
            continue
        crashes = 0
        non_keeps = 0 if out.decision == Decision.KEEP else non_keeps + 1


def _is_retry(lab: Lab, st: LoopState, repo: Repo) -> bool:
    """Whether a proposal made while a crash is pending retries the crashed idea: only when its
    diff is the crashed one. Any other proposal is a new idea: the crash stays in results.tsv, is
    closed, and does not count the new idea's crashes towards the crashed one's --max-retries."""
    pend = st.pending_crash
    if not pend or st.best_commit is None:
        return False
    if diff_hash(repo.diff(st.best_commit, st.editable)) == pend["hash"]:
        return True
    with locked(lab, st):
        fresh = find_by_tag(lab, st.tag)
        if fresh.pending_crash == pend:
            fresh.pending_crash = None
            save(lab, fresh)
    return False


def _seconds(lab: Lab, out: Outcome) -> float:
    from assay.store.query import show_run

    total = 0.0
    for rid in out.runs:
        try:
            total += float(show_run(lab, rid).get("duration") or 0)
        except (RunError, StoreError):  # a missing or torn record only makes the cost estimate low
            continue
    return total
