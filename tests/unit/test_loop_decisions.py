"""Decision rules: a conformance suite every registered rule passes, then each rule's own promises."""

from __future__ import annotations

import math
import random

import pytest

from assay.errors import PluginError
from assay.loop.decisions import DECISIONS, Evidence, Settings, make_decision, pooled_sigma, t_quantile

INPUTS = [
    Evidence("min", [1.0, 1.01, 0.99], [1.0], 0.01, 2),
    Evidence("max", [0.5], [0.9], None, 0),
    Evidence("min", [1.0, 1.0], [1.0, 1.0], 0.0, 1),  # zero noise
    Evidence("max", [1e9, 1e9 + 1], [-1e9], 0.7, 1, lines_added=500, lines_removed=3),
    Evidence("min", [2.0, 2.1, 1.9], [1.0, 1.05, 0.95, 1.0], 0.1, 5, lines_added=1, lines_removed=9),
]


@pytest.fixture(params=sorted(DECISIONS))
def rule(request):
    return request.param


def run_to_verdict(name: str, settings: Settings, incumbent: list[float], draw) -> tuple[str, int]:
    """Feed a candidate run by run until the rule stops asking for more; (decision, runs used)."""
    d = make_decision(name, settings)
    sigma, df = pooled_sigma([incumbent])
    values: list[float] = []
    while True:
        values.append(draw())
        v = d.decide(Evidence("min", incumbent, values, sigma, df))
        if v.decision != "more":
            return v.decision, len(values)
        assert len(values) < settings.max_repeats, "a rule asked for more than max_repeats runs"


def test_every_rule_answers_keep_discard_or_more_with_a_reason(rule):
    d = make_decision(rule, Settings(max_repeats=4))
    for ev in INPUTS:
        v = d.decide(ev)
        assert v.decision in ("keep", "discard", "more") and v.reason.strip()
        assert math.isclose(v.delta, ev.delta)


def test_every_rule_keeps_a_huge_gain_and_discards_a_huge_loss(rule):
    s = Settings(max_repeats=4)
    r = random.Random(1)
    base = [10 + r.gauss(0, 0.1) for _ in range(3)]
    assert run_to_verdict(rule, s, base, lambda: 5 + r.gauss(0, 0.1))[0] == "keep"
    assert run_to_verdict(rule, s, base, lambda: 15 + r.gauss(0, 0.1)) == ("discard", 1)


def test_every_rule_respects_min_delta(rule):
    s = Settings(min_delta=0.5, max_repeats=3)
    base = [1.0, 1.001, 0.999]
    assert run_to_verdict(rule, s, base, lambda: 0.8)[0] == "discard"  # better, but by less than 0.5


def test_unknown_rule_lists_the_known_ones():
    with pytest.raises(PluginError, match="Unknown decision rule 'gredy'.*greedy.*Did you mean 'greedy'"):
        make_decision("gredy", Settings())


def test_greedy_keeps_any_gain_above_min_delta_even_pure_luck():
    g = make_decision("greedy", Settings())
    assert g.decide(Evidence("max", [0.80], [0.8001])).decision == "keep"
    assert g.decide(Evidence("max", [0.80], [0.7999])).decision == "discard"


def test_noise_aware_false_keeps_at_most_five_percent_on_pure_noise():
    r = random.Random(7)
    s = Settings(confidence=0.95, max_repeats=4)
    trials, keeps = 3000, 0
    for _ in range(trials):
        base = [r.gauss(0, 1) for _ in range(3)]
        keeps += run_to_verdict("noise-aware", s, base, lambda: r.gauss(0, 1))[0] == "keep"
    assert keeps / trials <= 0.05


def test_noise_aware_discards_a_clearly_worse_candidate_after_one_run():
    r = random.Random(3)
    base = [1.0 + r.gauss(0, 0.05) for _ in range(3)]
    assert run_to_verdict("noise-aware", Settings(max_repeats=4), base, lambda: 1.3) == ("discard", 1)


def test_noise_aware_gives_a_promising_candidate_more_seeds():
    ev = Evidence("min", [1.0, 1.1, 0.9], [0.85], 0.1, 8)
    assert make_decision("noise-aware", Settings(max_repeats=4)).decide(ev).decision == "more"


def test_noise_aware_keeps_a_real_gain_of_several_sigma():
    r = random.Random(5)
    base = [1.0 + r.gauss(0, 0.05) for _ in range(3)]
    decision, n = run_to_verdict("noise-aware", Settings(max_repeats=4), base, lambda: 0.6 + r.gauss(0, 0.05))
    assert decision == "keep" and n <= 4


def test_simplicity_rule_a_bigger_diff_must_buy_a_bigger_gain():
    s = Settings(lines_per_delta=0.01)
    g = make_decision("greedy", s)
    assert g.decide(Evidence("min", [1.0], [0.95], lines_added=2)).decision == "keep"  # needs 0.02
    assert g.decide(Evidence("min", [1.0], [0.95], lines_added=10)).decision == "discard"  # needs 0.10


def test_simplicity_rule_equal_metric_with_fewer_lines_is_a_keep(rule):
    ev = Evidence("min", [1.0, 1.0, 1.0], [1.0, 1.0], 0.01, 4, lines_added=1, lines_removed=6)
    v = make_decision(rule, Settings(max_repeats=4)).decide(ev)
    assert v.decision == "keep" and "simplification" in v.reason


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for p in (0.8, 0.95, 0.9875):
        for df in (3, 5, 10, 40):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=0.01)


def test_pooled_sigma_uses_only_groups_with_repeats_and_skips_non_finite():
    sigma, df = pooled_sigma([[1.0, 3.0], [5.0], [2.0, 4.0, float("nan")]])
    assert df == 2 and sigma == pytest.approx(math.sqrt(2))
    assert pooled_sigma([[1.0]]) == (None, 0)


def test_a_rules_plain_string_answer_becomes_the_loops_decision():
    from assay.loop.decisions import Decided, Decision

    assert Decided("keep", "why", 0.1).decision is Decision.KEEP
    with pytest.raises(ValueError):
        Decided("perhaps", "why", 0.1)


def test_sequential_false_keeps_at_most_five_percent_on_pure_noise_in_under_two_runs():
    r = random.Random(11)
    s = Settings(confidence=0.95, max_repeats=4)
    trials, keeps, runs = 3000, 0, 0
    for _ in range(trials):
        base = [r.gauss(0, 1) for _ in range(3)]
        decision, n = run_to_verdict("sequential", s, base, lambda: r.gauss(0, 1))
        keeps += decision == "keep"
        runs += n
    assert keeps / trials <= 0.05 and runs / trials <= 2.0


def test_sequential_stops_a_candidate_no_better_after_one_run_where_noise_aware_asks_for_more():
    ev = Evidence("min", [1.0, 1.1, 0.9], [0.99], 0.1, 8)  # better by 0.01: far less than half its standard error
    assert make_decision("noise-aware", Settings(max_repeats=4)).decide(ev).decision == "more"
    v = make_decision("sequential", Settings(max_repeats=4)).decide(ev)
    assert v.decision == "discard" and "futility stop after 1 run" in v.reason


def test_sequential_gives_a_promising_candidate_more_seeds_and_keeps_a_real_gain():
    assert make_decision("sequential", Settings(max_repeats=4)).decide(
        Evidence("min", [1.0, 1.1, 0.9], [0.9], 0.1, 8)).decision == "more"
    r = random.Random(5)
    base = [1.0 + r.gauss(0, 0.05) for _ in range(3)]
    decision, n = run_to_verdict("sequential", Settings(max_repeats=4), base, lambda: 0.85 + r.gauss(0, 0.05))
    assert decision == "keep" and n <= 4
