"""The decision-rule conformance suite: what the loop's ratchet relies on from every `DecisionRule`."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from assay.loop.decisions import Decided, Decision, DecisionRule, Evidence, Settings
from assay.stats import pooled_sigma

RuleFactory = Callable[[Settings], DecisionRule]  # as `assay.decisions` entry points are called

# Finite inputs of every shape the ratchet passes: with and without a noise estimate, zero noise,
# huge values, and a simplification (more lines removed than added).
EDGE_CASES = [
    Evidence("min", [1.0, 1.01, 0.99], [1.0], 0.01, 2),
    Evidence("max", [0.5], [0.9], None, 0),
    Evidence("min", [1.0, 1.0], [1.0, 1.0], 0.0, 1),
    Evidence("max", [1e9, 1e9 + 1], [-1e9], 0.7, 1, lines_added=500, lines_removed=3),
    Evidence("min", [2.0, 2.1, 1.9], [1.0, 1.05, 0.95, 1.0], 0.1, 5, lines_added=1, lines_removed=9),
]


def check_decision_rule(factory: RuleFactory, *, max_false_keep_rate: float | None = None, noise_trials: int = 1000,
                        seed: int = 0) -> None:
    """Check a decision-rule factory against the `DecisionRule` protocol.

    Args:
        factory: called with loop Settings, as `assay.decisions` entry points are.
        max_false_keep_rate: when given, the rule (at 95% confidence) may keep at most this share of
            candidates that are pure noise (same distribution as the incumbent), over `noise_trials`
            seeded tries. Leave None for rules that do not model noise (greedy keeps half of them).
        seed: seeds every random draw, so a failure repeats.

    Raises:
        AssertionError: the first broken promise, with the evidence that broke it.
    """
    rule = factory(Settings(max_repeats=4))
    _check(callable(getattr(rule, "decide", None)), f"{rule!r} has no decide(): not a DecisionRule")
    for ev in EDGE_CASES:
        said = rule.decide(ev)
        _check(isinstance(said, Decided), f"decide({ev}) returned {said!r}, not a Decided")
        _check(said.decision in (Decision.KEEP, Decision.DISCARD, Decision.MORE),
               f"decide({ev}) answered {said.decision!r} (expected keep, discard or more)")
        _check(bool(said.reason.strip()) and "\n" not in said.reason, f"decide({ev}) gave no one-line reason: {said.reason!r}")
        _check(math.isclose(said.delta, ev.delta), f"decide({ev}) reports delta {said.delta}, the evidence's is {ev.delta}")
    r = random.Random(seed)
    settings = Settings(max_repeats=4)
    base = [10 + r.gauss(0, 0.1) for _ in range(3)]
    kept, _ = decide_until_done(factory(settings), settings, base, lambda: 5 + r.gauss(0, 0.1))
    _check(kept == Decision.KEEP, f"a gain of 50 noise sigmas was answered {kept.value}, not keep")
    dropped, runs = decide_until_done(factory(settings), settings, base, lambda: 15 + r.gauss(0, 0.1))
    _check((dropped, runs) == (Decision.DISCARD, 1), f"a loss of 50 noise sigmas was answered {dropped.value} after {runs} run(s), "
                                                     "not discard after 1")
    strict = Settings(min_delta=0.5, max_repeats=3)
    small, _ = decide_until_done(factory(strict), strict, [1.0, 1.001, 0.999], lambda: 0.8)
    _check(small == Decision.DISCARD, f"a gain of 0.2 under min_delta=0.5 was answered {small.value}, not discard")
    if max_false_keep_rate is not None:
        rate = false_keep_rate(factory, trials=noise_trials, seed=seed)
        _check(rate <= max_false_keep_rate, f"kept {rate:.1%} of pure-noise candidates (allowed: {max_false_keep_rate:.1%})")


def decide_until_done(rule: DecisionRule, settings: Settings, incumbent: list[float],
                      draw: Callable[[], float]) -> tuple[Decision, int]:
    """Feed a candidate (goal: min) run by run until the rule stops asking for more: (decision, runs used)."""
    sigma, df = pooled_sigma([incumbent])
    values: list[float] = []
    while True:
        values.append(draw())
        said = rule.decide(Evidence("min", incumbent, values, sigma, df))
        if said.decision != Decision.MORE:
            return said.decision, len(values)
        _check(len(values) < settings.max_repeats, f"asked for more than max_repeats={settings.max_repeats} runs")


def false_keep_rate(factory: RuleFactory, *, trials: int = 1000, seed: int = 0) -> float:
    """The share of pure-noise candidates (incumbent of 3 runs, both N(0, 1)) that the rule keeps at 95% confidence."""
    r = random.Random(seed)
    settings = Settings(confidence=0.95, max_repeats=4)
    rule = factory(settings)
    keeps = 0
    for _ in range(trials):
        base = [r.gauss(0, 1) for _ in range(3)]
        keeps += decide_until_done(rule, settings, base, lambda: r.gauss(0, 1))[0] == Decision.KEEP
    return keeps / trials


def _check(ok: bool, message: str) -> None:
    if not ok:  # not `assert`: the checks must hold under python -O too
        raise AssertionError(message)
