"""`assay loop run`: propose, try, decide, repeat, within budgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from assay.config import parse_duration
from assay.cost import Limit, Prices, Spend, format_amount, mean_run, priced_limit, total, would_exceed
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
    cost_per_hour: float | None = None  # of run time (e.g. a GPU's price), on top of assay.toml's prices
    max_cost: str | float | None = None  # '$20', '10gpu-h', '5cpu-h', or a number (assay.cost.parse_limit)
    max_crashes: int | None = 5  # stop after this many consecutive crashes (they do not count towards plateau)


def run_loop(lab: Lab, tag: str, proposer: Proposer, budget: Budget, say: Callable[[str], None]) -> str:
    """Iterate until a budget runs out; returns why it stopped, also kept as `stopped` in the
    loop's state.json. Refused proposals are saved as patches under loops/TAG/ and cleared, so the
    next iteration starts from the best commit.

    `max_cost` counts what this call's runs cost in the ledger (assay.cost): no try starts when
    what is spent plus a try's mean cost so far could exceed it."""
    why = _iterate(lab, tag, proposer, budget, say)
    record_stop(lab, tag, why)
    return why


def record_stop(lab: Lab, tag: str, why: str) -> None:
    """Keep why `loop run` stopped in the loop's state.json (shown by `loop status`)."""
    st = find_by_tag(lab, tag)
    with locked(lab, st):
        st = find_by_tag(lab, tag)
        st.stopped = why
        save(lab, st)


def _iterate(lab: Lab, tag: str, proposer: Proposer, budget: Budget, say: Callable[[str], None]) -> str:
    """run_loop's iterations.

    A crash measures nothing about the idea, so it is accounted apart: it does not use up the
    plateau budget (tries measured and not kept), and `max_crashes` crashes in a row stop the loop."""
    st = find_by_tag(lab, tag)
    repo = Repo(lab.experiment_dir(st.experiment))
    if repo.branch() != st.branch:
        raise GitError(f"Loop {tag} runs on {st.branch}, but {repo.branch()} is checked out", f"git checkout {st.branch}")
    deadline = time.monotonic() + (parse_duration(budget.max_time) or float("inf"))
    non_keeps = iterations = crashes = 0
    last_crash = ""
    prices, limit = cost_limit(lab, budget)
    spent = Spend()
    tries: list[Spend] = []
    while True:
        if why := stop_reason(budget, tries=iterations, deadline=deadline, non_keeps=non_keeps, crashes=crashes,
                              last_crash=last_crash, spent=spent, each=mean_run(tries), in_flight=0, prices=prices, limit=limit):
            return why
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
        tries.append(_spend(lab, out))
        spent = spent + tries[-1]
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


def stop_reason(budget: Budget, *, tries: int, deadline: float, non_keeps: int, crashes: int, last_crash: str = "",
                spent: Spend, each: Spend | None, in_flight: int, prices: Prices, limit: Limit | None) -> str | None:
    """Why the loop must start no more tries (None: it may), for the one-at-a-time and the parallel loop.

    `tries` counts tries started, `each` is a try's mean cost so far and `in_flight` the tries
    running now (their cost is expected on top of what is spent)."""
    if budget.max_iterations is not None and tries >= budget.max_iterations:
        return f"max iterations ({budget.max_iterations})"
    if time.monotonic() >= deadline:
        return f"max time ({budget.max_time})"
    if budget.plateau is not None and non_keeps >= budget.plateau:
        return f"plateau: {non_keeps} tries without a keep"
    if budget.max_crashes is not None and crashes >= budget.max_crashes:
        last = f" (last: {last_crash[:200]})" if last_crash else ""
        return f"max crashes: {crashes} crashes in a row{last}; fix what makes the runs crash, or allow more with --max-crashes"
    if limit is not None and would_exceed(limit, spent, each, in_flight, prices):
        return (f"max cost: {format_amount(spent.amount(limit.unit, prices), limit.unit, prices)} spent of "
                f"{limit.describe(prices)} (a try costs ~{format_amount((each or spent).amount(limit.unit, prices), limit.unit, prices)})")
    return None


def cost_limit(lab: Lab, budget: Budget) -> tuple[Prices, Limit | None]:
    """The prices (assay.toml's, plus --cost-per-hour per run-hour) and the --max-cost limit."""
    return priced_limit(lab, budget.max_cost, budget.cost_per_hour)


def _spend(lab: Lab, out: Outcome) -> Spend:
    """What one try's runs used, as one entry (its runs summed)."""
    from assay.store.query import show_run

    records = []
    for rid in out.runs:
        try:
            records.append(show_run(lab, rid))
        except (RunError, StoreError):  # a missing or torn record only makes the spend look low
            continue
    one = total(records)
    return Spend(1, one.cpu_hours, one.gpu_hours, one.wall_hours)


def approve_loop(lab: Lab, tag: str, budget: Budget, *, yes: bool, ask: Callable[[str], bool] | None) -> str | None:
    """The approval gate before `loop run` (assay.cost.approve): max_iterations tries of the loop's
    runs per try so far (before any: 1 for the greedy rule, else its baseline repeats).

    Raises:
        ConfigError: not approved (exit 2).
    """
    from assay.cost import approve, estimate, visible_gpus
    from assay.experiment import load_experiment
    from assay.sweep.executors import gpu_ids

    if lab.settings.get("approve_above") is None:
        return None
    cost_limit(lab, budget)  # an unreadable --max-cost fails first
    st = find_by_tag(lab, tag)
    per_try = st.looks / st.iteration if st.iteration and st.looks else (1 if st.decision == "greedy" else st.repeats)
    import os

    gpus = visible_gpus(os.environ)
    est = None
    if budget.max_iterations is not None:
        est = estimate(lab, load_experiment(lab, st.experiment), max(1, round(budget.max_iterations * per_try)),
                       len(gpu_ids()) if gpus is None else gpus)
    return approve(lab, est, what=f"Loop {tag} ({budget.max_iterations or 'unbounded'} tries)", yes=yes, ask=ask,
                   rerun=f"assay loop run {tag} ...")
