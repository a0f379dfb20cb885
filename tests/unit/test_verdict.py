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
