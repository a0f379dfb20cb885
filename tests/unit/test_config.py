from pathlib import Path

import pytest

from assay.config import apply_overrides, load_toml, load_yaml, parse_duration, parse_overrides, parse_value
from assay.errors import ConfigError


@pytest.mark.parametrize(("text", "value"), [
    ("3e-4", 3e-4), ("1e3", 1000.0), ("42", 42), ("0.5", 0.5), ("true", True), ("null", None),
    ("adamw", "adamw"), ("[1, 2]", [1, 2]), ("'007'", "007"), ("", ""),
])
def test_values_are_typed_by_yaml_rules(text, value):
    assert parse_value(text) == value


def test_overrides_parse_dotted_and_plus_keys():
    assert parse_overrides(["lr=3e-4", "model.depth=8", "+new=x"]) == [
        ("lr", 3e-4, False), ("model.depth", 8, False), ("new", "x", True)]


def test_malformed_override_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["lr"])


def test_unknown_key_suggests_the_closest_known_one():
    with pytest.raises(ConfigError) as err:
        apply_overrides({"lr": 1, "wd": 0}, [("lr_max", 2, False)], source="config.yaml")
    assert "Unknown parameter 'lr_max'" in err.value.message
    assert "Did you mean 'lr'?" in err.value.message
    assert "+lr_max" in err.value.hint


def test_overrides_set_nested_keys_and_plus_adds_without_touching_defaults():
    defaults = {"model": {"depth": 4, "width": 64}, "lr": 0.1}
    out = apply_overrides(defaults, [("model.depth", 8, False), ("extra.flag", True, True)])
    assert out == {"model": {"depth": 8, "width": 64}, "lr": 0.1, "extra": {"flag": True}}
    assert defaults["model"]["depth"] == 4


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), (45, 45), ("none", None)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration_names_the_format():
    with pytest.raises(ConfigError, match="10m"):
        parse_duration("ten minutes")


def test_malformed_yaml_names_file_and_line(tmp_path: Path):
    f = tmp_path / "config.yaml"
    f.write_text("lr: 0.1\nbatch: [1, 2\nseed: 0\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(f)
    assert f"{f}:" in err.value.message


def test_malformed_toml_names_the_file(tmp_path: Path):
    f = tmp_path / "assay.toml"
    f.write_text("[lab\nx = 1\n")
    with pytest.raises(ConfigError, match="Malformed TOML"):
        load_toml(f)
