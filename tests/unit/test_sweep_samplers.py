"""Sampler conformance: every registered sampler proposes points inside the space, accepts stored
history it never proposed (resume), and takes failures as results. Plus per-sampler behaviour."""

import importlib.util
import math

import pytest

from assay.errors import PluginError
from assay.sweep.samplers import SAMPLERS, Pruning, Sampler, TrialResult, get_sampler
from assay.sweep.space import Choice, space_from_args

NEEDS = {"cmaes": "cmaes", "gp": "torch"}  # optional packages of some Optuna samplers


def _space():
    return space_from_args(["lr=log(1e-4,1e-1)", "batch=16,32,64", "layers=range(1,4)"])


def _inside(space, p):
    assert set(p) == set(space.dims)
    for k, d in space.dims.items():
        if isinstance(d, Choice):
            assert p[k] in d.values
        else:
            assert d.low <= p[k] <= d.high


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_conformance_every_sampler(name):
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        with pytest.raises(PluginError, match=f"pip install {NEEDS[name]}"):
            get_sampler(name, _space())
        pytest.skip(f"{name} needs {NEEDS[name]}, not installed here (the error above is what users see)")
    space = _space()
    if name == "grid":
        space = space_from_args(["lr=1e-4,1e-3", "batch=16,32,64", "layers=range(1,4)"])
    s = get_sampler(name, space, goal="min", seed=1)
    assert isinstance(s, Sampler)
    # stored history it never proposed, including a failure and a point outside today's space
    s.tell({"lr": 1e-3, "batch": 32, "layers": 2}, TrialResult("ok", 0.5, "x/1"))
    s.tell({"lr": 1e-4, "batch": 16, "layers": 1}, TrialResult("failed", None, "x/2"))
    s.tell({"lr": 0.5, "batch": 7, "layers": 9}, TrialResult("ok", 0.1, "x/3"))
    pending = [s.ask() for _ in range(3)]  # several asks may be pending at once
    for i, p in enumerate(pending):
        assert p is not None
        _inside(space, p)
        s.tell(p, TrialResult("ok" if i else "oom", None if not i else float(i), None))


def test_grid_enumerates_each_point_once_and_skips_told_points():
    space = space_from_args(["a=1,2", "b=x,y"])
    s = get_sampler("grid", space)
    s.tell({"a": 1, "b": "y"}, TrialResult("ok", 1.0))
    got = []
    while (p := s.ask()) is not None:
        got.append(p)
    assert got == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_random_resumed_proposes_what_an_uninterrupted_run_would():
    space = _space()
    straight = get_sampler("random", space, seed=7)
    seq = [straight.ask() for _ in range(5)]
    resumed = get_sampler("random", space, seed=7)
    for p in seq[:3]:
        resumed.tell(p, TrialResult("ok", 1.0))
    assert [resumed.ask(), resumed.ask()] == seq[3:]
    assert all(1e-4 <= p["lr"] <= 1e-1 for p in seq)


def test_tpe_concentrates_on_the_better_region():
    space = space_from_args(["x=interval(0,1)"])
    s = get_sampler("tpe", space, goal="min", seed=0)
    xs = []
    for _ in range(40):
        p = s.ask()
        xs.append(p["x"])
        s.tell(p, TrialResult("ok", (p["x"] - 0.8) ** 2))
    late = xs[-10:]
    assert sum(abs(x - 0.8) for x in late) / 10 < sum(abs(x - 0.8) for x in xs[:10]) / 10
    assert min(abs(x - 0.8) for x in xs) < 0.05


def test_optuna_pruner_stops_a_trial_worse_than_earlier_ones_at_the_same_step():
    space = space_from_args(["x=1,2,3"])
    s = get_sampler("tpe", space, goal="max", seed=0, pruner="median", startup_trials=1, warmup_steps=0)
    assert isinstance(s, Pruning)
    first = s.ask()
    for step in range(5):
        assert not s.report(first, step, 10.0 + step)
    s.tell(first, TrialResult("ok", 14.0))
    second = s.ask()
    assert s.report(second, 0, 1.0) is True  # far below the first trial's 10.0 at step 0
    s.tell(second, TrialResult("pruned", None))
    assert math.isclose(s.study.best_value, 14.0)


def test_unknown_sampler_lists_the_known_ones():
    with pytest.raises(PluginError) as e:
        get_sampler("tep", _space())
    assert "grid" in str(e.value) and "tpe" in str(e.value) and "Did you mean 'tpe'?" in str(e.value)
    with pytest.raises(PluginError, match="Optuna has no sampler 'Nope'"):
        get_sampler("optuna:Nope", _space())
    with pytest.raises(PluginError, match="Unknown pruner"):
        get_sampler("tpe", _space(), pruner="meridian")
