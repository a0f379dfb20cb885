"""Fuzzing what an outsider or a careless user types: experiment names, override strings, experiment.yaml
and config.yaml content, printed metric lines. Every failure must be an AssayError (a one-line message
in the CLI), never another exception (a traceback).

Deterministic (derandomized) with a fixed number of examples, so it runs the same in CI, in ~10 s.
Failing inputs found earlier are pinned with @example.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assay.capture import Capture
from assay.config import apply_overrides, parse_overrides
from assay.errors import AssayError

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NAME_PARTS = st.sampled_from(["exp", "..", ".", "/", "\\", "~", "-", "_", "a", "0", " ", "\x00", "é", "%2e", "*", "\n",
                              "/etc/passwd", "C:", "runs", "experiment.yaml", "." * 3])
names = st.one_of(st.text(max_size=30), st.lists(NAME_PARTS, max_size=8).map("".join))

OVERRIDE_PARTS = st.sampled_from(["lr", "seed", "a", ".", "+", "++", "=", "[", "]", "{", "}", ",", ":", "'", '"', " ",
                                  "1", "-1", "99999999999999999999999", "1e999", "nan", "inf", "null", "true", "&x",
                                  "*x", "!!python/object:os.system", "\\", "\n", "a.b", "[" * 80, "]" * 80, "{a: " * 70])
overrides = st.lists(st.one_of(st.text(max_size=30), st.lists(OVERRIDE_PARTS, max_size=10).map("".join)), max_size=4)

YAML_KEYS = ["metric", "name", "goal", "entry", "hypothesis", "success", "failure", "secondary_metrics", "capture",
             "patterns", "timeout", "seed", "lr", "on", "yes", "1", "<<", "'q'", "data", "smoke", "units"]
YAML_VALUES = ["5", "max", "min", "val_bpb", "train.py", "\"python 'x\"", "'python \"x'", "[]", "{}", "[1, [2]]",
               "{name: 5}", "{name: val_bpb, goal: sideways}", "&a [*a]", "&b {k: *b}", "*nope", "&c 1", "*c", "null",
               "~", "1e999", "99999999999999999999999", "val_bpb >= 0.5", "val_bpb[lr=1] > val_bpb[lr=2]", "!!binary aGk=",
               "!!python/object/apply:os.system ['true']", "2024-01-01", "'(?P<value>'", "[" * 70 + "]" * 70]


@st.composite
def yaml_docs(draw) -> str:  # noqa: ANN001
    """A YAML mapping of assay's own keys with hostile values, duplicates, aliases and odd indentation."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        indent = draw(st.sampled_from(["", "", "", "  ", "    ", "\t"]))
        key = draw(st.sampled_from(YAML_KEYS))
        value = draw(st.one_of(st.sampled_from(YAML_VALUES), st.text(max_size=12)))
        lines.append(f"{indent}{key}: {value}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n---\nx: 1\n", "\n...\n"]))


structured = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                          max_leaves=8)
yaml_texts = st.one_of(yaml_docs(), structured.map(lambda v: yaml.safe_dump({"metric": v, "entry": v})),
                       st.text(max_size=200))

METRIC_WORDS = st.sampled_from(["val_bpb", "loss", "step", "epoch", "=", ":", " ", "\t", "{", "}", '"', "1e999", "-inf",
                                "nan", "99999999999999999999999", "metrics", "metric", "0x10", "1_000", "é", "\x00",
                                "[", "]", "|", "/", "%", "e", "."])
metric_lines = st.one_of(st.text(max_size=120), st.lists(METRIC_WORDS, max_size=16).map(" ".join),
                         st.lists(METRIC_WORDS, max_size=16).map("".join))


def _experiment(lab, name: str = "fz"):  # noqa: ANN001, ANN202
    path = lab.experiment_dir(name)
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.py").write_text("print('val_bpb: 1')\n")
    return path


@FUZZ
@given(names)
@example("../../x")
@example("/abs/path")
@example(".hidden")
@example("a" * 300)
@example("exp\x00")
def test_any_experiment_name_loads_or_raises_an_assay_error(lab, name):
    from assay.experiment import load_experiment

    try:
        exp = load_experiment(lab, name)
    except AssayError:
        return
    assert exp.path.resolve().is_relative_to(lab.experiments_dir.resolve())


@FUZZ
@given(overrides)
@example(["seed=99999999999999999999999"])
@example(["+" + ".".join(["a"] * 500) + "=1"])
@example(["+deep=" + "[" * 3000 + "]" * 3000])
@example(["+d={a: " * 70 + "1" + "}" * 70])
@example(["lr=[1, 2", "lr=1e999"])
def test_any_override_strings_apply_or_raise_an_assay_error(items):
    try:
        params = apply_overrides({"seed": 0, "lr": 0.1, "a": {"b": 1}}, parse_overrides(items))
    except AssayError:
        return
    import json

    json.dumps(params, default=str)  # what the runner does with them next


@FUZZ
@given(yaml_texts, yaml_texts, overrides)
@example("metric: 5\n", "seed: 0\n", [])
@example("metric: val_bpb\nentry: \"python 'x\"\n", "seed: 0\n", [])
@example("metric: val_bpb\n", "a: &x [*x]\n", [])
@example("metric: val_bpb\n", "seed: 0\nseed: 1\n", [])
@example("metric: {name: val_bpb}\ncapture: [1]\n", "", [])
@example("metric: val_bpb\n", "on: 1\n", ["seed=1"])
def test_any_experiment_and_config_yaml_load_or_raise_an_assay_error(lab, experiment_text, config_text, items):
    from assay.experiment import load_experiment
    from assay.runner.launch import entry_command, resolve_params

    path = _experiment(lab)
    (path / "experiment.yaml").write_text(experiment_text, encoding="utf-8")
    (path / "config.yaml").write_text(config_text, encoding="utf-8")
    try:
        exp = load_experiment(lab, "fz")
        resolve_params(exp, items)
        entry_command(lab, exp, exp.entry)
        Capture(exp.capture)
    except AssayError:
        return
    assert isinstance(exp.metric, str) and isinstance(exp.entry, str)


@FUZZ
@given(metric_lines, st.lists(st.sampled_from(["(?P<value>\\S+)", "(?P<name>\\w+)=(?P<value>\\S+)", "(", "x{99999}",
                                               "(?P<name>.*)(?P<value>.*)", "\\d+"]), max_size=2))
@example("epoch=99999999999999999999999 val_bpb=1", [])
@example("step=1e999 loss=1", [])
@example('metric {"loss": 1e999, "step": 99999999999999999999999}', [])
def test_any_printed_metric_line_parses_or_the_pattern_is_an_assay_error(line, patterns):
    try:
        cap = Capture({"patterns": patterns})
    except AssayError:
        return
    step, found = cap.parse(line)
    assert step is None or isinstance(step, int)
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in found.items())
