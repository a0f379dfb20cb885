"""The sweep page, the run diff and the loop page in headless Chromium, on labs made by real runs:
a real `assay sweep` of 20 trials on 2 slots, a real `assay loop` with a crash (in git, so two
commits can be diffed), and the compare lab's two code versions (no git).

What the pages show is checked against the CLI's `--json`; a screenshot of each page goes to
tests/artifacts/.
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
def sweep_dash(sweep_lab):
    with serve_dashboard(sweep_lab.root) as d:
        yield d


@pytest.fixture(scope="module")
def loop_dash(loop_lab_real):
    with serve_dashboard(loop_lab_real.root) as d:
        yield d


@pytest.fixture
def page_of(browser):
    """page_of(dashboard) -> a logged-in page; afterwards, no script error may have happened."""
    made = []

    def make(dash):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = ctx.new_page()
        pg.goto(f"{dash.url}/?token={dash.token}")
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        made.append((ctx, errors))
        return pg

    yield make
    for ctx, errors in made:
        ctx.close()
        assert not errors, errors


def _open(page, url: str) -> None:
    before = page.evaluate("document.body ? document.body.dataset.ready || '' : ''")
    page.goto(url)
    page.wait_for_function("prev => document.body.dataset.ready && document.body.dataset.ready !== prev", arg=before)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def _cli(root: Path, *args: str) -> object:
    out = subprocess.run([sys.executable, "-m", "assay.cli.main", *args, "--json"], cwd=root,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


# ------------------------------------------------------------------ sweep


def test_sweep_list_names_each_sweep_with_its_best_value(page_of, sweep_dash, sweep_lab):
    page = page_of(sweep_dash)
    summary = sweep_lab.summary
    _open(page, f"{sweep_dash.url}/#/e/sw/sweep")
    row = page.locator(f'#sweeps tr[data-id="{summary["sweep"]}"]')
    assert row.count() == 1
    assert f"(trial {summary['best']['trial']})" in row.locator("[data-key=best]").inner_text()
    assert "20 of 20" in row.inner_text()
    _shot(page, "sweeps")


def test_sweep_page_shows_the_trials_and_best_of_assay_sweep_json(page_of, sweep_dash, sweep_lab):
    page = page_of(sweep_dash)
    summary = sweep_lab.summary
    assert len(summary["trials"]) == 20 and summary["counts"].get("failed", 0) >= 1  # sgd with a large lr crashes
    _open(page, f"{sweep_dash.url}/#/e/sw/sweep/{summary['sweep']}")
    page.wait_for_selector('.card.chart[data-metric="best so far"] canvas')
    shown = page.eval_on_selector_all("#trials tr[data-trial]", """rows => rows.map(r => ({
        trial: +r.dataset.trial, status: r.querySelector('.badge').textContent,
        value: r.querySelector('[data-key=value]').dataset.value}))""")
    assert [s["trial"] for s in shown] == [t["trial"] for t in summary["trials"]]
    for s, t in zip(shown, summary["trials"]):
        assert s["status"] == t["status"]
        assert (float(s["value"]) if s["value"] else None) == t["value"]  # the same double, not a rounding of it
    served = page.evaluate("window.assayCharts.sweep")
    assert [t["params"] for t in served["trials"]] == [t["params"] for t in summary["trials"]]
    assert served["value"] == summary["value"] == "last"
    best = summary["best"]
    assert served["best"]["trial"] == best["trial"] and served["best"]["value"] == best["value"]
    text = page.inner_text("#sweep-best")
    assert f"at trial {best['trial']}" in text and "last val_loss" in text
    assert page.get_attribute("#sweep-best a", "href") == "#/r/" + best["run"]
    # Best so far, drawn: the running minimum over trials in trial order.
    drawn = page.evaluate("""() => { const u = window.assayPlots['best so far'];
        return {x: Array.from(u.data[0]), best: Array.from(u.data[2]), xlabel: u.axes[0].label}; }""")
    running, expect = None, {}
    for t in summary["trials"]:
        if t["value"] is not None:
            running = t["value"] if running is None else min(running, t["value"])
        if running is not None:
            expect[t["trial"]] = running
    assert {x: y for x, y in zip(drawn["x"], drawn["best"]) if y is not None} == expect
    assert drawn["xlabel"] == "trial"
    # Parallel coordinates and scatters: one mark per trial; the failed ones drawn apart, not dropped.
    failed = sum(1 for t in summary["trials"] if t["value"] is None)
    assert page.locator("#parcoords polyline").count() == 20
    assert page.locator('#parcoords polyline[stroke-dasharray]').count() == failed
    for key in ("lr", "layers", "opt"):
        assert page.locator(f'svg.scatter[data-param="{key}"] [data-trial]').count() == 20
    _shot(page, "sweep")


def test_sweep_importance_is_optunas_fanova_over_the_trials_the_cli_reported(page_of, sweep_dash, sweep_lab):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState, create_trial

    summary = sweep_lab.summary
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "layers": IntDistribution(1, 4),  # layers=range(1,5): an ordered integer range
             "opt": CategoricalDistribution(["sgd", "adam"])}
    study = optuna.create_study(direction="minimize")
    for t in summary["trials"]:
        if t["value"] is not None:
            study.add_trial(create_trial(state=TrialState.COMPLETE, value=t["value"], params=t["params"], distributions=dists))
    expected = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    page = page_of(sweep_dash)
    _open(page, f"{sweep_dash.url}/#/e/sw/sweep/{summary['sweep']}")
    shown = page.eval_on_selector_all("#importance tr[data-param]", "rows => rows.map(r => [r.dataset.param, +r.querySelector('[data-value]').dataset.value])")
    assert [k for k, _ in shown] == list(expected)  # most important first
    for k, v in shown:
        assert math.isclose(v, expected[k], rel_tol=1e-9)


def test_without_optuna_the_sweep_page_says_there_is_no_importance(sweep_lab, monkeypatch):
    """Optuna is installed here; a None entry in sys.modules makes its import fail as if it were not."""
    from assay.sweep.state import open_sweep
    from assay.web import sweeps

    sf = open_sweep(sweep_lab.root / "experiments" / "sw", sweep_lab.summary["sweep"])
    monkeypatch.setitem(sys.modules, "optuna", None)
    monkeypatch.setitem(sys.modules, "optuna.importance", None)
    out = sweeps._fanova(sf, "min")
    assert out["method"] is None and "Optuna is not installed" in out["note"] and "pip install optuna" in out["note"]


def test_an_unknown_sweep_is_a_404_naming_the_known_ones(sweep_dash, sweep_lab):
    import httpx

    r = httpx.get(f"{sweep_dash.url}/api/experiments/sw/sweeps/nope", headers={"Authorization": f"Bearer {sweep_dash.token}"})
    assert r.status_code == 404 and sweep_lab.summary["sweep"] in r.json()["error"]


# ------------------------------------------------------------------ loop


def test_loop_page_of_a_real_loop_counts_its_crash_as_the_cli_does(page_of, loop_dash, loop_lab_real):
    page = page_of(loop_dash)
    status = _cli(loop_lab_real.root, "loop", "status", "dash")
    log = _cli(loop_lab_real.root, "loop", "log", "dash")
    assert status["counts"]["crash"] == 1
    _open(page, f"{loop_dash.url}/#/e/exp/loop")
    page.wait_for_selector(".card.chart canvas")
    drawn = page.evaluate("window.assayCharts.loop")
    assert {k: v for k, v in drawn["counts"].items()} == {k: v for k, v in status["counts"].items() if v}
    assert drawn["tried"]["ys"] == [r["value"] for r in log if r["value"] is not None]
    assert len(drawn["crashed"]["xs"]) == 1
    assert f"{status['counts']['crash']} crash" in page.inner_text("#loop-counts")
    crash_row = page.locator('#loop tr[data-status="crash"]')
    assert crash_row.count() == 1 and "0.000000" not in crash_row.inner_text()  # no number for a crash
    _shot(page, "loop-real")


# ------------------------------------------------------------------ run diff


def _loop_runs(root: Path) -> dict[str, str]:
    """description -> the first run of that loop row."""
    return {r["description"]: r["runs"].split()[0] for r in _cli(root, "loop", "log", "dash")}


def test_run_diff_picked_in_the_runs_table_shows_the_code_change_between_two_commits(page_of, loop_dash, loop_lab_real):
    runs = _loop_runs(loop_lab_real.root)
    a, b = runs["baseline"], runs["lr 0.5"]
    page = page_of(loop_dash)
    _open(page, f"{loop_dash.url}/#/e/exp")
    assert page.is_disabled("#diff")
    for rid in (a, b):
        page.check(f'#runs tr[data-id="{rid}"] input[type=checkbox]')
    before = page.evaluate("document.body.dataset.ready")
    page.click("#diff")
    page.wait_for_function("prev => document.body.dataset.ready !== prev", arg=before)
    assert page.url.endswith(f"#/diff/{a.replace('/', '%2F')}/{b.replace('/', '%2F')}")
    code = page.inner_text("#diff-code")
    assert "-LR = 1.0" in code and "+LR = 0.5" in code
    assert "git diff" in code and "experiments/exp" in code
    shown = {k: page.inner_text(f'#diff-metrics tr[data-key="val_bpb"] [data-side="{k}"]') for k in ("a_last", "b_last")}
    ra, rb = _cli(loop_lab_real.root, "show", a), _cli(loop_lab_real.root, "show", b)
    assert float(shown["a_last"]) == ra["metrics"]["val_bpb"]["last"] and float(shown["b_last"]) == rb["metrics"]["val_bpb"]["last"]
    assert page.locator("#diff-params tr.differs").count() == 0  # same params: only the code changed
    assert "identical" in page.inner_text("#diff-env")
    _shot(page, "diff")


def test_run_diff_in_a_lab_without_git_says_so_and_highlights_the_params_that_differ(page_of, compare_lab):
    a, b = compare_lab.runs[0], compare_lab.runs[4]  # lr 0.1 seed 0, lr 0.3 seed 1
    with serve_dashboard(compare_lab.root) as dash:
        page = page_of(dash)
        _open(page, f"{dash.url}/#/diff/{a.replace('/', '%2F')}/{b.replace('/', '%2F')}")
        differs = page.eval_on_selector_all("#diff-params tr.differs", "rows => rows.map(r => r.dataset.key)")
        assert sorted(differs) == ["lr", "seed"]
        assert page.inner_text('#diff-params tr[data-key="lr"] [data-side="b"]') == "0.3"
        assert "not in a git repository" in page.inner_text("#diff-code")
        assert page.inner_text("#code-versions").startswith("Same code version")  # both on the first version of train.py
        assert page.locator("#diff-code h3").count() == 0  # no "uncommitted changes" outside git
        v2 = compare_lab.runs[6]  # lr 0.1 seed 0 on the second version of train.py
        _open(page, f"{dash.url}/#/diff/{a.replace('/', '%2F')}/{v2.replace('/', '%2F')}")
        assert page.inner_text("#code-versions").startswith("Different code versions")
        assert page.locator("#diff-params tr.differs").count() == 0
        _shot(page, "diff-nogit")


def test_a_metric_logged_once_is_drawn_on_an_axis_around_its_step_not_0_to_100(page_of, loop_dash, loop_lab_real):
    rid = _loop_runs(loop_lab_real.root)["baseline"]  # prints val_bpb once: one point, at step 0
    page = page_of(loop_dash)
    _open(page, f"{loop_dash.url}/#/r/{rid}")
    page.wait_for_selector('.card.chart[data-metric="val_bpb"] canvas')
    x = page.evaluate("() => { const u = window.assayPlots.val_bpb; return [u.data[0].length, u.scales.x.min, u.scales.x.max]; }")
    assert x == [1, -1, 1]
