"""REPORT.html is shared as a file: what people typed (hypothesis, notes, ignore reasons) must stay inert.

The lab comes from real `assay` subprocesses; the report is loaded in the real Chromium the web tests
use, to prove that no script ran, and every embedded image is decoded to prove that no file from
outside the experiment folder ended up in it.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

SCRIPT = """\
import assay

p = assay.params()
assay.init()
for step in range(3):
    assay.log({"val_bpb": 1.0 - 0.1 * step}, step=step)
print("val_bpb: 0.8")
assay.finish()
"""
# Each payload sets a different value, so a failure names the one that ran.
PAYLOADS = ('<script>window.__pwned = "script"</script> '
            '<img src=x onerror="window.__pwned = \'onerror\'"> '
            '<body onload="window.__pwned = \'onload\'"> '
            '<svg onload="window.__pwned = \'svg\'"></svg>')


def _data_uris(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:[^;"]+;base64,([^"]+)"', html)]


@pytest.fixture
def hostile_report(lab, make_experiment, cli, tmp_path) -> tuple[Path, bytes]:
    """A report whose hypothesis, journal note and ignore reason carry scripts and outside images."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"outside the lab: must never be embedded")
    exp = make_experiment(SCRIPT, hypothesis=f"Lower is better {PAYLOADS} ![h](/etc/hostname)")
    (exp.path / "plots").mkdir()
    (exp.path / "plots" / "leak.png").symlink_to(secret)  # a link inside the folder to a file outside
    for seed in (0, 1):
        assert cli("run", "exp", f"seed {seed}", f"seed={seed}").returncode == 0
    runs = json.loads(cli("runs", "--json", "--all").stdout)["runs"]
    note = f"[WEIRD] {PAYLOADS} ![k](/etc/hostname) ![s]({secret}) ![l](plots/leak.png) ![u](../../../{secret.name})"
    assert cli("note", "exp", note).returncode == 0
    assert cli("ignore", runs[0]["id"], "--why", f"bad data {PAYLOADS} ![k](/etc/hostname)").returncode == 0
    out = cli("report", "exp")
    assert out.returncode == 0, out.stderr
    return exp.path / "REPORT.html", secret.read_bytes()


def test_typed_markup_is_escaped_and_no_outside_file_is_embedded(hostile_report):
    path, secret = hostile_report
    html = path.read_text()
    body = html.split("<body>", 1)[1]
    tags = re.findall(r"<([a-zA-Z][\w-]*)([^>]*)>", body)  # real tags only: escaped text starts with &lt;
    assert {name for name, _ in tags} <= {"h1", "h2", "p", "em", "strong", "code", "a", "ul", "li", "blockquote", "img",
                                          "table", "thead", "tbody", "tr", "th", "td", "br", "hr", "ol", "pre"}
    assert not [attrs for _, attrs in tags if re.search(r"\bon\w+\s*=", attrs)]
    assert body.count("&lt;script&gt;window.__pwned") == 3  # hypothesis, note and ignore reason, all shown as text
    embedded = _data_uris(html)
    assert embedded, "the run's figure should still be embedded"
    forbidden = {secret, Path("/etc/hostname").read_bytes()} if Path("/etc/hostname").is_file() else {secret}
    assert not forbidden & set(embedded)
    assert "image /etc/hostname not embedded" in body and "image plots/leak.png not embedded" in body
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp and "default-src 'none'" in csp.group(1) and "script-src" not in csp.group(1)


def test_report_runs_no_script_in_chromium(hostile_report):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    path, _ = hostile_report
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(path.as_uri(), wait_until="load")
            # A script of the test's own, outside the page's policy: the page's own scripts could not run.
            assert page.evaluate("window.__pwned") is None and not dialogs
            assert page.locator("script, body [onerror], body [onload], svg").count() == 0
            assert "<script>window.__pwned" in page.inner_text("body")  # shown as text
            # The policy allows the report's own style (by hash) and its embedded figures.
            assert page.evaluate("getComputedStyle(document.body).maxWidth") != "none"
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
            assert widths and all(w > 0 for w in widths)
        finally:
            browser.close()
