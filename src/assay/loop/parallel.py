"""`assay loop run TAG --parallel N`: up to N candidates at once, each in its own git worktree.

Each candidate starts from the best commit of that moment, in a worktree under the lab's
`.assay/loop/TAG/wt/K` (detached HEAD, tracked by the ref `refs/assay/TAG/cand/K`). Its proposal is
made there (an agent process runs with the worktree as its working directory), committed there,
and measured through an executor: the local slot pool (one GPU per slot where there are GPUs), or
Ray, whose workers get the worktree's code as a snapshot (its commit, as a git bundle) and send the
run's files back; either way its run folders land in the lab's experiments/NAME/runs/ like any
other run.

Decisions are taken one at a time, in the order candidates finish, by this process alone:
a candidate is judged against the best at the time it started. If the best moved since, a
candidate that would be kept is cherry-picked onto the new best and measured again from scratch
against it; it is kept only if it wins again (else discarded: conflict, or no longer better).
results.tsv gets one row per candidate, in decision order, written before the branch moves.

loops/TAG/inflight.json says what is in flight (`loop status`); after a kill, `loop resume`
removes the worktrees and candidate refs (`cleanup`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.config import parse_duration, write_atomic
from assay.cost import Spend, mean_run, priced_limit, spend_of
from assay.errors import ConfigError, GitError, RunError
from assay.experiment import Experiment, load_experiment
from assay.gitops import Repo, diff_hash, diff_size, file_hash
from assay.lab import Lab
from assay.loop import guards, results
from assay.loop.brief import brief
from assay.loop.decisions import Decided, Decision, Evidence, Settings, make_decision, pooled_sigma
from assay.loop.inflight import cand_prefix, inflight_path, leftovers, worktrees_dir
from assay.loop.proposers import AgentCommand, Exhausted, ParamsProposer, Proposer
from assay.loop.ratchet import Outcome, _code_key, _outside, _own_files, _refuse_run, _results_path, _row, run_value
from assay.loop.state import find_by_tag, locked, save, state_dir
from assay.runner.launch import RunResult, RunSpec
from assay.store.records import process_start_time, slug

if TYPE_CHECKING:
    from assay.loop.driver import Budget


@dataclass
class Candidate:
    """One idea being evaluated in its worktree; mutated by its own thread, then by the decider."""

    k: int
    base: str  # the best commit when it started (or when it was last rebased)
    base_values: list[float]  # what it is judged against
    root: Path  # the worktree
    exp: Experiment  # the experiment as checked out in the worktree
    started: float = field(default_factory=time.time)
    phase: str = "proposing"  # proposing | running | re-measuring
    description: str = ""
    commit: str | None = None
    iteration: int = 0
    added: int = 0
    removed: int = 0
    runs: list[RunResult] = field(default_factory=list)  # this measurement's runs
    earlier: list[RunResult] = field(default_factory=list)  # runs on the commit before a rebase
    values: list[float] = field(default_factory=list)
    fresh: list[float] = field(default_factory=list)
    decided: Decided | None = None
    crash: str | None = None
    refused: str | None = None
    rebased_from: str | None = None  # the best it was first judged against, once rebased
    pending: Any = None  # the params proposer's point and Optuna trial for this proposal
    exhausted: str | None = None  # the params proposer found nothing new to propose

    def to_dict(self, tag: str) -> dict[str, Any]:
        return {"k": self.k, "phase": self.phase, "description": self.description, "base": self.base,
                "commit": self.commit, "iteration": self.iteration or None, "worktree": str(self.root),
                "ref": f"{cand_prefix(tag)}{self.k}", "started": self.started, "runs": len(self.earlier) + len(self.runs)}


class ParallelLoop:
    """The driver of `loop run --parallel N` (see the module docstring)."""

    def __init__(self, lab: Lab, tag: str, proposer: Proposer, budget: Budget, slots: int,
                 say: Callable[[str], None], executor: str = "local", executor_options: dict[str, Any] | None = None) -> None:
        if slots < 1:
            raise ConfigError(f"--parallel must be 1 or more, got {slots}", "e.g. --parallel 2")
        from assay.sweep.executors import executor_factory

        executor_factory(executor)  # an unknown name fails here, listing the known ones
        if not isinstance(proposer, (AgentCommand, ParamsProposer)):
            raise ConfigError(f"The parallel loop runs --agent CMD or --propose params, not {type(proposer).__name__}",
                              f"Run other proposers one candidate at a time: assay loop run {tag} --parallel 1")
        self.lab, self.tag, self.proposer, self.budget, self.slots, self.say = lab, tag, proposer, budget, slots, say
        self.executor, self.executor_options = executor, dict(executor_options or {})
        self.st = find_by_tag(lab, tag)
        self.repo = Repo(lab.experiment_dir(self.st.experiment))
        self.exp = load_experiment(lab, self.st.experiment)
        self.mu = threading.Lock()  # guards self.st and self.active between candidate threads
        # The proposer proposes and learns one candidate at a time (distinct proposals), in the
        # candidates' threads, so that a proposal overlaps the other candidates' runs.
        self.proposing = threading.Lock()
        self.active: dict[int, Candidate] = {}
        self.retired: list[Candidate] = []  # decided; their worktrees go once the next candidates started
        self.next_k = 1
        self.prices, self.limit = priced_limit(lab, budget.max_cost, budget.cost_per_hour)
        self.spent, self.spends = Spend(), list[Spend]()  # the ledger of this call's runs (assay.cost)

    # -- the driver ---------------------------------------------------------------------------
    def run(self) -> str:
        """Start candidates while budgets allow, decide each as it finishes; returns why it stopped."""
        st = self.st
        if self.repo.branch() != st.branch:
            raise GitError(f"Loop {self.tag} runs on {st.branch}, but {self.repo.branch()} is checked out", f"git checkout {st.branch}")
        if st.best_commit is None:
            raise RunError("The loop has no baseline yet", f"assay loop resume {self.tag}")
        with locked(self.lab, st):
            if left := leftovers(self.lab, self.repo, self.tag):
                raise GitError(f"Loop {self.tag} has {len(left)} candidate worktree(s) of an interrupted run: {guards.listing(left)}",
                               f"Clean them up first: assay loop resume {self.tag}")
            from assay.sweep.executors import get_executor

            # One trial per candidate at a time: as many executor slots as candidates in flight.
            self.pool = get_executor(self.executor, self.lab, self.slots, **self.executor_options)
            threads = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="assay-candidate")
            try:
                return self._drive(threads)
            finally:
                self.pool.shutdown(cancel=True)
                threads.shutdown(wait=True, cancel_futures=True)
                for cand in [*self.retired, *self.active.values()]:  # an error or an interrupt: leave nothing behind
                    self._finish(cand)
                inflight_path(self.lab, st).unlink(missing_ok=True)

    def _drive(self, threads: ThreadPoolExecutor) -> str:
        b = self.budget
        deadline = time.monotonic() + (parse_duration(b.max_time) or float("inf"))
        started = non_keeps = crashes = 0
        why: str | None = None
        futures: dict[Future[Candidate], Candidate] = {}
        while True:
            why = why or self._stop_reason(started, deadline, non_keeps, crashes)
            while why is None and len(futures) < self.slots:
                cand = self._start()
                started += 1
                futures[threads.submit(self._evaluate, cand)] = cand
                why = self._stop_reason(started, deadline, non_keeps, crashes)
            while self.retired:  # after the starts: a free slot does not wait for this cleanup
                self._finish(self.retired.pop())
            if not futures:
                return why or "nothing in flight"
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            for fut in done:
                cand = futures.pop(fut)
                fut.result()  # an error in the evaluation surfaces here, not silently
                if cand.exhausted is not None:
                    why = why or f"search space exhausted: {cand.exhausted}"
                    self._retire(cand)
                    continue
                decision = self._decide(cand)
                if decision is None:  # rebased onto a newer best: measured again there
                    futures[threads.submit(self._measure, cand)] = cand
                elif decision == Decision.CRASH:  # measures nothing about the idea: not a plateau step
                    crashes += 1
                elif decision == Decision.REFUSED:
                    non_keeps += 1
                else:
                    crashes = 0
                    non_keeps = 0 if decision == Decision.KEEP else non_keeps + 1

    def _stop_reason(self, started: int, deadline: float, non_keeps: int, crashes: int) -> str | None:
        from assay.loop.driver import stop_reason

        return stop_reason(self.budget, tries=started, deadline=deadline, non_keeps=non_keeps, crashes=crashes,
                           spent=self.spent, each=mean_run(self.spends), in_flight=len(self.active), prices=self.prices,
                           limit=self.limit)

    # -- one candidate ------------------------------------------------------------------------
    def _start(self) -> Candidate:
        """A worktree at the best commit (worktrees are added and removed by this thread only:
        `git worktree prune` must not race an `add`); the proposal is made in the candidate's thread."""
        st, k = self.st, self.next_k
        self.next_k += 1
        root = worktrees_dir(self.lab, self.tag) / str(k)
        if root.exists():
            self.repo.remove_worktree(root)
        self.repo.add_worktree(root, st.best_commit or "HEAD")
        self.repo.save_ref(f"{cand_prefix(self.tag)}{k}", st.best_commit or "HEAD")
        exp_dir = root / self.repo.rel(self.exp.path)
        cand = Candidate(k, st.best_commit or "", list(st.best_values), root, self.exp.at(exp_dir))
        with self.mu:
            self.active[k] = cand
            self._write_inflight()
        return cand

    def _propose_params(self, cand: Candidate) -> str:
        """Under `proposing` (one proposal at a time, so they are distinct), from the best of now:
        the worktree moves to it if another candidate was kept since it was made."""
        from dataclasses import replace

        p = self.proposer
        assert isinstance(p, ParamsProposer)
        with self.proposing:
            with self.mu:
                best, best_values = self.st.best_commit, list(self.st.best_values)
                st = replace(self.st, best_commit=best)  # config.yaml is rewritten from this commit's copy
            if best and best != cand.base:
                Repo(cand.root).git("checkout", "-q", "--detach", best)
                self.repo.save_ref(f"{cand_prefix(self.tag)}{cand.k}", best)
                cand.base, cand.base_values = best, best_values
            main = p.config
            p.config = cand.root / self.repo.rel(main)
            try:
                desc = p.propose("", st) or "(no description)"
            finally:
                p.config = main
            cand.pending, p.pending, p.trial = (p.pending, p.trial), None, None
        return desc

    def _brief(self, cand: Candidate) -> str:
        with self.mu:
            others = [c for c in self.active.values() if c.k != cand.k]
            text = brief(self.lab, self.st)
        lines = ["", "## Parallel loop",
                 f"You work in your own copy of the repository ({cand.root}); edit the files there and exit.",
                 "assay commits, runs and judges your edits when you are done: do not run `assay try` or git yourself."]
        if others:
            lines += ["Ideas in flight now (others are trying them; pick a different one):"]
            lines += [f"- {c.description or '(being proposed)'}" for c in others]
        return text + "\n".join(lines) + "\n"

    def _evaluate(self, cand: Candidate) -> Candidate:
        """In the candidate's thread: propose, check, commit, measure."""
        st = self.st
        if isinstance(self.proposer, ParamsProposer):
            try:
                cand.description = self._propose_params(cand)
            except Exhausted as exc:
                cand.exhausted = exc.message
                return cand
        elif isinstance(self.proposer, AgentCommand):
            cwd = cand.root / self.repo.rel(self.lab.root) if self.lab.root != self.repo.root else cand.root
            cand.description = self.proposer.call(self._brief(cand), st, cwd, {
                "ASSAY_WORKTREE": str(cand.root), "ASSAY_EXPERIMENT_DIR": str(cand.exp.path)})
        try:
            self._commit(cand)
        except GitError as exc:
            cand.refused = exc.message
            return cand
        return self._measure(cand)

    def _commit(self, cand: Candidate) -> None:
        """The guards of `assay try`, in the worktree; then commit there. Raises GitError to refuse."""
        st = self.st
        wt = Repo(cand.root)
        guards.refuse_symlinks(wt.root, [*st.editable, *st.protected])
        for path, digest in st.protected.items():
            if file_hash(wt.root / path) != digest:
                raise GitError(f"Protected file {path} changed: the evaluation is fixed for the whole loop", "Revert it.")
        if outside := _outside(wt, cand.exp, st.editable, (), cand.base):
            raise GitError(f"Files outside the editable set changed: {guards.listing(outside)} (editable: {', '.join(st.editable)})",
                           "Move those edits into the editable files, or revert them.")
        diff = wt.diff(cand.base, st.editable)
        if not diff.strip():
            raise GitError("The diff is empty: nothing to try", "Edit " + ", ".join(st.editable) + " first.")
        h = diff_hash(diff)
        cand.added, cand.removed = diff_size(diff)
        with self.mu:
            if h in st.tried:
                raise GitError(f"This diff was already tried (iteration {st.tried[h]}); repeating it wastes a run", "Try a different idea.")
            st.iteration += 1
            cand.iteration = st.iteration
            st.tried[h] = cand.iteration
            save(self.lab, st)
        cand.commit = wt.commit_paths(st.editable, f"assay try {cand.iteration}: {cand.description}")
        self.repo.save_ref(f"refs/assay/{self.tag}/tried/{cand.iteration}", cand.commit)
        self.repo.save_ref(f"{cand_prefix(self.tag)}{cand.k}", cand.commit)

    def _measure(self, cand: Candidate) -> Candidate:
        """Selection runs until the rule decides (against `base_values`), then a keep's
        re-measurement on fresh seeds; the decision itself is the decider's."""
        st = self.st
        assert cand.commit is not None
        self._phase(cand, "running")
        with self.mu:
            decider = make_decision(st.decision, Settings(st.min_delta, st.confidence, st.max_repeats, st.lines_per_delta))
        desc = f"{cand.iteration}-{slug(cand.description)}"
        while not (crash := self._runs(cand, desc, 1, cand.runs)):
            cand.values = self._values(cand.runs)
            with self.mu:
                sigma, df = st.sigma, st.sigma_df
            cand.decided = decider.decide(Evidence(self.exp.goal, cand.base_values, cand.values, sigma, df, cand.added, cand.removed))
            if cand.decided.decision != Decision.MORE:
                break
        cand.values = self._values(cand.runs)
        if not crash and cand.decided is not None and cand.decided.decision == Decision.KEEP:
            self._phase(cand, "re-measuring")
            fresh: list[RunResult] = []
            crash = self._runs(cand, f"{cand.iteration}-confirm", max(1, st.repeats), fresh)
            cand.runs += fresh
            cand.fresh = self._values(fresh)
            if crash:
                crash = f"on a fresh seed after it was selected, {crash}"
        cand.crash = crash
        return cand

    def _values(self, runs: list[RunResult]) -> list[float]:
        return [v for r in runs if (v := run_value(r.record, self.st.value)) is not None]

    def _runs(self, cand: Candidate, desc: str, count: int, into: list[RunResult]) -> str | None:
        """`count` runs of the candidate's commit on seeds its code never ran; why one gave no value (None: all did)."""
        st = self.st
        assert cand.commit is not None
        wt = Repo(cand.root)
        key = _code_key(wt, cand.commit, st.editable)
        for _ in range(count):
            with self.mu:
                offset = st.seeds_used.get(key, 0)
                st.seeds_used[key] = offset + 1
            spec = RunSpec(st.experiment, f"{self.tag}-{desc}"[:60], timeout=st.timeout,
                           tags={"loop": self.tag, "commit": cand.commit[:12], "candidate": str(cand.k)},
                           env={"PYTHONPYCACHEPREFIX": guards.fresh_pycache()}, seed_offset=offset, code_dir=cand.exp.path)
            watched = [*st.editable, *st.protected]
            before = guards.snapshot(wt.root, watched, wt.changed_files()[0])
            try:
                run = self.pool.submit(spec).result()
            except (ConfigError, RunError) as exc:
                return f"failed: could not start the run: {exc.message}"
            tracked, _ = wt.changed_files()
            after = guards.snapshot(wt.root, watched, tracked)
            if problems := guards.changes(before, after, _own_files(wt, cand.exp)) + guards.rewritten_data(run.record):
                run = _refuse_run(self.lab, st, wt, run, problems, tracked)
            into.append(run)
            with self.mu:
                self.spends.append(spend_of(run.record))
                self.spent = self.spent + self.spends[-1]
            if run_value(run.record, st.value) is None:
                return f"{run.record['status']}: {run.record.get('reason', '')} (log: {run.path}/logs/output.log)"
            with self.mu:
                st.looks += 1
        return None

    # -- decisions, one at a time, in this (the main) thread ----------------------------------
    def _decide(self, cand: Candidate) -> Decision | None:
        """Record the candidate's decision and return it; None when it was rebased onto a newer
        best instead and must be measured again."""
        st, exp = self.st, self.exp
        if cand.refused:
            patch = self._set_aside(cand)
            self.say(f"refused  {cand.description}: {cand.refused} (saved {patch.name})")
            self._observe(cand, Decision.REFUSED, None)
            self._retire(cand)
            return Decision.REFUSED
        assert cand.commit is not None
        runs = cand.earlier + cand.runs
        best_value = results.commit_value(cand.base_values)
        if cand.crash:
            with self.mu:
                results.append(_results_path(self.lab, st), self._row(cand, Decision.CRASH, runs, [], None, cand.crash))
                st.counts["crash"] += 1
                save(self.lab, st)
            self._say(cand, Decision.CRASH, None, cand.crash, results.commit_value(st.best_values))
            self._observe(cand, Decision.CRASH, None)
            self._retire(cand)
            return Decision.CRASH
        decided = cand.decided
        assert decided is not None
        keep = decided.decision == Decision.KEEP
        if keep and cand.base != st.best_commit:
            if (why := self._rebase(cand)) is None:
                return None
            keep, reason = False, why
        measured = cand.fresh if keep else cand.values
        value = results.commit_value(measured)
        delta = results.gain(value, best_value, exp.goal)
        if keep:
            reason = (f"selected on {len(cand.values)} run(s): {decided.reason}; re-measured on {len(cand.fresh)} fresh seed(s): "
                      f"{results.show(value)}, {results.show_delta(delta)} vs best")
        elif decided.decision != Decision.KEEP:
            reason = decided.reason
        if cand.rebased_from:
            reason = f"rebased onto {cand.base[:8]} (the best moved while it ran on {cand.rebased_from[:8]}) and re-measured: {reason}"
        status = Decision.KEEP if keep else Decision.DISCARD
        with self.mu:
            for group in (cand.values, cand.fresh):
                if len(group) >= 2:
                    st.noise_groups.append(group)
            st.sigma, st.sigma_df = pooled_sigma(st.noise_groups)
            results.append(_results_path(self.lab, st), self._row(cand, status, runs, measured, delta, reason))
            st.counts[status] += 1
            if keep:
                st.best_commit, st.best_values, st.best_runs = cand.commit, list(cand.fresh), [r.record["id"] for r in runs]
            save(self.lab, st)
        if keep:  # the row is written: now move the loop's branch (a fast-forward: the commit sits on the best)
            self.repo.reset_branch(st.branch, cand.commit, hard=True, keep=_own_files(self.repo, exp))
        self._say(cand, status, delta, reason, results.commit_value(st.best_values), value)
        self._observe(cand, status, value)
        self._retire(cand)
        return status

    def _rebase(self, cand: Candidate) -> str | None:
        """Replay a would-be keep on the best that replaced its base; None when it is to be
        measured again there, else why it is discarded."""
        st = self.st
        assert cand.commit is not None and st.best_commit is not None
        wt = Repo(cand.root)
        wt.git("checkout", "-q", "--detach", st.best_commit)
        new = wt.cherry_pick(cand.commit)
        if new is None:
            wt.git("checkout", "-q", "--detach", cand.commit)
            return f"conflict: its edits do not apply on the new best {st.best_commit[:8]}, which replaced {cand.base[:8]} while it ran"
        if not wt.diff(st.best_commit, st.editable).strip():
            return f"no longer a change: the new best {st.best_commit[:8]} already holds its edits"
        self.repo.save_ref(f"refs/assay/{self.tag}/rebased/{cand.iteration}", new)
        self.repo.save_ref(f"{cand_prefix(self.tag)}{cand.k}", new)
        cand.rebased_from = cand.rebased_from or cand.base
        cand.base, cand.base_values, cand.commit = st.best_commit, list(st.best_values), new
        cand.earlier += cand.runs
        cand.runs, cand.values, cand.fresh, cand.decided = [], [], [], None
        self.say(f"rebase   [{cand.description[:40]}] would be kept, but the best moved: re-measuring on {st.best_commit[:8]}")
        return None

    def _row(self, cand: Candidate, status: Decision, runs: list[RunResult], values: list[float],
             delta: float | None, reason: str) -> results.Row:
        assert cand.commit is not None
        row = _row(self.st, cand.commit, status, cand.description, runs, values, delta, reason)
        from dataclasses import replace

        return replace(row, iteration=str(cand.iteration))

    def _say(self, cand: Candidate, status: Decision, delta: float | None, reason: str, best: float | None,
             value: float | None = None) -> None:
        label = results.label(self.exp.metric, self.st.value)
        self.say(Outcome(status, cand.description, cand.commit or "", cand.values, delta, reason,
                         [r.record["id"] for r in cand.earlier + cand.runs], best, self.st.sigma, cand.iteration,
                         label, value, cand.fresh).line())

    def _observe(self, cand: Candidate, decision: Decision, value: float | None) -> None:
        p = self.proposer
        with self.proposing:
            if isinstance(p, ParamsProposer) and cand.pending is not None:
                p.pending, p.trial = cand.pending
            p.observe(cand.description, decision, value)

    def _set_aside(self, cand: Candidate) -> Path:
        """A refused proposal's diff (new files included) as loops/TAG/refused-pK-N.patch."""
        wt = Repo(cand.root)
        _, untracked = wt.changed_files()
        own = _own_files(wt, cand.exp)
        new = [u for u in untracked if not u.startswith(own)]
        folder = state_dir(self.lab, self.st.experiment, self.tag)
        folder.mkdir(parents=True, exist_ok=True)
        patch = folder / f"refused-p{cand.k}-{int(cand.started)}.patch"
        patch.write_text(wt.git("diff", cand.base) + (wt.diff(cand.base, new) if new else ""))
        return patch

    def _phase(self, cand: Candidate, phase: str) -> None:
        with self.mu:
            cand.phase = phase
            self._write_inflight()

    def _retire(self, cand: Candidate) -> None:
        """The candidate is decided: out of what is in flight now, its worktree and ref removed soon (`_drive`)."""
        with self.mu:
            self.active.pop(cand.k, None)
            self.retired.append(cand)
            self._write_inflight()

    def _finish(self, cand: Candidate) -> None:
        """The candidate is decided (or abandoned): its worktree and its ref go."""
        self.repo.remove_worktree(cand.root)
        ref = f"{cand_prefix(self.tag)}{cand.k}"
        if self.repo.ref_exists(ref):
            self.repo.delete_ref(ref)
        with self.mu:
            self.active.pop(cand.k, None)
            self._write_inflight()

    def _write_inflight(self) -> None:
        """loops/TAG/inflight.json: this process and its candidates (`loop status` reads it)."""
        pid = os.getpid()
        data = {"pid": pid, "pid_started": process_start_time(pid), "slots": self.slots,
                "candidates": [c.to_dict(self.tag) for c in sorted(self.active.values(), key=lambda c: c.k)]}
        path = inflight_path(self.lab, self.st)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=1))


def run_parallel(lab: Lab, tag: str, proposer: Proposer, budget: Budget, slots: int, say: Callable[[str], None],
                 executor: str = "local", executor_options: dict[str, Any] | None = None) -> str:
    """`assay loop run TAG --parallel N`: returns why it stopped (see ParallelLoop).

    `executor` is where the candidates' runs go (`local`, `ray`, or a plug-in's name) and
    `executor_options` what its factory takes (Ray: `address`, `cpus`, `gpus`).

    Raises:
        ConfigError: a proposer the parallel loop does not support, or N < 1.
        PluginError: an unknown executor, or options it does not take.
        RunError: the Ray cluster at `address` cannot be reached.
        GitError: the loop's branch is not checked out, another command holds the loop, or an
            interrupted parallel run left worktrees (`assay loop resume TAG` removes them).
    """
    return ParallelLoop(lab, tag, proposer, budget, slots, say, executor, executor_options).run()
