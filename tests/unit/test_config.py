from pathlib import Path

import pytest

from assay.config import Override, apply_overrides, load_toml, load_yaml, parse_duration, parse_overrides, parse_value
from assay.errors import ConfigError


@pytest.mark.parametrize(("text", "value"), [
    ("3e-4", 3e-4), ("1e3", 1000.0), ("1e-05", 1e-5), ("1.5E-2", 0.015), ("42", 42), ("-3", -3), ("+7", 7),
    ("1_000", 1000), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("1.10", 1.1), ("inf", float("inf")),
    ("true", True), ("False", False), ("TRUE", True), ("null", None), ("NULL", None),
    ("adamw", "adamw"), ("[1, 2]", [1, 2]), ("'007'", "007"), ('"a b"', "a b"), ("", ""), (" 8 ", 8),
])
def test_values_are_typed_by_hydras_grammar(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize("text", ["no", "yes", "on", "off", "y", "n", "No", "OFF", "~", "007", "0x10", "2024-01-01",
                                  "1.2.3", "a,b", "1e", "12:30", "1__0"])
def test_yaml_11_words_numbers_and_dates_stay_strings(text):
    assert parse_value(text) == text


def test_list_items_are_typed_by_the_same_rules():
    assert parse_value("[no, 1.10, '3', null, true, 1_000]") == ["no", 1.1, "3", None, True, 1000]
    assert parse_value("{a: on, b: 2}") == {"a": "on", "b": 2}


def test_overrides_parse_dotted_and_plus_keys_and_keep_the_text_as_typed():
    assert parse_overrides(["lr=3e-4", "model.depth=8", "+new=x", "version=1.10"]) == [
        Override("lr", 3e-4, False, "lr=3e-4"), Override("model.depth", 8, False, "model.depth=8"),
        Override("new", "x", True, "+new=x"), Override("version", 1.1, False, "version=1.10")]


def test_a_string_default_keeps_the_value_a_string():
    defaults = {"version": "1.9", "country": "fr", "n": 3, "tag": "x", "opt": {"name": "adam"}}
    out = apply_overrides(defaults, parse_overrides(["version=1.10", "country=no", "n=1.10", "tag=null", "opt.name=1e-3"]))
    assert out == {"version": "1.10", "country": "no", "n": 1.1, "tag": None, "opt": {"name": "1e-3"}}


def test_values_set_by_code_keep_their_type_and_record_json():
    o = Override.of("version", 2)
    assert o.text == "version=2" and not o.literal
    assert apply_overrides({"version": "1.9"}, [o]) == {"version": 2}


def test_malformed_override_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["lr"])


def test_unknown_key_suggests_the_closest_known_one():
    with pytest.raises(ConfigError) as err:
        apply_overrides({"lr": 1, "wd": 0}, parse_overrides(["lr_max=2"]), source="config.yaml")
    assert "Unknown parameter 'lr_max'" in err.value.message
    assert "Did you mean 'lr'?" in err.value.message
    assert "+lr_max" in err.value.hint


def test_overrides_set_nested_keys_and_plus_adds_without_touching_defaults():
    defaults = {"model": {"depth": 4, "width": 64}, "lr": 0.1}
    out = apply_overrides(defaults, parse_overrides(["model.depth=8", "+extra.flag=true"]))
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
