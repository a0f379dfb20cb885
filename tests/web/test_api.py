"""The JSON API through Starlette's TestClient, over a lab made by real runs."""

from __future__ import annotations

import pytest

from assay.report.verdict import verdict
from tests.web.conftest import BASE, FAST, XSS

pytest.importorskip("starlette")
pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def client(real_lab):
    from starlette.testclient import TestClient

    from assay.web.app import create_app

    return TestClient(create_app(real_lab.lab))


def _folder(run_id: str) -> str:
    return run_id.split("/")[1]


def test_experiments_list_counts_best_and_verdict(client, real_lab):
    body = {e["name"]: e for e in client.get("/api/experiments").json()["experiments"]}
    exp, other = body["exp"], body["other"]  # the browser tests may add a "live" experiment
    assert exp["name"] == "exp" and exp["runs"] == 3  # the ignored run is not counted
    assert exp["best"] == 0.125 and exp["best_run"] == real_lab.base
    # The statistical verdict of `assay verdict`, not the best run's: one run per lr decides nothing.
    assert exp["verdict"] == verdict(real_lab.lab, "exp").verdict == "inconclusive"
    assert exp["verdict_reason"] == verdict(real_lab.lab, "exp").reason
    assert exp["has_loop"] and exp["has_report"] and exp["has_journal"]
    assert other["verdict"] == "no runs" and other["runs"] == 0
    detail = client.get("/api/experiments/exp").json()  # the experiment page says the same, with why
    assert (detail["verdict"], detail["verdict_reason"]) == (exp["verdict"], exp["verdict_reason"])


def test_the_verdict_follows_new_seeds_and_ignores_and_matches_the_cli(lab, make_experiment):
    from starlette.testclient import TestClient

    from assay.journal import ignore_run
    from assay.runner.launch import RunSpec, run_experiment
    from assay.web.app import create_app

    make_experiment("import assay, os\nprint('val_loss:', 0.1 + int(os.environ['ASSAY_SEED']) / 1000)\n",
                    config={"seed": 0, "lr": 0.1}, metric="val_loss", success="val_loss <= 0.2")
    with TestClient(create_app(lab)) as client:
        def judged() -> dict:
            (row,) = client.get("/api/experiments").json()["experiments"]
            if row["verdict"] != "no runs":  # the CLI's "inconclusive: no finished run", said plainly
                assert (row["verdict"], row["verdict_reason"]) == (verdict(lab, "exp").verdict, verdict(lab, "exp").reason)
            return row

        assert judged()["verdict"] == "no runs"
        (one,) = run_experiment(lab, RunSpec("exp", "one"))
        assert judged()["verdict"] == "inconclusive"
        seeds = run_experiment(lab, RunSpec("exp", "seeds", repeat=3))
        assert judged()["verdict"] == "supported"
        for r in seeds[1:]:  # IGNORED_RUNS.md alone (the index untouched) takes two seeds out of the evidence
            ignore_run(r.path, "a test of the cache")
        assert judged()["verdict"] == "inconclusive"


def test_runs_table_is_paged_sorted_and_filtered_on_the_server(client, real_lab):
    url = "/api/experiments/exp/runs"
    page = client.get(url).json()
    assert page["total"] == 3 and {r["id"] for r in page["rows"]} == {real_lab.base, real_lab.fast, real_lab.crashed}
    assert all("path" not in r for r in page["rows"])
    best_first = client.get(url, params={"sort": "loss"}).json()["rows"]  # loss is lower-is-better
    assert [r["id"] for r in best_first][:2] == [real_lab.base, real_lab.fast]
    by_lr = client.get(url, params={"sort": "params.lr:desc"}).json()["rows"]
    assert [r["params"]["lr"] for r in by_lr] == [1.0, 0.5, 0.1]
    paged = client.get(url, params={"sort": "params.lr:asc", "limit": 1, "offset": 1}).json()
    assert paged["total"] == 3 and [r["params"]["lr"] for r in paged["rows"]] == [0.5]
    assert [r["id"] for r in client.get(url, params={"where": "status=failed"}).json()["rows"]] == [real_lab.crashed]
    assert [r["id"] for r in client.get(url, params={"where": "lr>0.2 and loss<1"}).json()["rows"]] == [real_lab.fast]
    with_ignored = client.get(url, params={"all": "1"}).json()
    assert with_ignored["total"] == 4 and any(r["ignored"] for r in with_ignored["rows"])


def test_bad_queries_are_4xx_with_a_message(client):
    r = client.get("/api/experiments/exp/runs", params={"where": "nosuch>1"})
    assert r.status_code == 400 and "Unknown field 'nosuch'" in r.json()["error"]
    r = client.get("/api/experiments/exp/runs", params={"limit": "lots"})
    assert r.status_code == 400 and "limit" in r.json()["error"]
    assert client.get("/api/experiments/exp/runs", params={"limit": 0}).status_code == 400
    assert client.get("/api/series", params={"runs": "exp/x", "points": 1}).status_code == 400
    r = client.get("/api/experiments/nope")
    assert r.status_code == 404 and "Unknown experiment 'nope'" in r.json()["error"]
    assert client.get("/api/run/exp/2020-01-01T00-00-00-none").status_code == 404
    assert client.get("/api/series").status_code == 400


def test_run_page_data_has_record_log_plots_and_metric_keys(client, real_lab):
    r = client.get(f"/api/run/exp/{_folder(real_lab.base)}").json()
    assert r["id"] == real_lab.base and r["status"] == "ok" and r["params"]["lr"] == 0.1
    assert r["metrics"]["loss"]["last"] == BASE[-1] and r["metrics"]["val_loss"]["last"] == 0.125
    assert "val_loss: 0.125" in r["log_tail"]
    assert r["metric_keys"] == ["acc", "loss", "val_loss"]
    assert r["plots"] == [f"experiments/exp/runs/{_folder(real_lab.base)}/plots/curve.png"]
    assert "owner_pid" not in r
    crashed = client.get(f"/api/run/exp/{_folder(real_lab.crashed)}").json()
    assert crashed["status"] == "failed" and "boom: <b>not bold</b>" in crashed["log_tail"]


def test_series_returns_the_logged_values_for_several_runs(client, real_lab):
    body = client.get("/api/series", params={"runs": f"{real_lab.base},{real_lab.fast}", "keys": "loss"}).json()
    base, fast = body["runs"][real_lab.base]["loss"], body["runs"][real_lab.fast]["loss"]
    assert base["steps"] == [0, 1, 2, 3] and base["values"] == BASE and base["count"] == 4 and not base["downsampled"]
    assert fast["values"] == FAST


def test_series_downsamples_to_the_requested_points(client, real_lab):
    body = client.get("/api/series", params={"runs": real_lab.base, "keys": "loss", "points": 3}).json()
    s = body["runs"][real_lab.base]["loss"]
    assert s["downsampled"] and len(s["values"]) == 3 and s["count"] == 4
    assert s["steps"][0] == 0 and s["steps"][-1] == 3  # LTTB keeps both ends


def test_loop_journal_report(client, real_lab):
    loop = client.get("/api/experiments/exp/loop").json()
    assert loop["columns"][:5] == ["commit", "metric", "memory_gb", "status", "description"]
    assert [r["status"] for r in loop["rows"]] == ["keep", "discard", "crash", "keep"]  # the torn last line is skipped
    assert [r["value"] for r in loop["rows"]] == [0.5, 0.6, None, 0.4]  # the loop's one number; a crash has none
    journal = client.get("/api/experiments/exp/journal").json()
    assert journal["entries"][0]["tag"] == "WEIRD" and XSS in journal["entries"][0]["text"]
    assert journal["ignored"] == {_folder(real_lab.ignored): journal["ignored"][_folder(real_lab.ignored)]}
    report = client.get("/api/experiments/exp/report").json()
    assert report["markdown"].startswith("# Report: exp") and report["base"] == "experiments/exp"
    empty = client.get("/api/experiments/other/loop").json()
    assert empty["rows"] == [] and client.get("/api/experiments/other/report").json()["markdown"] is None


@pytest.mark.parametrize("path", [
    "../secret.txt", "experiments/../secret.txt", "/etc/passwd", "experiments/exp/escape", ".assay/index.db",
    "experiments/exp/../../secret.txt", "assay.toml", "",
])
def test_file_view_refuses_paths_outside_the_experiments_folder(client, path):
    r = client.get("/api/file", params={"path": path})
    assert r.status_code == 404 and r.json()["error"]


def test_run_ids_cannot_traverse(client):
    for rid in ["..%2F..%2Fsecret", "exp/..", "..", "exp/%2E%2E"]:
        assert client.get(f"/api/run/{rid}").status_code == 404
    r = client.get("/api/series", params={"runs": "../../x/y"})
    assert r.status_code == 404


def test_files_are_served_inert(client, real_lab):
    png = client.get("/api/file", params={"path": f"experiments/exp/runs/{_folder(real_lab.base)}/plots/curve.png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.headers["content-security-policy"] == "sandbox"
    text = client.get("/api/file", params={"path": "experiments/exp/REPORT.md"})
    assert text.headers["content-type"].startswith("text/plain") and text.headers["x-content-type-options"] == "nosniff"


def test_read_only_and_page_headers(client):
    assert client.post("/api/experiments").status_code == 405
    assert client.delete("/api/run/exp/x").status_code == 405
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../data.py").status_code == 404


def test_token_is_required_when_set(real_lab):
    from starlette.testclient import TestClient

    from assay.web.app import create_app

    token = "s3cret-s3cret-s3cret"
    c = TestClient(create_app(real_lab.lab, token=token), base_url="http://testserver:8765", follow_redirects=False)
    assert c.get("/api/experiments").status_code == 401
    assert c.get("/api/experiments", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/experiments", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = c.get(f"/?token={token}")
    assert r.status_code == 303 and r.headers["location"] == "/" and f"assay_token_8765={token}" in r.headers["set-cookie"]
    c.cookies.set("assay_token_8765", token)
    assert c.get("/api/experiments").status_code == 200


def test_loopback_serving_refuses_foreign_host_headers(real_lab):
    from starlette.testclient import TestClient

    from assay.web.app import create_app
    from assay.web.server import LOOPBACK_NAMES

    c = TestClient(create_app(real_lab.lab, allowed_hosts=LOOPBACK_NAMES), base_url="http://127.0.0.1:8765")
    assert c.get("/api/health").status_code == 200
    assert c.get("/api/health", headers={"Host": "evil.example:8765"}).status_code == 400
