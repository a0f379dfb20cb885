"""A read-only lab (a colleague's lab, a read-only mount of a shared disk) can be read, and writers say so.

How the lab is made read-only, honestly: tests often run as root, for whom permission bits are
not enforced, so `chmod -R a-w` would prove nothing there. The lab is instead bind-mounted onto
itself read-only inside a user and mount namespace (`unshare -rm`), where every write fails with
EROFS, for root too, and only for the commands run inside it. Where namespaces are unavailable, a
non-root user gets `chmod -R a-w` (EACCES); root without namespaces skips.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ASSAY

SCRIPT = """
import assay
p = assay.params()
for step in range(3):
    assay.log({"val_bpb": 1.0 - p["lr"] * step}, step=step)
"""


def _namespaces_work() -> bool:
    if not shutil.which("unshare"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        q = shlex.quote(tmp)
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind {q} {q} && mount -o remount,bind,ro {q} "
                                f"&& ! touch {q}/x 2>/dev/null"], capture_output=True)
    return probe.returncode == 0


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def read_only(lab) -> Iterator[object]:
    """read_only(*argv) runs argv in the lab with the lab read-only; returns the CompletedProcess."""
    root = str(lab.root)
    if _namespaces_work():
        q = shlex.quote(root)
        mount = f"mount --bind {q} {q} && mount -o remount,bind,ro {q}"

        def call(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["unshare", "-rm", "sh", "-c", f'{mount} && exec "$@"', "sh", *argv],
                                  cwd=root, capture_output=True, text=True, timeout=120)

        yield call
        return
    if os.geteuid() == 0:
        pytest.skip("root without user namespaces: no honest way to make the lab read-only here")
    folders = [p for p in [lab.root, *lab.root.rglob("*")] if p.is_dir()]
    for p in [*lab.root.rglob("*"), lab.root]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def call_plain(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=root, capture_output=True, text=True, timeout=120)

    try:
        yield call_plain
    finally:
        for p in folders:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def filled(lab, make_experiment, cli) -> dict[str, str]:
    """Two finished runs and one 'running' run whose process is long gone (a reader would mark it lost)."""
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.1})
    for lr in ("0.1", "0.2"):
        assert cli("run", "exp", f"lr{lr}", f"lr={lr}").returncode == 0
    runs = sorted((lab.experiment_dir("exp") / "runs").iterdir())
    dead = runs[0]
    record = json.loads((dead / "run.json").read_text())
    record.update(status="running", owner_pid=2**22 + 12345, owner_started=1.0, host=record.get("host"))
    (dead / "run.json").write_text(json.dumps(record))
    assert cli("reindex").returncode == 0  # the index now says running too
    return {"dead": f"exp/{dead.name}", "ok": f"exp/{runs[1].name}"}


def test_readers_work_on_a_read_only_lab_and_write_nothing(lab, filled, read_only):
    before = _hashes(lab.root)

    runs = read_only(*ASSAY, "runs", "--json")
    assert runs.returncode == 0, runs.stderr
    listed = {r["id"]: r["status"] for r in json.loads(runs.stdout)["runs"]}
    assert listed[filled["ok"]] == "ok"
    assert listed[filled["dead"]] == "lost"  # shown as lost...

    status = read_only(*ASSAY, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert filled["dead"] in {r["id"] for r in json.loads(status.stdout)["lost"]}

    show = read_only(*ASSAY, "show", filled["ok"], "--json")
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["status"] == "ok"

    compare = read_only(*ASSAY, "compare", "exp", "--by", "lr", "--json")
    assert compare.returncode == 0, compare.stderr
    assert sorted(r["lr"] for r in json.loads(compare.stdout)["rows"]) == [0.1, 0.2]

    for out in (runs, status, show, compare):
        assert "Traceback" not in out.stderr
    assert _hashes(lab.root) == before  # ...but nothing recorded: no lost marking, no index write


def test_the_dashboard_data_is_served_from_a_read_only_lab(lab, filled, read_only):
    probe = (
        "import json, sys\n"
        "from assay.lab import find_lab\n"
        "from assay.web import data\n"
        "lab = find_lab()\n"
        "rows = data.runs_page(lab, 'exp', None, None, 0, 50, False)\n"
        "exps = data.experiments(lab)\n"
        f"run = data.run(lab, {filled['ok']!r})\n"
        "print(json.dumps({'n': len(rows['rows']), 'exps': [e['name'] for e in exps], 'run': run['status']}))\n"
    )
    proc = read_only(sys.executable, "-c", probe)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"n": 2, "exps": ["exp"], "run": "ok"}


@pytest.mark.parametrize("args", [("run", "exp", "again"), ("note", "exp", "a note"), ("report", "exp"),
                                  ("ignore", "{ok}", "--why", "x")])
def test_writers_say_in_one_line_that_the_lab_is_read_only(lab, filled, read_only, args):
    before = _hashes(lab.root)
    out = read_only(*ASSAY, *(a.format(**filled) for a in args))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("Error: Cannot ") and "read-only" in first, out.stderr
    assert _hashes(lab.root) == before
