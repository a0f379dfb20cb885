"""LTTB downsampling and the incremental metrics reader behind the charts."""

from __future__ import annotations

import math

from assay.web.lttb import lttb
from assay.web.series import SeriesCache


def test_lttb_keeps_ends_count_and_a_lone_spike():
    xs = list(range(10_000))
    ys = [0.0] * 10_000
    ys[4321] = 100.0
    idx = lttb(xs, ys, 100)
    assert len(idx) == 100 and idx[0] == 0 and idx[-1] == 9_999 and idx == sorted(idx)
    assert 4321 in idx  # a stride would drop it
    assert lttb([0, 1, 2], [1.0, 2.0, 3.0], 10) == [0, 1, 2]
    assert lttb(xs, ys, 2) == [0, 9_999]


def test_reader_is_incremental_and_tolerates_torn_and_corrupt_lines(tmp_path):
    f = tmp_path / "metrics.jsonl"
    f.write_text('{"step":0,"m":{"loss":1.0}}\nnot json\n{"step":1,"m":{"loss":NaN}}\n{"step":2,"m":{"loss":0.5}}\n{"step":3,"m":{"lo')
    cache = SeriesCache()
    s = cache.series(tmp_path, ["loss"], 100)["loss"]
    assert s["steps"] == [0, 2] and s["values"] == [1.0, 0.5] and s["count"] == 3 and s["nonfinite"] == 1
    with f.open("a") as fh:  # the torn line completes, and more arrive
        fh.write('ss":0.25}}\n{"step":4,"src":"out","m":{"loss":9.0,"val":0.1}}\n')
    s = cache.series(tmp_path, None, 100)
    assert s["loss"]["values"] == [1.0, 0.5, 0.25]  # logged through the API wins over a printed line
    assert s["val"]["values"] == [0.1] and cache.keys(tmp_path) == ["loss", "val"]
    assert all(math.isfinite(v) for v in s["loss"]["values"])


def test_missing_metrics_file_is_an_empty_chart(tmp_path):
    assert SeriesCache().series(tmp_path, None, 100) == {}
