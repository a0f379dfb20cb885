"""Keep-or-discard decisions. `greedy` is autoresearch's rule; `noise-aware` knows the metric's noise.

A DecisionRule is called by the ratchet after each run of a candidate, with every value measured
so far for the incumbent (the last kept commit) and the candidate. It answers keep, discard, or
more (run the candidate again with the next seed). It must not raise on any finite input.
`Decision` is the loop's one vocabulary for what happened to a candidate, from the rule's answer
to the status column of results.tsv.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from assay.stats import pooled_sigma, t_quantile  # noqa: F401 - re-exported: the loop's statistics


@dataclass(frozen=True)
class Evidence:
    goal: str  # "max" | "min"
    incumbent: list[float]
    candidate: list[float]
    sigma: float | None = None  # pooled run-to-run noise of the metric (same seeds, same code)
    sigma_df: int = 0
    lines_added: int = 0
    lines_removed: int = 0

    @property
    def delta(self) -> float:
        """Improvement of the candidate's mean over the incumbent's (positive is better)."""
        d = statistics.fmean(self.candidate) - statistics.fmean(self.incumbent)
        return d if self.goal == "max" else -d


class Decision(StrEnum):
    """What happened to a candidate. KEEP, DISCARD and CRASH are the statuses results.tsv records;
    MORE is a rule's request for another seed, DROPPED a crash whose idea ran out of retries
    (recorded as CRASH), REFUSED a proposal the guards stopped before it ran (never recorded)."""

    KEEP = "keep"
    DISCARD = "discard"
    CRASH = "crash"
    MORE = "more"
    DROPPED = "dropped"
    REFUSED = "refused"


RECORDED = (Decision.KEEP, Decision.DISCARD, Decision.CRASH)  # the values of results.tsv's status column


@dataclass(frozen=True)
class Decided:
    """A rule's answer for one look at a candidate: keep, discard or more, why, and the delta it saw."""

    decision: Decision
    reason: str
    delta: float

    def __post_init__(self) -> None:
        # Rules written against earlier versions answer with plain strings ("keep").
        object.__setattr__(self, "decision", Decision(self.decision))


@dataclass(frozen=True)
class Settings:
    min_delta: float = 0.0
    confidence: float = 0.95
    max_repeats: int = 4
    lines_per_delta: float = 0.0  # extra improvement required per changed line (simplicity rule)


class DecisionRule(Protocol):
    """decide(evidence) -> Decided. Called by the ratchet once per finished candidate run; answers
    Decision.KEEP, DISCARD or MORE and must not raise on finite input."""

    def decide(self, ev: Evidence) -> Decided: ...


def _required(s: Settings, ev: Evidence) -> float:
    return s.min_delta + s.lines_per_delta * (ev.lines_added + ev.lines_removed)


def _simpler(ev: Evidence) -> bool:
    return ev.lines_removed > ev.lines_added


class Greedy:
    """Keep if better than the best so far by more than min_delta (karpathy/autoresearch)."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def decide(self, ev: Evidence) -> Decided:
        d, need = ev.delta, _required(self.s, ev)
        if d > need:
            return Decided(Decision.KEEP, f"better by {d:.4g} (> {need:.4g})", d)
        if _simpler(ev) and d >= -self.s.min_delta:
            return Decided(Decision.KEEP, f"simplification win: {ev.lines_removed - ev.lines_added} fewer lines, metric equal ({d:+.4g})", d)
        return Decided(Decision.DISCARD, f"not better by more than {need:.4g} ({d:+.4g})", d)


FUTILITY = 0.8


def _greedy_until_noise(s: Settings, ev: Evidence) -> Decided:
    """The noise-aware rules before any noise was measured: greedy, and saying so."""
    v = Greedy(s).decide(ev)
    return Decided(v.decision, v.reason + " (greedy: no noise estimate yet)", v.delta)


def _standard_error(ev: Evidence) -> float:
    """Standard error of mean(candidate) - mean(incumbent) from the pooled seed noise sigma."""
    assert ev.sigma is not None
    return max(ev.sigma, 1e-12) * math.sqrt(1 / len(ev.incumbent) + 1 / len(ev.candidate))


class NoiseAware:
    """Keep only what beats the incumbent by more than min_delta with the configured confidence.

    The standard error of the difference of means comes from the pooled noise estimate sigma.
    The candidate runs once; it is dropped at once when even an optimistic reading cannot reach
    the bar, and gets more seeds while it might. The confidence is split over the possible looks
    (Bonferroni), so repeated peeking does not inflate the false-keep rate above 1 - confidence.
    """

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def decide(self, ev: Evidence) -> Decided:
        s = self.s
        if ev.sigma is None or ev.sigma_df < 1:
            return _greedy_until_noise(s, ev)
        d, need, n = ev.delta, _required(s, ev), len(ev.candidate)
        se = _standard_error(ev)
        alpha = (1 - s.confidence) / s.max_repeats
        t_keep = t_quantile(1 - alpha, ev.sigma_df)
        # Futility: drop a candidate once even an 80%-optimistic reading misses the bar. Most ideas
        # are bad; spending every repeat on them would starve the good ones of budget.
        t_plausible = t_quantile(FUTILITY, ev.sigma_df)
        lo = d - t_keep * se
        noise = f"±{t_keep * se:.3g} (σ={ev.sigma:.3g}, n={n})"
        if lo > need:
            return Decided(Decision.KEEP, f"better by {d:.4g} {noise}: significant at {s.confidence:.0%}, > {need:.4g}", d)
        if _simpler(ev) and n >= min(2, s.max_repeats) and d + t_plausible * se >= 0 and d >= -s.min_delta - se:
            return Decided(Decision.KEEP, f"simplification win: {ev.lines_removed - ev.lines_added} fewer lines, "
                                   f"metric equal within noise ({d:+.4g} {noise})", d)
        if d + t_plausible * se < need:
            return Decided(Decision.DISCARD, f"{'worse' if d < 0 else 'not better'} ({d:+.4g} {noise}): cannot reach +{need:.4g}", d)
        if n < s.max_repeats:
            return Decided(Decision.MORE, f"promising ({d:+.4g} {noise}): another seed", d)
        return Decided(Decision.DISCARD, f"not significant after {n} runs ({d:+.4g} {noise})", d)


class Sequential:
    """A sequential test with an early futility stop: most ideas are no better, and those should
    cost one run, not three.

    With the noise sigma known (pooled over every measurement of the loop), a candidate is
    dropped as soon as its mean is not better than the incumbent's by `FUTILITY_Z` standard
    errors of the difference; on pure noise that stops about 70% of candidates after their
    first run. One that passes gets more seeds (up to max_repeats) and is kept once the gain is
    significant at that look, the confidence split over two looks, not over every look as
    NoiseAware splits it: the futility stop leaves few null candidates a second look. Measured
    in benchmarks/bench_loop_decisions.py at 95% confidence: under 5% false keeps even against a
    3-run baseline (sigma on 2 degrees of freedom), and about 1.4 runs per try on pure noise.
    """

    FUTILITY_Z = 0.5  # tuned in benchmarks/bench_loop_decisions.py (runs per try against power)

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def decide(self, ev: Evidence) -> Decided:
        s = self.s
        if ev.sigma is None or ev.sigma_df < 1:
            return _greedy_until_noise(s, ev)
        d, need, n = ev.delta, _required(s, ev), len(ev.candidate)
        se = _standard_error(ev)
        t_keep = t_quantile(1 - (1 - s.confidence) / 2, ev.sigma_df)  # split over two looks (see above)
        noise = f"±{t_keep * se:.3g} (σ={ev.sigma:.3g}, n={n})"
        if d - t_keep * se > need:
            return Decided(Decision.KEEP, f"better by {d:.4g} {noise}: significant at {s.confidence:.0%}, > {need:.4g}", d)
        if _simpler(ev) and n >= min(2, s.max_repeats) and d >= -s.min_delta - se:
            return Decided(Decision.KEEP, f"simplification win: {ev.lines_removed - ev.lines_added} fewer lines, "
                                   f"metric equal within noise ({d:+.4g} {noise})", d)
        if d < need + self.FUTILITY_Z * se and not (_simpler(ev) and n < 2):
            return Decided(Decision.DISCARD, f"{'worse' if d < 0 else 'not better'} ({d:+.4g} {noise}): "
                                      f"futility stop after {n} run(s), short of +{need:.4g} by more than the noise allows", d)
        if n < s.max_repeats:
            return Decided(Decision.MORE, f"promising ({d:+.4g} {noise}): another seed", d)
        return Decided(Decision.DISCARD, f"not significant after {n} runs ({d:+.4g} {noise})", d)


DECISIONS: dict[str, Callable[[Settings], DecisionRule]] = {"greedy": Greedy, "noise-aware": NoiseAware,
                                                            "sequential": Sequential}


def make_decision(name: str, settings: Settings) -> DecisionRule:
    """A built-in rule by name, else one a package registered under the `assay.decisions` entry point."""
    from assay import plugins

    return plugins.factory("assay.decisions", name, DECISIONS, "decision rule",
                           "Pass --decision noise-aware, --decision sequential or --decision greedy.")(settings)
