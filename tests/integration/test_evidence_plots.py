"""Figures from real runs: the plotted series equal what metrics.jsonl holds; ignored runs stay out."""

from __future__ import annotations

import json
import shutil
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


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "figures"


def keep_artifact(image: Path, case: str) -> None:
    """Copy a figure to tests/artifacts/figures/CASE/ (gitignored) to look at after the run."""
    folder = ARTIFACTS / case
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, folder / image.name)


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


def test_compare_intervals_sweeps_and_curves_come_from_the_runs_and_skip_ignored(lab, exp, cli):
    from assay.report.plots import plot_experiment

    a = run_experiment(lab, RunSpec("exp", "a", ["lr=0.1"], repeat=2))
    b = run_experiment(lab, RunSpec("exp", "b", ["lr=0.3"], repeat=2))
    (bad,) = run_experiment(lab, RunSpec("exp", "bad", ["lr=0.3"]))
    assert cli("ignore", bad.record["id"], "--why", "wrong data").returncode == 0
    figs = {f.kind: f for f in plot_experiment(lab, "exp")}
    assert set(figs) == {"intervals", "compare_curves", "sweep"}
    for f in figs.values():
        assert f.path.parent == exp.path / "plots" and png_size(f.path)[1] > 200
        keep_artifact(f.path, "compare")
    intervals = json.loads(figs["intervals"].sidecar.read_text())
    assert [c["label"] for c in intervals["configurations"]] == ["lr=0.1", "lr=0.3"]
    for conf, group in zip(intervals["configurations"], (a, b)):
        finals = {r.record["id"]: logged(r.path, "acc")[-1][1] for r in group}
        assert conf["values"] == pytest.approx(finals)
        assert conf["mean"] == pytest.approx(statistics.fmean(finals.values()))
        assert conf["std"] == pytest.approx(statistics.stdev(finals.values()))
        assert conf["ci95"][0] < conf["mean"] < conf["ci95"][1]
    (left_out,) = intervals["excluded"]
    assert left_out["run"] == bad.record["id"] and left_out["why"].startswith("ignored: wrong data")
    curves = json.loads(figs["compare_curves"].sidecar.read_text())
    assert {s["run"] for s in curves["series"]} == {r.record["id"] for r in a + b}
    for s in curves["series"]:
        run_dir = exp.path / Path(s["source"]).parent
        assert list(zip(s["steps"], s["values"])) == logged(run_dir, "acc")
    sweep = json.loads(figs["sweep"].sidecar.read_text())
    assert sweep["x"] == "lr" and sorted(p["x"] for p in sweep["points"]) == [0.1, 0.1, 0.3, 0.3]


# One value per run, around 0.9: what a classifier's final accuracy looks like.
ONE_VALUE = """
import assay
p = assay.params()
assay.init()
assay.log({"acc": 0.9 + p["lr"] * 0.05 + p["wd"] * 0.01 + p["seed"] * 0.002})
"""


@pytest.fixture
def single(make_experiment):
    return make_experiment(ONE_VALUE, name="single", config={"seed": 0, "lr": 0.1, "wd": 0.0}, metric="acc",
                           goal="max", success="acc >= 0.91", failure="acc < 0.5")


def test_intervals_span_the_data_not_zero_and_draw_the_verdicts_thresholds(lab, single):
    from assay.report.plots import plot_experiment

    for lr in (0.1, 0.3):
        run_experiment(lab, RunSpec("single", f"lr {lr}", [f"lr={lr}"], repeat=3))
    figs = plot_experiment(lab, "single")
    for f in figs:
        keep_artifact(f.path, "single")
    side = json.loads(figs[0].sidecar.read_text())
    assert figs[0].kind == "intervals"
    lo, hi = side["value_axis"]
    values = [v for c in side["configurations"] for v in c["values"].values()]
    assert 0.85 < lo <= min(values) and max(values) <= hi < 0.95  # the axis spans the data, not 0..1
    assert {(t["criterion"], t["drawn"]) for t in side["thresholds"]} == {
        ("acc >= 0.91", "line"), ("acc < 0.5", "off scale (left)")}


def test_single_value_runs_get_no_per_step_figure_and_intervals_come_first(lab, single):
    from assay.report.plots import plot_experiment
    from assay.report.report import write_report

    run_experiment(lab, RunSpec("single", "a", ["lr=0.1"], repeat=2))
    run_experiment(lab, RunSpec("single", "b", ["lr=0.3"], repeat=2))
    assert [f.kind for f in plot_experiment(lab, "single")] == ["intervals", "sweep"]
    assert not list((single.path / "plots").glob("compare_curves_*"))
    res = write_report(lab, "single")
    text = res.markdown.read_text()
    assert "*Figure 1: single: acc per configuration" in text and "per step" not in text


def test_a_repeated_seed_is_marked_duplicate_and_left_out_of_the_mean(lab, exp):
    from assay.report.plots import plot_experiment

    first = run_experiment(lab, RunSpec("exp", "a", ["lr=0.1"], repeat=2))  # seeds 0 and 1
    (again,) = run_experiment(lab, RunSpec("exp", "again", ["lr=0.1", "seed=1"]))
    run_experiment(lab, RunSpec("exp", "b", ["lr=0.3"], repeat=2))
    figs = {f.kind: f for f in plot_experiment(lab, "exp")}
    for f in figs.values():
        keep_artifact(f.path, "duplicate")
    dup = next(r for r in first if r.record["seed"] == 1).record["id"]  # the earlier run of seed 1
    intervals = json.loads(figs["intervals"].sidecar.read_text())
    conf = intervals["configurations"][0]
    assert set(conf["duplicates"]) == {dup} and dup not in conf["values"]
    assert set(conf["values"]) == {first[0].record["id"], again.record["id"]}
    assert conf["mean"] == pytest.approx(statistics.fmean(conf["values"].values()))
    (why,) = [e["why"] for e in intervals["excluded"] if e["run"] == dup]
    assert why.startswith("duplicate: seed 1 of lr=0.1")
    curves = json.loads(figs["compare_curves"].sidecar.read_text())
    (series,) = [s for s in curves["series"] if s["run"] == dup]
    assert series["role"] == "duplicate" and "not ok" not in series["label"] and series["color"] == conf["color"]
    assert all("not ok" not in s["label"] for s in curves["series"])


def test_each_configuration_keeps_one_colour_across_every_figure(lab, make_experiment):
    from assay.report.plots import plot_experiment

    make_experiment(SCRIPT.replace('p["lr"] /', '(p["lr"] + p["wd"]) /'), config={"seed": 0, "lr": 0.1, "wd": 0.0},
                    metric="acc", goal="max")
    for lr in (0.3, 0.1):  # run out of order: figures sort configurations by their params
        for wd in (0.0, 0.5):
            run_experiment(lab, RunSpec("exp", f"{lr} {wd}", [f"lr={lr}", f"wd={wd}"], repeat=2))
    figs = plot_experiment(lab, "exp")
    sides = {f.path.stem: json.loads(f.sidecar.read_text()) for f in figs}
    for f in figs:
        keep_artifact(f.path, "colours")
    confs = sides["compare_intervals_acc"]["configurations"]
    assert [c["label"] for c in confs] == ["lr=0.1, wd=0", "lr=0.1, wd=0.5", "lr=0.3, wd=0", "lr=0.3, wd=0.5"]
    colour = {c["label"]: c["color"] for c in confs}
    assert len(set(colour.values())) == 4
    run_colour = {rid: c["color"] for c in confs for rid in c["values"]}
    curves = sides["compare_curves_acc"]["series"]
    assert len(curves) == 8 and all(s["color"] == run_colour[s["run"]] for s in curves)
    for stem in ("sweep_lr_acc", "sweep_wd_acc"):
        points = sides[stem]["points"]
        assert len(points) == 8 and all(p["color"] == colour[p["config"]] == run_colour[p["run"]] for p in points)
    lr, wd = sides["sweep_lr_acc"], sides["sweep_wd_acc"]
    assert lr["mixed"] == ["wd"] and "one marker and line per wd" in lr["title"]
    assert {p["group"] for p in lr["points"]} == {"wd=0", "wd=0.5"} and {p["group"] for p in wd["points"]} == {"lr=0.1", "lr=0.3"}


def test_svg_and_pdf_figures_and_a_report_that_embeds_svg(lab, exp, cli):
    run_experiment(lab, RunSpec("exp", "a", ["lr=0.1"], repeat=2))
    run_experiment(lab, RunSpec("exp", "b", ["lr=0.3"], repeat=2))
    out = cli("plot", "exp", "--compare", "--format", "svg", "--json")
    assert out.returncode == 0, out.stderr
    svgs = [Path(f["path"]) for f in json.loads(out.stdout)]
    assert [p.suffix for p in svgs] == [".svg"] * 3
    text = svgs[0].read_text()
    assert "<svg" in text and "acc per configuration" in text  # text kept as text
    out = cli("plot", "exp", "--compare", "--format", "pdf", "--json")
    assert out.returncode == 0, out.stderr
    assert all(Path(f["path"]).read_bytes()[:5] == b"%PDF-" for f in json.loads(out.stdout))
    out = cli("report", "exp", "--format", "pdf")
    assert out.returncode == 2 and "Unknown figure format 'pdf'" in out.stderr and "svg" in out.stderr
    out = cli("report", "exp", "--format", "svg")
    assert out.returncode == 0, out.stderr
    html = (exp.path / "REPORT.html").read_text()
    assert html.count('<img src="data:image/svg+xml;base64,') == 3


def test_loop_plot_counts_crashes_and_shows_every_try(lab, loop_lab):
    from assay.loop.progress import progress_plot
    from assay.loop.ratchet import drop, start, try_candidate
    from assay.loop.state import find_by_tag
    from tests.integration.conftest import edit

    exp = loop_lab()
    start(lab, "exp", "pc", ["train.py"], ["prepare.py"], decision="greedy")
    edit(exp, LR=0.5)
    assert try_candidate(lab, "lr 1.0 -> 0.5").decision == "keep"
    edit(exp, DEPTH="undefined_name")
    assert try_candidate(lab, "depth undefined").decision == "crash"
    drop(lab, "pc")
    edit(exp, LR=3.0)
    assert try_candidate(lab, "lr 0.5 -> 3.0").decision == "discard"
    edit(exp, DEPTH=4)
    assert try_candidate(lab, "a long description of what changed, ending with depth 2 -> 4").decision == "keep"
    out = progress_plot(lab, find_by_tag(lab, "pc"))
    keep_artifact(out, "loop")
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["counts"] == {"tries": 5, "kept": 3, "discarded": 1, "crashed": 1}
    assert [(c["try"], c["description"]) for c in side["crashes"]] == [(2, "depth undefined")]
    assert [p["try"] for p in side["points"]] == [0, 1, 3, 4]
    assert len(side["running_best"]) == 5 and side["running_best"][2] == side["running_best"][1]
    from assay.loop.progress import _short

    assert _short("a long description of what changed, ending with depth 2 -> 4").endswith("depth 2 -> 4")


def test_webp_when_pillow_supports_it(lab, exp):
    from PIL import features

    from assay.report.plots import plot_run

    (res,) = run_experiment(lab, RunSpec("exp", "one"))
    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    (fig,) = plot_run(lab, res.record["id"], ["acc"], fmt="webp")
    data = fig.path.read_bytes()
    assert fig.path.suffix == ".webp" and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
