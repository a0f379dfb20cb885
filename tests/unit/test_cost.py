"""The cost ledger's arithmetic: units of a limit, GPUs named by CUDA_VISIBLE_DEVICES, a run's
entry, the stop rule, and the approval gate's decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.cost import (
    CPU_H,
    GPU_H,
    MONEY,
    Estimate,
    Prices,
    Spend,
    approve,
    lab_prices,
    parse_limit,
    run_cost,
    visible_gpus,
    would_exceed,
)
from assay.errors import ConfigError
from assay.lab import Lab

PRICED = Prices(gpu_hour=2.0, cpu_hour=0.1, currency="EUR")


@pytest.mark.parametrize(("text", "prices", "amount", "unit"), [
    ("$20", Prices(gpu_hour=1.0), 20.0, MONEY),
    ("20 EUR", PRICED, 20.0, MONEY),
    ("12.5", PRICED, 12.5, MONEY),  # a bare number is money when a price is set
    ("12.5", Prices(), 12.5, GPU_H),  # ... else GPU-hours
    ("10gpu-h", PRICED, 10.0, GPU_H),
    ("0.5 gpu_hours", Prices(), 0.5, GPU_H),
    ("5cpu-h", Prices(), 5.0, CPU_H),
    (3, Prices(), 3.0, GPU_H),
])
def test_a_limit_reads_its_unit_or_takes_money_when_priced_else_gpu_hours(text, prices, amount, unit):
    limit = parse_limit(text, prices)
    assert (limit.amount, limit.unit) == (amount, unit)


def test_money_without_a_price_is_refused_with_the_setting_to_add():
    with pytest.raises(ConfigError) as err:
        parse_limit("$20", Prices())
    assert "'$20'" in err.value.message and "cost_per_gpu_hour" in str(err.value.hint)


@pytest.mark.parametrize("text", ["twenty", "10 parsecs", "-5gpu-h", ""])
def test_an_unreadable_limit_quotes_the_value(text):
    with pytest.raises(ConfigError) as err:
        parse_limit(text, Prices(), source="--max-cost")
    assert repr(text) in err.value.message and "--max-cost" in err.value.message


@pytest.mark.parametrize(("value", "count"), [(None, None), ("", 0), ("0", 1), ("0,1", 2), ("2, 3,5", 3), ("-1", 0),
                                              ("0,-1,2", 1), ("GPU-5d2c", 1)])
def test_gpus_are_counted_from_cuda_visible_devices_as_cuda_reads_it(value, count):
    env = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert visible_gpus(env) == count


def test_a_run_costs_its_wall_time_times_its_gpus_and_its_cpu_time_at_the_lab_prices():
    cost = run_cost(duration=1800.0, cpu_seconds=7200.0, gpus=2, prices=PRICED)
    assert cost == {"cpu_hours": 2.0, "gpu_hours": 1.0, "gpu_count": 2, "money": 2.0 * 1.0 + 0.1 * 2.0, "currency": "EUR"}
    unpriced = run_cost(duration=1800.0, cpu_seconds=None, gpus=None, prices=Prices())
    assert unpriced == {"cpu_hours": 0.0, "gpu_hours": 0.0, "gpu_count": 0, "money": None, "currency": None}


def test_no_new_run_starts_when_what_is_spent_plus_the_runs_in_flight_and_one_more_could_pass_the_limit():
    limit = parse_limit("10gpu-h", Prices())
    each = Spend(1, 0.0, 3.0, 3.0)
    assert not would_exceed(limit, Spend(2, 0.0, 4.0, 4.0), each, 0, Prices())  # 4 + 3 = 7
    assert not would_exceed(limit, Spend(2, 0.0, 4.0, 4.0), each, 1, Prices())  # 4 + 2 x 3 = 10: reaches, not past
    assert would_exceed(limit, Spend(2, 0.0, 4.0, 4.0), each, 2, Prices())  # 4 + 3 x 3 = 13
    assert not would_exceed(limit, Spend(), None, 5, Prices())  # nothing known yet: the first runs start
    assert would_exceed(limit, Spend(4, 0.0, 10.0, 10.0), None, 0, Prices())  # spent: nothing more


def test_money_of_a_spend_adds_the_price_of_a_run_hour():
    spend = Spend(1, cpu_hours=1.0, gpu_hours=2.0, wall_hours=4.0)
    prices = Prices(gpu_hour=1.0, cpu_hour=0.5, run_hour=0.25)
    assert spend.amount(MONEY, prices) == 2.0 + 0.5 + 1.0
    assert spend.to_dict(Prices())["money"] is None


def _lab(**settings) -> Lab:
    return Lab(Path("/nonexistent-lab"), settings)


def test_a_bad_price_in_assay_toml_is_a_config_error_naming_it():
    with pytest.raises(ConfigError) as err:
        lab_prices(_lab(cost_per_gpu_hour="two"))
    assert "cost_per_gpu_hour = 'two'" in err.value.message


EST = Estimate(runs=4, run_hours=0.5, gpus=2, cpu_per_hour=1.0, basis="the latest smoke run's throughput")


def test_no_approval_is_needed_without_approve_above_or_below_it():
    assert approve(_lab(), EST, what="sweep", yes=False, ask=None, rerun="assay sweep x") is None
    assert approve(_lab(approve_above="4gpu-h"), EST, what="sweep", yes=False, ask=None, rerun="assay sweep x") is None


def test_above_approve_above_without_a_terminal_it_refuses_with_the_estimate_and_the_flag():
    with pytest.raises(ConfigError) as err:
        approve(_lab(approve_above="3gpu-h"), EST, what="The sweep", yes=False, ask=None, rerun="assay sweep x")
    assert err.value.exit_code == 2
    assert "estimated at 4 gpu-h" in err.value.message and "pass --yes" in err.value.message


def test_above_approve_above_yes_or_an_answer_on_the_terminal_approves():
    lab = _lab(approve_above="3gpu-h")
    assert "approved by --yes" in approve(lab, EST, what="s", yes=True, ask=None, rerun="r")
    asked: list[str] = []
    assert approve(lab, EST, what="s", yes=False, ask=lambda q: asked.append(q) or True, rerun="r")
    assert "4 gpu-h" in asked[0] and asked[0].endswith("Proceed?")
    with pytest.raises(ConfigError, match="not approved"):
        approve(lab, EST, what="s", yes=False, ask=lambda q: False, rerun="r")


def test_without_an_estimate_only_yes_approves_even_on_a_terminal():
    lab = _lab(approve_above="$5", cost_per_gpu_hour=1.0)
    with pytest.raises(ConfigError, match="no cost estimate is possible"):
        approve(lab, None, what="s", yes=False, ask=lambda q: True, rerun="r")
    assert approve(lab, None, what="s", yes=True, ask=None, rerun="r")
