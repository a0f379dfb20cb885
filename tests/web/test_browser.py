"""End to end: `assay ui` as a real server, driven by headless Chromium through Playwright.

The lab comes from real runs (tests/web/conftest.py); the checks compare what the charts drew with
the values the scripts logged. A screenshot of each page is kept under tests/artifacts/.
"""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.web.conftest import BASE, CHROMIUM, FAST, serve_dashboard

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)


@pytest.fixture(scope="module")
def dashboard(real_lab):
    """`assay ui` in the lab, with the random token it makes by default."""
    with serve_dashboard(real_lab.root) as d:
        yield d


@pytest.fixture(scope="module")
def server(dashboard):
    return dashboard.url


@pytest.fixture
def page(browser, dashboard):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.goto(f"{dashboard.url}/?token={dashboard.token}")  # as a person opens the printed URL: the token becomes a cookie
    assert "token=" not in pg.url
    pg.goto("about:blank")
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    ctx.close()
    assert not errors, errors


def _open(page, url: str) -> None:
    """Navigate and wait until the front end has rendered that route."""
    before = page.evaluate("document.body ? document.body.dataset.ready || '' : ''") if page.url.startswith("http") else ""
    page.goto(url)
    page.wait_for_function("prev => document.body.dataset.ready && document.body.dataset.ready !== prev", arg=before)


def _rendered(page, action) -> None:
    """Do `action` (a click, a key) and wait until the front end has rendered the route it leads to."""
    before = page.evaluate("document.body.dataset.ready")
    action()
    page.wait_for_function("prev => document.body.dataset.ready !== prev", arg=before)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def _chart(page, metric: str) -> dict:
    page.wait_for_selector(f'.card.chart[data-metric="{metric}"] canvas')
    return page.evaluate("m => window.assayCharts[m]", metric)


def _drawn(page, metric: str) -> dict:
    """What uPlot holds for the chart of `metric`: its x values, series labels and line data."""
    page.wait_for_selector(f'.card.chart[data-metric="{metric}"] canvas')
    return page.evaluate("""m => { const u = window.assayPlots[m];
        return {x: u.data[0], labels: u.series.map(s => s.label), series: u.data.slice(1),
                xLabel: u.axes[0].label, yLabel: u.axes[1].label}; }""", metric)


def test_click_from_experiments_to_a_run_whose_chart_draws_the_logged_values(page, server, real_lab):
    _open(page, server + "/")
    row = page.locator('#experiments tr[data-name="exp"]')
    assert "A higher <em>lr</em> converges faster" in row.inner_text()  # markup in a hypothesis is text
    assert "inconclusive" in row.inner_text() and "0.125" in row.inner_text()
    assert "one run" in row.locator("td.verdict").get_attribute("title")  # why, on hover
    _shot(page, "experiments")

    row.get_by_role("link", name="exp").click()
    page.wait_for_selector("#runs tr[data-id]")
    ids = page.eval_on_selector_all("#runs tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    assert set(ids) == {real_lab.base, real_lab.fast, real_lab.crashed}  # the ignored run is hidden
    verdict = page.locator("#verdict").inner_text()
    assert "inconclusive" in verdict and "one run cannot decide" in verdict  # the verdict says why, in the page
    _shot(page, "runs")

    page.locator(f'#runs tr[data-id="{real_lab.base}"] a').first.click()
    page.wait_for_selector("#metrics")
    drawn = _chart(page, "loss")[real_lab.base]
    assert drawn["steps"] == [0, 1, 2, 3] and drawn["values"] == BASE
    assert _chart(page, "acc")[real_lab.base]["values"] == [1 - v for v in BASE]
    drawn_loss = _drawn(page, "loss")
    assert drawn_loss["x"] == [0, 1, 2, 3] and drawn_loss["series"] == [BASE]
    assert drawn_loss["xLabel"] == "step" and drawn_loss["yLabel"] == "loss (nats)"  # units from experiment.yaml
    assert "val_loss: 0.125" in page.inner_text("#log")
    assert page.locator("img.plot").count() == 1 and page.evaluate("document.querySelector('img.plot').naturalWidth") == 1
    _shot(page, "run")


def test_runs_table_sorts_filters_and_overlays_selected_runs(page, server, real_lab):
    _open(page, server + "/#/e/exp")
    _rendered(page, lambda: page.click('th[data-field="params.lr"]'))  # first click: descending
    assert page.get_attribute("th.sorted", "data-field") == "params.lr"
    ids = page.eval_on_selector_all("#runs tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    assert ids == [real_lab.crashed, real_lab.fast, real_lab.base]

    page.fill("#where", "status=ok and lr>0.2")
    _rendered(page, lambda: page.press("#where", "Enter"))
    assert page.eval_on_selector_all("#runs tr[data-id]", "rows => rows.map(r => r.dataset.id)") == [real_lab.fast]

    _rendered(page, lambda: page.check("#all"))
    page.fill("#where", "")
    _rendered(page, lambda: page.press("#where", "Enter"))
    assert page.locator("#runs tr[data-id]").count() == 4

    for rid in (real_lab.base, real_lab.fast):
        page.check(f'#runs tr[data-id="{rid}"] input[type=checkbox]')
    page.click("#compare")
    loss = _chart(page, "loss")
    assert loss[real_lab.base]["values"] == BASE and loss[real_lab.fast]["values"] == FAST
    colors = {m: page.get_attribute(f'.card.chart[data-metric="{m}"]', "data-colors") for m in ("loss", "acc")}
    assert colors["loss"] == colors["acc"]  # one colour per run on every chart of the page
    assert len(_drawn(page, "loss")["series"]) == 2
    _shot(page, "overlay")


def _run_hash(run_id: str) -> str:
    return "#/r/" + run_id


def test_markup_in_notes_reports_and_loop_rows_is_shown_not_run(page, server, real_lab):
    for tab in ("journal", "report", "loop"):
        _open(page, f"{server}/#/e/exp/{tab}")
        _shot(page, tab)
    _open(page, f"{server}/#/e/exp/journal")
    assert "<script>window.__pwned = 1</script>" in page.inner_text("#journal")
    assert page.locator("#journal script, #journal img").count() == 0
    _open(page, f"{server}/#/e/exp/report")
    assert "<script>window.__pwned = 3</script>" in page.inner_text("#report")
    assert page.locator("#report table td").first.inner_text() == "base"
    report = page.inner_text("#report")
    assert page.inner_text("#report strong") == "a bold finding" and "**" not in report  # rendered, not raw
    assert "assay:begin" not in page.content()  # the generated blocks' markers are not shown
    assert page.evaluate("document.querySelector('#report img').naturalWidth") == 1  # the figure, inline
    _open(page, f"{server}/#/e/exp/loop")
    assert "bad idea <script>x</script>" in page.inner_text("#loop")
    loop = page.evaluate("window.assayCharts.loop")
    assert loop["tried"]["ys"] == [0.5, 0.6, 0.4] and loop["counts"]["crash"] == 1
    assert len(loop["crashed"]["xs"]) == 1  # the crash is a point on the chart, and counted
    _open(page, f"{server}/{_run_hash(real_lab.crashed)}")
    assert "boom: <b>not bold</b>" in page.inner_text("#log") and page.locator("#log b").count() == 0
    assert page.inner_text(".badge") == "failed"
    assert page.evaluate("window.__pwned") is None


LIVE = """\
import os, time
import assay

run = assay.init()
assay.log({"loss": 5.0}, step=0)
run.flush()  # assay.log buffers briefly; a script that waits should flush what it logged
deadline = time.time() + 60
while not os.path.exists("go") and time.time() < deadline:
    time.sleep(0.05)
assay.log({"loss": 4.0}, step=1)
print("val_loss: 4.0")
assay.finish()
"""


def test_a_running_run_updates_without_a_reload(page, server, real_lab):
    from assay.config import dump_yaml
    from assay.runner.launch import RunSpec, run_experiment

    lab = real_lab.lab
    exp_dir = lab.experiment_dir("live")
    exp_dir.mkdir()
    (exp_dir / "train.py").write_text(textwrap.dedent(LIVE))
    (exp_dir / "experiment.yaml").write_text(dump_yaml({"hypothesis": "live", "metric": {"name": "val_loss", "goal": "min"},
                                                        "timeout": "90s"}))
    worker = threading.Thread(target=run_experiment, args=(lab, RunSpec("live", "live")), daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not list((exp_dir / "runs").glob("*/metrics.jsonl")) or \
                not list((exp_dir / "runs").glob("*/metrics.jsonl"))[0].read_text().count("\n"):
            assert time.monotonic() < deadline, "the live run logged nothing"
            time.sleep(0.05)
        folder = next((exp_dir / "runs").iterdir()).name
        _open(page, f"{server}/#/r/live/{folder}")
        assert page.inner_text(".badge") == "running"
        assert _chart(page, "loss")[f"live/{folder}"]["values"] == [5.0]
        page.evaluate("window.__sameDocument = true")
        _shot(page, "run-live")
        (exp_dir / "go").write_text("")
        page.wait_for_function(f"() => (window.assayCharts.loss['live/{folder}'] || {{}}).values?.length === 2", timeout=30_000)
        page.wait_for_function("() => document.querySelector('.badge').textContent === 'ok'", timeout=30_000)
        assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
        assert _chart(page, "loss")[f"live/{folder}"]["values"] == [5.0, 4.0]
    finally:
        (exp_dir / "go").write_text("")
        worker.join(timeout=60)
