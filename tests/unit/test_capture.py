import math

import pytest

from assay.capture import Capture
from assay.errors import ConfigError


def test_autoresearch_summary_block():
    c = Capture()
    assert c.parse("val_bpb:          0.997900") == (0, {"val_bpb": 0.9979})
    assert c.parse("peak_vram_mb:     45060.2") == (0, {"peak_vram_mb": 45060.2})
    assert c.parse("---") == (None, {})


def test_equals_pairs_with_explicit_step():
    assert Capture().parse("step=10 loss=0.32 lr=3e-4") == (10, {"loss": 0.32, "lr": 3e-4})


def test_json_metric_lines_loguru_style():
    line = '2026-01-01 12:00:00 | INFO | metric {"val_f1": 0.81, "epoch": 3}'
    assert Capture().parse(line) == (3, {"val_f1": 0.81})


def test_steps_count_occurrences_when_not_given():
    c = Capture()
    assert [c.parse("loss: 1.0")[0], c.parse("loss: 0.5")[0], c.parse("loss: 0.2")[0]] == [0, 1, 2]


def test_nan_and_inf_are_captured():
    _, m = Capture().parse("val_loss: nan")
    assert math.isnan(m["val_loss"])
    assert Capture().parse("loss=inf")[1] == {"loss": math.inf}


def test_prose_is_not_a_metric():
    c = Capture()
    for line in ["Epoch 1: training started", "Saving to /tmp/x: done", "see https://x.org/a=b", "a == b"]:
        assert c.parse(line) == (None, {}), line


def test_custom_patterns_and_ignore():
    c = Capture({"formats": ["colon"], "patterns": [r"val acc (?P<val_acc>[\d.]+)"], "ignore": [r"^DEBUG"]})
    assert c.parse("epoch 3 val acc 0.91") == (0, {"val_acc": 0.91})
    assert c.parse("DEBUG loss: 0.1") == (None, {})
    assert c.parse("loss=0.1") == (None, {})  # equals format not selected


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match="Did you mean 'colon'"):
        Capture({"formats": ["colom"]})


def test_a_line_that_is_only_an_ansi_escape_holds_no_metrics():
    # tqdm under a pipe writes `\r\x1b[A\r` between bars: split on \r, the middle piece is the escape alone
    assert Capture().parse("\x1b[A") == (None, {})
