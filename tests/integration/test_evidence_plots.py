"""Figures from real runs: the plotted series equal what metrics.jsonl holds; ignored runs stay out."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from assay.runner import RunSpec, run_experiment

SCRIPT = """
import math
import assay
p = assay.params()
run = assay.init()
for step in range(4):
    assay.log({"loss": p["lr"] / (step + 1) + p["seed"] * 0.001, "acc": 0.5 + 0.1 * step + p["seed"] * 0.01}, step=step)
assay.log({"loss": float("nan")}, step=4)
"""


@pytest.fixture
def exp(make_experiment):
    return make_experiment(SCRIPT, config={"seed": 0, "lr": 0.1}, metric="acc", goal="max", units={"loss": "nats"})


def logged(run_dir: Path, metric: str) -> list[tuple[int, float | None]]:
    """(step, value) of `metric` straight from metrics.jsonl, NaN as None."""
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if metric in ev.get("m", {}):
            v = ev["m"][metric]
            out.append((ev["step"], None if v != v else v))
    return out


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_run_curves_plot_exactly_the_logged_points(lab, exp, cli):
    (res,) = run_experiment(lab, RunSpec("exp", "one", ["lr=0.2"]))
    out = cli("plot", res.record["id"], "--metric", "loss,acc", "--json")
    assert out.returncode == 0, out.stderr
    figs = json.loads(out.stdout)
    assert [Path(f["path"]).name for f in figs] == ["curve_loss.png", "curve_acc.png"]
    for f, metric in zip(figs, ("loss", "acc")):
        assert Path(f["path"]).parent == res.path / "plots"
        assert png_size(Path(f["path"]))[0] > 300
        side = json.loads(Path(f["sidecar"]).read_text())
        (series,) = side["series"]
        assert side["sources"] == [f"runs/{res.path.name}/metrics.jsonl"]
        assert list(zip(series["steps"], series["values"])) == logged(res.path, metric)
    assert json.loads(Path(figs[0]["sidecar"]).read_text())["better"] == "min"


def test_unlogged_metric_is_an_error_naming_what_was_logged(lab, exp, cli):
    (res,) = run_experiment(lab, RunSpec("exp", "one"))
    out = cli("plot", res.record["id"], "--metric", "val_loss")
    assert out.returncode == 2
    assert "never logged 'val_loss'" in out.stderr and "acc, loss" in out.stderr


def test_compare_bars_sweeps_and_curves_come_from_the_runs_and_skip_ignored(lab, exp, cli):
    from assay.report.plots import plot_experiment

    a = run_experiment(lab, RunSpec("exp", "a", ["lr=0.1"], repeat=2))
    b = run_experiment(lab, RunSpec("exp", "b", ["lr=0.3"], repeat=2))
    (bad,) = run_experiment(lab, RunSpec("exp", "bad", ["lr=0.3"]))
    assert cli("ignore", bad.record["id"], "--why", "wrong data").returncode == 0
    figs = {f.kind: f for f in plot_experiment(lab, "exp")}
    assert set(figs) == {"compare_curves", "bars", "sweep"}
    for f in figs.values():
        assert f.path.parent == exp.path / "plots" and png_size(f.path)[1] > 200
    bars = json.loads(figs["bars"].sidecar.read_text())
    assert [b_["label"] for b_ in bars["bars"]] == ["lr=0.1", "lr=0.3"]
    for bar, group in zip(bars["bars"], (a, b)):
        finals = {r.record["id"]: logged(r.path, "acc")[-1][1] for r in group}
        assert bar["values"] == pytest.approx(finals)
        assert bar["mean"] == pytest.approx(statistics.fmean(finals.values()))
        assert bar["std"] == pytest.approx(statistics.stdev(finals.values()))
        assert bar["ci95"][0] < bar["mean"] < bar["ci95"][1]
    (left_out,) = bars["excluded"]
    assert left_out["run"] == bad.record["id"] and left_out["why"].startswith("ignored: wrong data")
    curves = json.loads(figs["compare_curves"].sidecar.read_text())
    assert {s["run"] for s in curves["series"]} == {r.record["id"] for r in a + b}
    for s in curves["series"]:
        run_dir = exp.path / Path(s["source"]).parent
        assert list(zip(s["steps"], s["values"])) == logged(run_dir, "acc")
    sweep = json.loads(figs["sweep"].sidecar.read_text())
    assert sweep["x"] == "lr" and sorted(p["x"] for p in sweep["points"]) == [0.1, 0.1, 0.3, 0.3]


def test_webp_when_pillow_supports_it(lab, exp):
    from PIL import features

    from assay.report.plots import plot_run

    (res,) = run_experiment(lab, RunSpec("exp", "one"))
    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    (fig,) = plot_run(lab, res.record["id"], ["acc"], fmt="webp")
    data = fig.path.read_bytes()
    assert fig.path.suffix == ".webp" and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
