"""Property-based fuzzing of everything that reads user text: no crash other than a clear AssayError.

Config files (YAML, TOML), `key=value` overrides and their application, durations, run filters,
metric-line capture (built-in parsers and user patterns), metrics.jsonl and results.tsv reading.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assay.capture import Capture
from assay.config import apply_overrides, load_toml, load_yaml, parse_duration, parse_overrides, parse_value
from assay.errors import AssayError, ConfigError, StoreError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,8}(\.[A-Za-z_][A-Za-z0-9_]{0,5}){0,2}", fullmatch=True)
numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True))
metric_words = st.sampled_from(["val_bpb", "loss", "acc", "step", "epoch", "lr", "val/acc", "nan", "inf", "metric",
                                "metrics", "=", ":", " ", "{", "}", '"', ",", "-", "e", "1e-3", ".5", "-inf"])
line_like = st.one_of(st.text(max_size=200), st.lists(metric_words, max_size=12).map(" ".join),
                      st.lists(metric_words, max_size=12).map("".join))


@FUZZ
@given(st.lists(st.text(max_size=40), max_size=5))
@example(["=1"])
@example(["a..b=1"])
@example(["++a=1"])
@example(["a=[1, 2"])
@example(["a=!!python/object:os.system"])
@example(["a=*anchor"])
def test_overrides_parse_or_raise_config_error(items):
    try:
        parsed = parse_overrides(items)
    except ConfigError:
        return
    for o, item in zip(parsed, items):
        assert o.key and "=" not in o.key and o.text == item


@settings(FUZZ, max_examples=60)
@given(st.dictionaries(names, st.one_of(numbers, st.text(max_size=5), st.dictionaries(names, numbers, max_size=3)),
                       max_size=5),
       st.lists(st.tuples(names, st.text(max_size=10), st.booleans()), max_size=5))
def test_apply_overrides_never_crashes_and_never_mutates_defaults(defaults, raw):
    import copy

    before = copy.deepcopy(defaults)
    items = [f"{'+' if plus else ''}{k}={v}" for k, v, plus in raw]
    try:
        params = apply_overrides(defaults, parse_overrides(items))
    except ConfigError:
        return
    finally:
        assert repr(defaults) == repr(before), "defaults mutated"  # repr: NaN != NaN
    if raw:  # the last override always lands (earlier ones may be replaced by a later parent key)
        node = params
        for part in raw[-1][0].split(".")[:-1]:
            node = node[part]
        assert raw[-1][0].split(".")[-1] in node


@FUZZ
@given(st.text(max_size=30))
def test_parse_value_returns_a_value(text):
    parse_value(text)  # any YAML oddity falls back to the string


@FUZZ
@given(st.one_of(st.text(max_size=20), st.floats(allow_nan=False), st.integers(), st.none()))
@example("1h30m")
@example("10m 5s")
@example("nan")
@example("1e400s")
def test_durations_parse_or_raise_config_error(text):
    try:
        value = parse_duration(text)
    except ConfigError:
        return
    assert value is None or isinstance(value, float)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(b"a: [1, 2\n")
@example(b"\xff\xfe")
@example(b"!!python/object/apply:os.system ['true']\n")
@example(b"a: &x [*x]\n")
def test_yaml_files_load_or_raise_config_error(tmp_path_factory, data):
    path = Path(tmp_path_factory.mktemp("y")) / "config.yaml"
    path.write_bytes(data)
    try:
        load_yaml(path)
    except ConfigError as exc:
        assert str(path) in exc.message


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(b"[tool.assay\n")
@example(b"\xff")
def test_toml_files_load_or_raise_config_error(tmp_path_factory, data):
    path = Path(tmp_path_factory.mktemp("t")) / "assay.toml"
    path.write_bytes(data)
    try:
        load_toml(path)
    except ConfigError as exc:
        assert str(path) in exc.message


@FUZZ
@given(line_like)
@example("val_bpb: 1e999")
@example("loss=1e-3 step=nan")
@example("step=inf loss=1")
@example('metric {"loss": 1e999, "step": 1e300}')
@example('metrics {"a": NaN}')
@example("epoch=99999999999999999999999 loss=1")
@example("{'loss': 1e999, 'epoch': float('nan')}")
@example("{'loss': '1e999', 'epoch': 1e308}")
@example("{'eval_loss': 0.3, 'epoch': 1e400}")
@example("[1]\tx:1e999+nan")
@example("Epoch 1: 100%|| 1/1 [, a=1e999, b=]")
@example("step 1: loss nan, time infms")
@example("1/1 [] - loss: inf")
@example("X(" + "(" * 2000)
def test_metric_capture_never_raises(line):
    cap = Capture()
    step, found = cap.parse(line)
    assert isinstance(found, dict)
    assert all(isinstance(v, float) for v in found.values())
    assert step is None or isinstance(step, int)


@FUZZ
@given(st.lists(st.text(max_size=20), max_size=3), st.lists(st.text(max_size=20), max_size=2),
       st.lists(st.text(max_size=8), max_size=3), line_like)
@example(["(?P<name>\\w+) -> (?P<value>\\S+)"], [], ["colon"], "loss -> abc")
@example(["(?P<x>.*)"], [], [], "hello")
@example(["("], [], [], "x")
def test_user_capture_patterns_raise_config_error_or_parse(patterns, ignore, formats, line):
    try:
        cap = Capture({"patterns": patterns, "ignore": ignore, "formats": formats})
    except ConfigError:
        return
    step, found = cap.parse(line)
    assert all(isinstance(v, float) for v in found.values())


@FUZZ
@given(st.text(max_size=60))
@example("val_bpb>0.5 and lr<=1e-3, status=ok")
@example("x ~ '")
@example("lr==[1,")
@example("a>b>c")
def test_run_filters_parse_or_raise_config_error(expr):
    from assay.store.query import parse_where

    known = {"val_bpb", "loss"}
    try:
        filters = parse_where(expr, known, {"lr", "opt"})
    except ConfigError:
        return
    for f in filters:
        assert f.sql.count("?") == len(f.args)


@FUZZ
@given(st.binary(max_size=600))
@example(b'{"t": 1, "step": 0, "m": {"a": 1}}\n{"t": 1, "step": "x", "m": {"a": "b"}}\n')
@example(b'{"m": [1]}\n{"m": {"a": true}}\n{"step": 1e999, "m": {"a": 1}}\n')
@example(b'{"params": 3}\n{"tags": null}\n{"artifact": {}}\n')
def test_metrics_files_are_read_without_crashing(tmp_path_factory, data):
    from assay.store import records

    run = Path(tmp_path_factory.mktemp("run"))
    (run / records.METRICS_FILE).write_bytes(data)
    summary = records.summarize(run, lambda k: "min")
    for k, s in summary["metrics"].items():
        assert isinstance(k, str) and s["count"] >= 1
    assert records.torn_tail(run) >= 0


TSV_CELLS = st.text(alphabet=string.printable + "é\x00", max_size=12)


@FUZZ
@given(st.lists(st.lists(TSV_CELLS, max_size=15), max_size=6), st.booleans(), st.text(max_size=40))
@example([["commit", "metric", "memory_gb", "status", "description"], ["abc", "1.0", "", "keep", "x"]], False, "")
@example([["a", "b", "c", "d", "e", "f"] * 3], True, "\t\t\t")
def test_results_tsv_reads_or_raises_store_error(tmp_path_factory, rows, valid_header, tail):
    from assay.loop import results

    path = Path(tmp_path_factory.mktemp("tsv")) / "results.tsv"
    lines = (["\t".join(results.COLUMNS)] if valid_header else []) + ["\t".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    try:
        out = results.read(path)
    except StoreError:
        return
    assert all(isinstance(r, results.Row) for r in out)


def test_an_undecodable_results_tsv_is_a_store_error(tmp_path):
    from assay.loop import results

    path = tmp_path / "results.tsv"
    path.write_bytes("\t".join(results.COLUMNS).encode() + b"\n\x80\xff\tkeep\n")
    with pytest.raises(StoreError):
        results.read(path)


def test_every_error_raised_above_is_an_assay_error():
    assert issubclass(ConfigError, AssayError) and issubclass(StoreError, AssayError)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12)),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)


@FUZZ
@given(json_values)
@example(float("-inf"))
@example(float("nan"))
@example(-0.0)
@example(1e100)
@example(10**30)
@example('say "hi"')
@example("é\\n")
@example("3.5")
@example("")
def test_param_fast_decoding_reads_back_what_the_index_stored(value):
    import json

    from assay.store.index import param_value

    text = json.dumps(value, default=str)
    got, want = param_value(text), json.loads(text)
    assert type(got) is type(want)
    assert json.dumps(got) == json.dumps(want)  # equal, NaN included
