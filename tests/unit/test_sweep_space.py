"""Search spaces: inline and file spellings, grid enumeration, validation against config.yaml."""

import pytest

from assay.errors import ConfigError
from assay.sweep.space import Choice, Range, space_from_args, space_from_mapping, validate_space


def test_inline_lists_become_choices_and_single_values_fixed():
    sp = space_from_args(["-m", "lr=1e-4,3e-4,1e-3", "batch=32,64", "epochs=3"])
    assert sp.dims["lr"] == Choice((1e-4, 3e-4, 1e-3))
    assert sp.dims["batch"] == Choice((32, 64))
    assert sp.fixed == {"epochs": 3}
    assert len(sp.grid()) == 6 and sp.grid()[0] == {"lr": 1e-4, "batch": 32} and sp.grid()[1] == {"lr": 1e-4, "batch": 64}


def test_hydra_functions_parse_to_ranges_and_choices():
    sp = space_from_args(["a=range(2,5)", "b=interval(0,0.5)", "c=log(1e-5,1e-2)", "d=tag(log,interval(1e-4,1e-1))",
                          "e=choice(relu,gelu)"])
    assert sp.dims["a"] == Range(2, 4, integer=True, step=1) and sp.dims["a"].grid() == (2, 3, 4)  # Hydra: stop excluded
    assert sp.dims["b"] == Range(0, 0.5, log=False, integer=False)
    assert sp.dims["c"].log and sp.dims["d"].log and sp.dims["d"].low == 1e-4
    assert sp.dims["e"] == Choice(("relu", "gelu"))


def test_integer_ranges_stay_ordered_ranges_for_optuna_and_lists_for_the_grid():
    from optuna.distributions import IntDistribution

    from assay.sweep.optuna_sampler import _distribution

    sp = space_from_args(["a=range(0,100000,5)", "b=range(10,0,-2)", "c=range(3,4)"])
    assert sp.dims["a"].grid()[:3] == (0, 5, 10) and sp.dims["a"].grid()[-1] == 99995
    assert _distribution("a", sp.dims["a"]) == IntDistribution(0, 99995, step=5)
    assert sp.dims["b"] == Choice((10, 8, 6, 4, 2))  # a descending range keeps its order as a list
    assert sp.dims["c"] == Choice((3,))


def test_yaml_ranges_infer_int_and_step_makes_them_gridable(tmp_path):
    text = "params:\n  layers: {low: 2, high: 4}\n  dropout: {low: 0.0, high: 0.2, step: 0.1}\n  model:\n    width: [64, 128]\n"
    sp = space_from_mapping({"layers": {"low": 2, "high": 4}, "dropout": {"low": 0.0, "high": 0.2, "step": 0.1},
                             "model": {"width": [64, 128]}}, {"epochs": 1}, tmp_path / "sweep.yaml", text)
    assert sp.dims["layers"].integer and sp.dims["model.width"] == Choice((64, 128))
    assert sp.dims["dropout"].grid() == (0.0, 0.1, 0.2)
    with pytest.raises(ConfigError, match="cannot enumerate the continuous range 'layers'") as e:
        sp.grid()
    assert "sweep.yaml:2" in str(e.value)


def test_unknown_key_names_its_source_and_the_closest_known_key():
    sp = space_from_args(["lr_max=1,2"])
    with pytest.raises(ConfigError) as e:
        validate_space(sp, {"lr": 0.1, "wd": 0.0}, "experiments/x/config.yaml")
    msg = str(e.value)
    assert "Unknown parameter 'lr_max'" in msg and "command line 'lr_max=1,2'" in msg and "Did you mean 'lr'?" in msg
    validate_space(space_from_args(["+new=1,2", "lr=1,2"]), {"lr": 0.1}, "config.yaml")  # '+' adds on purpose


@pytest.mark.parametrize("item, match", [
    ("lr=log(0,1)", "needs low > 0"),
    ("lr=interval(1,0.5)", "low 1 >= high 0.5"),
    ("lr=range(0.5,2)", "range\\(\\) takes 1-3 integers"),
    ("lr", "expected key=v1,v2"),
    ("lr=interval(a,b)", "is not a number"),
])
def test_bad_inline_values_say_what_to_write(item, match):
    with pytest.raises(ConfigError, match=match):
        space_from_args([item])


def test_a_sweep_that_varies_nothing_is_an_error():
    with pytest.raises(ConfigError, match="varies no parameter"):
        validate_space(space_from_args(["lr=0.1"]), {"lr": 0.2}, "config.yaml")


def test_yaml_exponent_strings_are_numbers():
    sp = space_from_mapping({"lr": [1e-4, "3e-4"], "wd": {"low": "1e-5", "high": "1e-2", "log": True}}, {"eps": "1e-8"})
    assert sp.dims["lr"] == Choice((1e-4, 3e-4)) and sp.dims["wd"].low == 1e-5 and sp.fixed == {"eps": 1e-8}
