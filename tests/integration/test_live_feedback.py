"""Live feedback: `assay run` names the run folder and log on stderr as it starts, shows a status line
updated in place on a terminal (a real pty here), prints each seed's line as it finishes; and
`assay.init()` in an interactive session records into the lab of the working directory."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ASSAY

# Prints its metric, then waits (polling, up to 60s) for the test to create `go` next to the lab.
WAITS_FOR_GO = """\
import os, time
print("val_bpb: 0.5", flush=True)
go = os.path.join(os.environ["ASSAY_LAB"], "go-" + os.environ["ASSAY_SEED"])
end = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < end:
    time.sleep(0.02)
print("val_bpb: 0.25", flush=True)
"""


def _read_until(fd: int, needle: bytes, deadline_s: float = 30.0) -> bytes:
    """Read from `fd` until `needle` appears (or fail at the deadline); returns all bytes read."""
    seen = b""
    end = time.monotonic() + deadline_s
    while needle not in seen:
        left = end - time.monotonic()
        assert left > 0, f"timed out waiting for {needle!r}; saw {seen[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the pty closed: the process ended
                break
            if not chunk:
                break
            seen += chunk
    assert needle in seen, f"{needle!r} not in {seen[-500:]!r}"
    return seen


def test_status_line_on_a_terminal_shows_metric_elapsed_and_time_left_then_clears(lab, make_experiment):
    make_experiment(WAITS_FOR_GO, timeout="10m")
    master, slave = os.openpty()
    proc = subprocess.Popen([*ASSAY, "run", "exp", "live"], cwd=lab.root, stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, env={**os.environ, "TERM": "xterm", "COLUMNS": "200"})
    os.close(slave)
    try:
        seen = _read_until(master, b"val_bpb=0.5")
        assert b"run experiments/exp/runs/" in seen and b"/logs/output.log)" in seen  # where it writes, first
        status = seen.rsplit(b"\r\x1b[K", 1)[-1].decode()
        assert status.startswith("running exp/") and "val_bpb=0.5 @ " in status, status
        assert " elapsed, " in status and status.rstrip().endswith(" left"), status
        assert re.search(r"elapsed, (9m[0-5]\ds|10m00s) left", status), status  # a 10m timeout, seconds into the run
        (lab.root / "go-0").touch()
        out, _ = proc.communicate(timeout=60)
        rest = b""
        while True:  # the rest of the terminal output, up to the closed pty
            ready, _, _ = select.select([master], [], [], 1)
            try:
                chunk = os.read(master, 4096) if ready else b""
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0
    assert out.decode().startswith("ok ") and len(out.decode().splitlines()) == 1  # stdout: the summary only
    assert (seen + rest).endswith(b"\r\x1b[K")  # the status line was cleared, the terminal left clean


def test_piped_run_prints_where_it_writes_on_stderr_and_no_status_line(lab, make_experiment, cli):
    make_experiment('print("val_bpb: 0.5")\n')
    out = cli("run", "exp", "piped")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 1 and out.stdout.startswith("ok ")
    run_dir = next((lab.experiment_dir("exp") / "runs").iterdir())
    rel = run_dir.relative_to(lab.root)
    assert out.stderr == f"run {rel}  (log: {rel}/logs/output.log)\n"


def test_repeat_prints_each_seeds_line_as_it_finishes(lab, make_experiment):
    make_experiment(WAITS_FOR_GO)
    (lab.root / "go-0").touch()  # seed 0 ends at once; seed 1 waits for go-1
    proc = subprocess.Popen([*ASSAY, "run", "exp", "rep", "--repeat", "2"], cwd=lab.root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        first = _read_until(proc.stdout.fileno(), b"\n")
        assert first.startswith(b"ok ") and b"-rep-seed0" in first
        assert proc.poll() is None  # seed 1 is still running: the line came as seed 0 finished
        (lab.root / "go-1").touch()
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = (first + rest).decode().splitlines()
    assert len(lines) == 2 and "-rep-seed1" in lines[1] and proc.returncode == 0


def _interactive(cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Code typed at a real Python prompt (`python -i` reading stdin): sys.ps1 is set, no script file."""
    return subprocess.run([sys.executable, "-i"], input=code, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")})


def test_init_at_a_prompt_records_into_the_experiment_of_the_working_directory(lab, make_experiment):
    exp = make_experiment("", config={"seed": 0, "lr": 0.1})
    out = _interactive(exp.path, "import assay\nrun = assay.init('try-lr')\nprint('lr', assay.params()['lr'])\n"
                                 "assay.log({'val_bpb': 0.9})\nassay.finish()\nprint('AT', run.path)\n")
    assert "lr 0.1" in out.stdout, out.stderr
    run_dir = Path(out.stdout.split("AT ", 1)[1].split()[0])
    assert run_dir.parent == exp.path / "runs" and run_dir.name.endswith("-try-lr")
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["interactive"] and rec["experiment"] == "exp" and rec["status"] == "ok"
    assert rec["metrics"]["val_bpb"]["last"] == 0.9 and rec["params"] == {"seed": 0, "lr": 0.1}
    assert not (Path(sys.executable).parent / "runs").exists()  # nothing next to the interpreter


def test_init_at_a_prompt_elsewhere_in_the_lab_names_the_experiment_to_pass(lab, make_experiment):
    make_experiment("", name="cls")
    out = _interactive(lab.root, "import assay\nassay.init()\n")
    assert f"assay.init() in {lab.root.resolve()} is not inside an experiment folder" in out.stderr
    assert "assay.init(experiment='cls') (known: cls)" in out.stderr
    out = _interactive(lab.root, "import assay\nrun = assay.init(experiment='cls')\nassay.finish()\nprint('AT', run.path)\n")
    assert Path(out.stdout.split("AT ", 1)[1].split()[0]).parent == lab.experiment_dir("cls") / "runs", out.stderr


def test_init_at_a_prompt_outside_any_lab_says_there_is_none_and_writes_nothing(tmp_path):
    (tmp_path / "plain").mkdir()
    out = _interactive(tmp_path / "plain", "import assay\nassay.init()\n")
    assert f"assay.init() found no assay lab in {(tmp_path / 'plain').resolve()} or its parents" in out.stderr
    assert "assay init" in out.stderr
    assert list((tmp_path / "plain").iterdir()) == []


def test_status_text_without_a_metric_yet_and_without_a_timeout(tmp_path):
    from assay.cli.live import MetricTail, status_text

    tail = MetricTail(tmp_path / "metrics.jsonl")
    assert status_text("e/r", "val_f1", tail, started=100.0, timeout=None, now=112.0) == "running e/r  val_f1=-  12.0s elapsed"
    (tmp_path / "metrics.jsonl").write_text('{"step": 3, "m": {"loss": 0.5}}\n{"step": 4, "m": {"val')  # torn last line
    tail.poll()
    assert status_text("e/r", "val_f1", tail, 100.0, 60.0, now=112.0) == "running e/r  loss=0.5 @ 3  12.0s elapsed, 48.0s left"
    with (tmp_path / "metrics.jsonl").open("a") as fh:
        fh.write('_f1": 0.8}}\n')
    tail.poll()
    assert "val_f1=0.8 @ 4" in status_text("e/r", "val_f1", tail, 100.0, 60.0, now=112.0)
