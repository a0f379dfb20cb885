"""Judging one criterion on a configuration's values: the interval decides, never one run."""

from __future__ import annotations

import statistics

import pytest

from assay.experiment import parse_criteria
from assay.report.evidence import spread, t_crit
from assay.report.verdict import judge


def crit(text: str):
    (c,) = parse_criteria(text, "test")
    return c


def test_interval_entirely_above_threshold_holds():
    outcome, stats, why = judge(crit("acc >= 0.9"), [0.95, 0.96, 0.94], 0.95, (None, 0))
    assert outcome == "holds"
    lo, hi = stats["ci"]
    assert 0.9 <= lo < statistics.fmean([0.95, 0.96, 0.94]) < hi
    assert "CI" in why and "n=3" in why


def test_mean_above_threshold_but_wide_interval_is_undecided():
    outcome, stats, _ = judge(crit("acc >= 0.9"), [0.99, 0.85, 0.95], 0.95, (None, 0))
    assert statistics.fmean([0.99, 0.85, 0.95]) > 0.9
    assert outcome == "undecided" and stats["ci"][0] < 0.9 < stats["ci"][1]


def test_interval_entirely_below_threshold_fails():
    outcome, _, _ = judge(crit("acc >= 0.9"), [0.70, 0.71, 0.72], 0.95, (None, 0))
    assert outcome == "fails"


def test_single_run_without_noise_estimate_is_undecided_even_far_from_threshold():
    outcome, stats, why = judge(crit("loss < 1"), [0.01], 0.95, (None, 0))
    assert outcome == "undecided" and stats["ci"] is None and "one run cannot decide" in why


def test_single_run_borrows_pooled_noise():
    outcome, stats, _ = judge(crit("loss < 1"), [0.5], 0.95, (0.01, 4))
    assert outcome == "holds" and stats["sigma_source"] == "pooled"
    assert stats["ci"][1] == pytest.approx(0.5 + t_crit(0.975, 4) * 0.01)


def test_t_quantiles_match_tables():
    # Student-t table values (two-sided 95%): df 1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262.
    for df, expected in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262)):
        assert t_crit(0.975, df) == pytest.approx(expected, abs=2e-3)


def test_spread_of_repeats_uses_their_own_std():
    s = spread([1.0, 2.0, 3.0], 0.95)
    assert s.std == pytest.approx(1.0) and s.sigma_source == "repeats"
    assert s.hi - s.mean == pytest.approx(t_crit(0.975, 2) / 3 ** 0.5)


def test_a_seed_run_twice_counts_once(tmp_path):
    from assay.report.evidence import RunView, group_configs

    def view(i: int, seed: int) -> RunView:
        return RunView(tmp_path / f"r{i}", {"id": f"e/r{i}", "seed": seed, "params": {"lr": 0.1, "seed": seed}}, None)

    (cfg,), _ = group_configs([view(1, 0), view(2, 1), view(3, 0)])
    assert [r.id for r in cfg.runs] == ["e/r2", "e/r3"]


def test_equal_repeats_are_undecided_and_say_the_interval_measures_nothing():
    outcome, stats, why = judge(crit("acc >= 0.9"), [0.95, 0.95, 0.95], 0.95, (None, 0))
    assert outcome == "undecided"
    assert why.startswith("deterministic: seed noise is zero, the interval measures nothing")
    assert 'assay.log_values("acc"' in why and stats["ci"] == pytest.approx([0.95, 0.95])


def test_equal_repeats_with_logged_examples_are_judged_by_a_bootstrap_over_them():
    examples = [1.0] * 960 + [0.0] * 40  # 96% of 1,000 examples right: the runs' acc
    outcome, stats, why = judge(crit("acc >= 0.9"), [0.96, 0.96], 0.95, (None, 0), examples=lambda: (examples, "e/r2"))
    assert outcome == "holds" and stats["sigma_source"] == "bootstrap"
    assert stats["examples"] == 1000 and stats["resamples"] == 2000 and stats["examples_of"] == "e/r2"
    lo, hi = stats["ci"]
    assert 0.945 < lo < 0.96 < hi < 0.975  # binomial s.e. 0.0062: +-1.96 s.e. is [0.948, 0.972]
    assert "bootstrap over the 1000 examples of run e/r2" in why
    outcome, _, why = judge(crit("acc >= 0.958"), [0.96, 0.96], 0.95, (None, 0), examples=lambda: (examples, "e/r2"))
    assert outcome == "undecided" and "more examples" in why


def test_examples_that_do_not_average_to_the_metric_are_not_used():
    outcome, stats, why = judge(crit("acc >= 0.9"), [0.96, 0.96], 0.95, (None, 0), examples=lambda: ([1.0, 0.0], "e/r1"))
    assert outcome == "undecided" and stats["sigma_source"] == "repeats"
    assert "average 0.5, not 0.96" in why


def test_an_exact_check_on_equal_repeats_still_holds():
    outcome, _, _ = judge(crit("errors == 0"), [0.0, 0.0, 0.0], 0.95, (None, 0))
    assert outcome == "holds"


def test_bootstrap_is_reproducible_and_the_pure_python_one_agrees(monkeypatch):
    import random
    import sys

    from assay.stats import bootstrap_interval

    rng = random.Random(1)
    values = [rng.gauss(0.5, 0.2) for _ in range(400)]  # s.e. of the mean 0.01
    first = bootstrap_interval(values, 0.95)
    assert bootstrap_interval(values, 0.95) == first
    mean, lo, hi = first
    assert mean == pytest.approx(statistics.fmean(values))
    se = statistics.stdev(values) / 20
    # Near the normal theory interval, up to the Monte Carlo error of 2,000 resamples (~0.1 s.e.).
    assert lo == pytest.approx(mean - 1.96 * se, abs=0.3 * se) and hi == pytest.approx(mean + 1.96 * se, abs=0.3 * se)
    monkeypatch.setitem(sys.modules, "numpy", None)  # numpy unimportable: the pure-Python resampler runs
    _, lo2, hi2 = bootstrap_interval(values, 0.95)
    assert (lo2, hi2) != (lo, hi) and bootstrap_interval(values, 0.95)[1:] == (lo2, hi2)
    assert lo2 == pytest.approx(mean - 1.96 * se, abs=0.3 * se) and hi2 == pytest.approx(mean + 1.96 * se, abs=0.3 * se)
