"""`assay ui` as a real server: a token by default (loopback too), one cookie per port, strict Host
headers, redirects that stay on the site, and every loopback address served when bound there.

Requests go over real sockets with http.client, so the request target and Host header are sent
exactly as written; the redirect is also followed by the real Chromium of tests/web.
"""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import run_cli
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, serve_dashboard

pytest.importorskip("uvicorn")
pytest.importorskip("httpx")


def _get(port: int, target: str, *, host: str | None = None, headers: dict[str, str] | None = None,
         address: str = "127.0.0.1") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(address, port, timeout=10)
    conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host if host is not None else f"{address}:{port}")
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_loopback_dashboard_needs_the_token_it_printed(lab):
    with serve_dashboard(lab.root) as d:
        assert f"http://127.0.0.1:{d.port}/?token=" in d.output and len(d.token) >= 24
        assert _get(d.port, "/api/experiments").status == 401
        assert _get(d.port, "/api/experiments", headers=_bearer("x" * 32)).status == 401
        assert _get(d.port, "/api/experiments", headers=_bearer(d.token)).status == 200

        login = _get(d.port, f"/?token={d.token}")
        cookie = login.getheader("set-cookie")
        assert login.status == 303 and login.getheader("location") == "/"  # the token leaves the address bar
        assert cookie.startswith(f"assay_token_{d.port}={d.token};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert _get(d.port, "/api/experiments", headers={"Cookie": f"assay_token_{d.port}={d.token}"}).status == 200
        assert _get(d.port, "/api/experiments", headers={"Cookie": f"assay_token={d.token}"}).status == 401


def test_the_cookie_of_one_dashboard_does_not_open_another_on_the_same_host(lab):
    with serve_dashboard(lab.root) as a, serve_dashboard(lab.root) as b:
        # A browser sends every localhost cookie to every port: each server reads only its own.
        assert _get(b.port, "/api/health", headers={"Cookie": f"assay_token_{a.port}={a.token}"}).status == 401
        both = f"assay_token_{a.port}={a.token}; assay_token_{b.port}={b.token}"
        assert _get(b.port, "/api/health", headers={"Cookie": both}).status == 200


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example/", "///evil.example/x", "/\\/evil.example/"])
def test_token_redirect_never_leaves_the_site(lab, target):
    with serve_dashboard(lab.root) as d:
        resp = _get(d.port, f"{target}?token={d.token}&x=1")
        location = resp.getheader("location")
        assert resp.status == 303 and location.startswith("/") and location[1:2] not in ("/", "\\")
        assert urlsplit(urljoin(f"{d.url}/", location)).netloc == f"127.0.0.1:{d.port}"
        assert location.endswith("?x=1")  # other query parameters are kept, the token is dropped


def test_chromium_follows_the_token_redirect_to_the_same_site(lab):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with serve_dashboard(lab.root) as d, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{d.url}//evil.example/?token={d.token}")
            assert urlsplit(page.url).netloc == f"127.0.0.1:{d.port}" and "token=" not in page.url
            cookies = page.context.cookies()
            assert [(c["name"], c["httpOnly"]) for c in cookies] == [(f"assay_token_{d.port}", True)]
        finally:
            browser.close()


@pytest.mark.parametrize("host", ["127.0.0.1:80@evil.com", "evil.com", "127.0.0.1.evil.com", "127.0.0.1:80 evil.com",
                                  "127.0.0.1/x", "::1", "localhost.evil.com:80", "0x7f.1", ""])
def test_host_headers_that_are_not_loopback_are_refused(lab, host):
    with serve_dashboard(lab.root) as d:
        assert _get(d.port, "/api/health", host=host, headers=_bearer(d.token)).status == 400


def test_loopback_host_headers_are_served(lab):
    with serve_dashboard(lab.root) as d:
        for host in (f"127.0.0.1:{d.port}", f"localhost:{d.port}", "LOCALHOST", f"[::1]:{d.port}", "127.0.0.9", "127.255.0.1:1"):
            assert _get(d.port, "/api/health", host=host, headers=_bearer(d.token)).status == 200, host


def test_a_dashboard_bound_to_127_0_0_2_serves_its_requests(lab):
    with serve_dashboard(lab.root, host="127.0.0.2") as d:
        assert f"http://127.0.0.2:{d.port}/?token=" in d.output
        assert _get(d.port, "/api/health", headers=_bearer(d.token), address="127.0.0.2").status == 200
        assert _get(d.port, "/api/health", address="127.0.0.2").status == 401


def test_no_token_serves_loopback_openly_and_says_so(lab):
    with serve_dashboard(lab.root, "--no-token") as d:
        assert d.token == "" and "?token=" not in d.output and "without a token" in d.output
        assert _get(d.port, "/api/experiments").status == 200


def test_a_token_of_the_users_is_used_as_given(lab):
    with serve_dashboard(lab.root, "--token", "a-long-enough-token") as d:
        assert d.token == "a-long-enough-token"
        assert _get(d.port, "/api/health", headers=_bearer("a-long-enough-token")).status == 200


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--token", "short"], {}, "token from --token has 5 characters; at least 16"),
    ([], {"ASSAY_UI_TOKEN": "tooshort"}, "token from ASSAY_UI_TOKEN has 8 characters"),
    (["--token", "has spaces in it, sixteen+"], {}, "characters other than"),
    (["--token", "", "--no-token"], {}, "at least 16"),
    (["--no-token", "--token", "a-long-enough-token"], {}, "Both --no-token and a token"),
    (["--no-token", "--allow-remote", "--host", "0.0.0.0"], {}, "--no-token is refused on '0.0.0.0'"),
])
def test_weak_or_contradictory_token_settings_are_refused(lab, args, env, message):
    out = run_cli("ui", "--port", str(free_port()), *args, cwd=lab.root, env=env, timeout=60)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
