"""The compare, loop, report and system views in headless Chromium, on labs made by real runs.

What the pages show is checked against the CLI's `--json` (a real `assay` subprocess), so the
dashboard and the command line cannot drift apart. A screenshot of each page goes to tests/artifacts/.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.conftest import CHROMIUM, serve_dashboard

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)


@pytest.fixture(scope="module")
def cmp_dash(compare_lab):
    with serve_dashboard(compare_lab.root) as d:
        yield d


def _page(browser, dash):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.goto(f"{dash.url}/?token={dash.token}")
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    return ctx, pg, errors


def _open(page, url: str) -> None:
    before = page.evaluate("document.body ? document.body.dataset.ready || '' : ''")
    page.goto(url)
    page.wait_for_function("prev => document.body.dataset.ready && document.body.dataset.ready !== prev", arg=before)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def _cli(root: Path, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "assay.cli.main", *args, "--json"], cwd=root,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("value", ["last", "best"])
def test_compare_view_shows_the_numbers_of_assay_compare_and_verdict(browser, cmp_dash, compare_lab, value):
    ctx, page, errors = _page(browser, cmp_dash)
    try:
        _open(page, f"{cmp_dash.url}/#/e/cmp/compare?value={value}")
        page.wait_for_selector('.card.chart[data-metric="loss"] canvas')
        cli = _cli(compare_lab.root, "compare", "cmp", "--value", value)
        verdict = _cli(compare_lab.root, "verdict", "cmp", "--value", value)
        assert len(cli["rows"]) == 3  # lr 0.1 and 0.3 on code v1, lr 0.1 on code v2
        shown = page.eval_on_selector_all("#compare-table tr[data-row]", """rows => rows.map(r => ({
            row: +r.dataset.row, mean: +r.querySelector('[data-key=mean]').dataset.value,
            n: r.querySelector('[data-key=n]').textContent, gap: r.querySelector('[data-key=vs_best]').textContent,
            verdict: r.querySelector('[data-key=verdict]').textContent}))""")
        assert [s["row"] for s in shown] == [0, 1, 2]
        for s in shown:
            row = cli["rows"][s["row"]]
            assert s["mean"] == row["mean"] and s["n"] == str(row["n"])
            if row["vs_best"] and row["vs_best"]["ci"]:  # shown to 5 significant digits
                shown_ci = [float(v) for v in s["gap"].split("[")[1].split("]")[0].split(",")]
                assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9) for a, b in zip(shown_ci, row["vs_best"]["ci"]))
            else:
                assert s["gap"] == "best" if s["row"] == cli["best"] else "noise unknown" in s["gap"]
            judged = next(c for c in verdict["configurations"] if set(c["runs"]) & set(row["runs"]))
            assert s["verdict"] == judged["verdict"]
        assert verdict["verdict"] in page.inner_text("#compare-verdict")
        # The band: at each step, the mean over a configuration's seeds of what its runs logged.
        data = page.evaluate("window.assayCharts.compare")
        assert data["curve"] == "loss" and data["grid"][:3] == [0, 1, 2]
        logged = {}
        for rid in cli["rows"][0]["runs"]:
            folder = compare_lab.root / "experiments" / rid.replace("/", "/runs/")
            logged[rid] = [json.loads(line)["m"]["loss"] for line in (folder / "metrics.jsonl").read_text().splitlines()
                           if '"loss"' in line]
        first = data["curves"][0]
        for step in (0, 15, 29):
            vals = [v[step] for v in logged.values()]
            assert math.isclose(first["mean"][step], sum(vals) / len(vals), rel_tol=1e-12)
            assert first["lo"][step] < first["mean"][step] < first["hi"][step]
        drawn = page.evaluate("() => { const u = window.assayPlots.loss; return {y: u.axes[1].label, x: u.axes[0].label}; }")
        assert drawn == {"y": "loss (nats)", "x": "step"}
        _shot(page, f"compare-{value}")
        assert not errors, errors
    finally:
        ctx.close()


def test_compare_view_groups_by_the_params_ticked(browser, cmp_dash, compare_lab):
    ctx, page, errors = _page(browser, cmp_dash)
    try:
        _open(page, f"{cmp_dash.url}/#/e/cmp/compare?by=lr")  # code versions pooled? no: code stays a column
        cli = _cli(compare_lab.root, "compare", "cmp", "--by", "lr")
        assert page.locator("#compare-table tr[data-row]").count() == len(cli["rows"])
        assert not errors, errors
    finally:
        ctx.close()


def test_a_filter_typo_is_shown_under_the_box_and_the_page_stays(browser, cmp_dash):
    ctx, page, errors = _page(browser, cmp_dash)
    try:
        _open(page, f"{cmp_dash.url}/#/e/cmp?where=lrr%3C0.2")
        assert "lrr" in page.inner_text("#filter-error")
        assert page.locator("#runs").count() == 1 and page.locator("#where").input_value() == "lrr<0.2"
        _open(page, f"{cmp_dash.url}/#/e/cmp?q=v2-s&cols=p:lr,m:loss")
        ids = page.eval_on_selector_all("#runs tr[data-id]", "rows => rows.map(r => r.dataset.id.split('-').slice(-2).join('-'))")
        assert sorted(ids) == ["v2-s0", "v2-s1", "v2-s2"]  # search on descriptions, kept in the URL
        headers = page.eval_on_selector_all("#runs th[data-field]", "ths => ths.map(t => t.dataset.field)")
        assert headers == ["started", "status", "duration", "loss", "best_val_loss", "params.lr"]  # the chosen columns
        _shot(page, "runs-search")
        assert not errors, errors
    finally:
        ctx.close()


BUSY = """\
import time
import assay

assay.init()
end = time.time() + 1.5
x = 0
while time.time() < end:  # keeps a core busy, so sys/cpu_percent has something to measure
    x += 1
assay.log({"loss": 1.0}, step=0)
assay.finish()
"""


def test_the_runner_samples_system_metrics_that_show_lists_and_the_run_page_charts(browser, tmp_path, monkeypatch):
    from assay.config import dump_yaml
    from assay.lab import init_lab
    from assay.runner.launch import RunSpec, run_experiment

    monkeypatch.setenv("ASSAY_SYS_INTERVAL", "0.3")
    lab, _ = init_lab(tmp_path / "lab")
    exp_dir = lab.experiment_dir("sys")
    exp_dir.mkdir(parents=True)
    (exp_dir / "train.py").write_text(BUSY)
    (exp_dir / "experiment.yaml").write_text(dump_yaml({"hypothesis": "h", "metric": {"name": "loss", "goal": "min"},
                                                        "entry": "train.py", "timeout": "60s"}))
    (res,) = run_experiment(lab, RunSpec("sys", "busy"))
    rid = str(res.record["id"])
    events = [json.loads(line) for line in (exp_dir / "runs" / rid.split("/")[1] / "metrics.jsonl").read_text().splitlines()]
    sampled = [e["m"] for e in events if e.get("src") == "sys"]
    assert len(sampled) >= 2 and all(m["sys/rss_mb"] > 1 for m in sampled)
    assert max(m["sys/cpu_percent"] for m in sampled) > 20  # a busy loop shows as CPU use
    shown = _cli(tmp_path / "lab", "show", rid)
    assert {"sys/cpu_percent", "sys/rss_mb"} <= set(shown["metrics"])  # listed by `assay show --json`
    with serve_dashboard(tmp_path / "lab") as dash:
        ctx, page, errors = _page(browser, dash)
        try:
            _open(page, f"{dash.url}/#/r/{rid}")
            page.wait_for_selector('#sys-charts .card.chart[data-metric="sys/cpu_percent"] canvas')
            drawn = page.evaluate("() => window.assayPlots['sys/rss_mb'].axes[1].label")
            assert drawn == "sys/rss_mb (MB)"
            _shot(page, "run-system")
            assert not errors, errors
        finally:
            ctx.close()
