"""A full disk during a run: a clear error, the store intact, and the run recoverable once space is freed.

The disk is a real 4 MiB tmpfs, mounted in a private mount namespace (`unshare --mount`, or
`unshare --user --map-root-user --mount` where unprivileged user namespaces are allowed), so the
test needs no root on the host and leaves no mount behind. Everything that touches the tmpfs runs
inside that namespace: a driver script does the steps and prints what it saw as JSON. Where no
namespace can be made, the tmpfs test is skipped and a per-process file-size quota
(RLIMIT_FSIZE, the kernel's EFBIG) stands in for the script's side of a full disk.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap

import pytest

from assay.store.query import list_runs, reindex, show_run
from tests.conftest import ASSAY, run_cli

FILL = """\
import assay
for i in range(50):
    assay.log({"val_bpb": 1.0 - i / 1000}, step=i)
print("val_bpb: 0.95", flush=True)
with open("big.bin", "wb") as fh:  # a checkpoint that does not fit
    while True:
        fh.write(b"x" * 65536)
"""

DRIVER = r'''
import json, os, subprocess, sys
from pathlib import Path

mnt, assay = Path(sys.argv[1]), json.loads(sys.argv[2])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
out = {}

def cli(*args):
    p = subprocess.run([*assay, *args], cwd=mnt / "lab", capture_output=True, text=True, timeout=120)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}

subprocess.run([*assay, "init", str(mnt / "lab")], check=True, capture_output=True)
exp = mnt / "lab" / "experiments" / "e"
exp.mkdir(parents=True)
(exp / "train.py").write_text("print('val_bpb: 1.0')\n")
(exp / "fill.py").write_text(os.environ["FILL_SCRIPT"])
(exp / "config.yaml").write_text("seed: 0\n")
(exp / "experiment.yaml").write_text("hypothesis: x\nmetric: {name: val_bpb, goal: min}\nentry: train.py\ntimeout: 60s\n")
out["first"] = cli("run", "e", "first")
first = next((exp / "runs").iterdir())
before = {p.name: p.read_bytes() for p in first.rglob("*") if p.is_file()}
out["fill"] = cli("run", "e", "fill", "--entry", "fill.py")
st = os.statvfs(mnt)
out["free_bytes"] = st.f_bavail * st.f_frsize
out["runs_full"] = cli("runs", "e", "--json")
out["status_full"] = cli("status", "--json")
after = {p.name: p.read_bytes() for p in first.rglob("*") if p.is_file()}
out["first_intact"] = before == after
out["tmp_files"] = [str(p) for p in (mnt / "lab").rglob("*.tmp")]
fill = next(p for p in (exp / "runs").iterdir() if p.name.endswith("fill"))
out["fill_record_while_full"] = json.loads((fill / "run.json").read_text())
(exp / "big.bin").unlink()  # the user frees space
out["status_freed"] = cli("status", "--json")
out["reindex_freed"] = cli("reindex", "--json")
out["runs_freed"] = cli("runs", "e", "--json")
out["fill_record_freed"] = json.loads((fill / "run.json").read_text())
print(json.dumps(out))
'''


def _namespace_prefix() -> list[str] | None:
    """A command prefix that gives a private mount namespace where mounting a tmpfs is allowed."""
    if not shutil.which("unshare") or not shutil.which("mount"):
        return None
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || "
                                "mount -t tmpfs -o size=1m tmpfs \"$TMPDIR\""], capture_output=True,
                               env={**os.environ, "TMPDIR": os.environ.get("TMPDIR", "/tmp")})
        if probe.returncode == 0:
            return prefix
    return None


def test_full_disk_during_a_run_is_a_clear_error_and_the_store_stays_intact(tmp_path):
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("cannot mount a tmpfs here (no mount namespace); RLIMIT_FSIZE test covers the script side")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run([*prefix, sys.executable, "-c", DRIVER, str(mnt), json.dumps(ASSAY)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "FILL_SCRIPT": FILL})
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["first"]["rc"] == 0
    assert seen["free_bytes"] < 1 << 20  # the disk really was full

    fill = seen["fill"]
    assert fill["rc"] == 1, fill
    assert "Traceback" not in fill["err"] and "No space left on device" in fill["err"], fill["err"]
    for step in ("runs_full", "status_full"):  # reading while full: works, or says the disk is full
        res = seen[step]
        said = res["err"] + res["out"]  # under --json an error is JSON on stdout
        assert "Traceback" not in said, (step, said)
        assert res["rc"] == 0 or "full" in said, (step, said)
        assert "reindex --force" not in said, "a full disk is not a corrupt index"
    assert seen["first_intact"], "a finished run changed while the disk was full"
    assert seen["tmp_files"] == [], "half-written temp files were left behind"
    assert seen["fill_record_while_full"]["status"] == "running"  # the last good record, not a torn one

    # Space freed: the interrupted run is reported lost, reindex works, nothing else changed.
    assert seen["status_freed"]["rc"] == 0, seen["status_freed"]["err"]
    lost = json.loads(seen["status_freed"]["out"])["lost"]
    assert [r["id"].endswith("fill") for r in lost] == [True]
    assert seen["reindex_freed"]["rc"] == 0 and json.loads(seen["reindex_freed"]["out"])["problems"] == []
    rows = json.loads(seen["runs_freed"]["out"])["runs"]
    assert sorted(r["status"] for r in rows) == ["lost", "ok"]
    rec = seen["fill_record_freed"]
    assert rec["status"] == "lost"
    # Points still in the script's buffer when the disk filled could not be written; whatever reached
    # the file is intact (the reader stops at a torn line, never reads garbage).
    series = rec["metrics"].get("val_bpb")
    assert series is None or 0.9 <= series["last"] <= 1.0, rec["metrics"]


def test_a_file_size_quota_fails_the_run_cleanly(lab, make_experiment):
    """RLIMIT_FSIZE (a real kernel limit, EFBIG) on `assay run` and its script: the script's oversized
    write fails, the run is recorded failed with the OS error in its log, the store stays readable."""
    make_experiment(FILL)
    limit = 2 << 20

    def quota() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([*ASSAY, "run", "exp", "quota"], cwd=lab.root, capture_output=True, text=True, timeout=120,
                          preexec_fn=quota)
    assert proc.returncode == 1, proc.stderr  # the run failed: exit 1, with its record written (README, "Exit codes")
    assert "Traceback" not in proc.stderr
    rows, total = list_runs(lab, "exp")
    assert total == 1 and rows[0]["status"] == "failed"
    rec = show_run(lab, rows[0]["id"])
    assert "File too large" in rec["log_tail"]
    assert rec["metrics"]["val_bpb"]["count"] == 50  # the logged points were flushed and kept
    assert reindex(lab)["problems"] == []
    assert run_cli("runs", "exp", cwd=lab.root).returncode == 0


def test_script_for_fill_is_valid_python():
    compile(textwrap.dedent(FILL), "fill.py", "exec")
