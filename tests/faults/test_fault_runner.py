"""What a script does to its runner: killed from outside, daemons left behind, endless lines.

Real `assay run` subprocesses on real scripts; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.conftest import ASSAY, wait_for


def _record(exp) -> dict:
    (folder,) = list(exp.runs_dir.iterdir())
    return json.loads((folder / "run.json").read_text())


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie waiting for a reaper (it runs nothing)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_manual_kill_9_of_the_script_is_killed_not_oom(lab, make_experiment, cli):
    from assay.runner.process import oom_kill_count

    exp = make_experiment("import time\nprint('step 1', flush=True)\ntime.sleep(60)\n")
    before = oom_kill_count()
    proc = subprocess.Popen([*ASSAY, "run", "exp", "kill9"], cwd=lab.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def child_pid() -> int | None:
            for d in exp.runs_dir.iterdir() if exp.runs_dir.exists() else []:
                with_pid = (d / "run.json").is_file() and json.loads((d / "run.json").read_text()).get("child_pid")
                if with_pid and "step 1" in (d / "logs" / "output.log").read_text():
                    return with_pid
            return None

        os.kill(wait_for(child_pid, what="the script to start"), signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode != 130, err  # not taken for an interrupt of assay itself
    if before is not None and oom_kill_count() != before:  # the machine's OOM killer struck meanwhile
        return
    rec = _record(exp)
    assert rec["status"] == "killed"
    assert rec["reason"] == "killed by signal 9 (SIGKILL): the kernel's OOM killer or a manual kill"
    assert "killed" in out


SETSID_DAEMON = """\
setsid sleep 300 &
echo $! > daemon.pid
echo "val_bpb: 1.0"
"""

DOUBLE_FORK = """\
import os, time
if os.fork() == 0:          # first fork, then a new session, then a second fork: a classic daemon
    os.setsid()
    if os.fork() == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        with open("daemon.pid", "w") as f:
            f.write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
while not os.path.exists("daemon.pid") or not open("daemon.pid").read():
    time.sleep(0.01)
print("val_bpb: 1.0")
"""


def test_a_setsid_daemon_is_ended_when_the_run_ends_without_an_extra_wait(lab, make_experiment, cli):
    exp = make_experiment(SETSID_DAEMON, entry="train.sh")
    (exp.path / "train.sh").write_text(SETSID_DAEMON)
    started = time.monotonic()
    out = cli("run", "exp", "daemon")
    took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    daemon = int((exp.path / "daemon.pid").read_text())
    assert _gone(daemon), f"the daemon {daemon} outlived the run"
    # It held the run's output pipe open: before, assay waited 10 s for it on top of the run.
    assert took < 6, f"assay run took {took:.1f} s"
    rec = _record(exp)
    assert rec["status"] == "ok"
    assert any(f"{daemon} sleep" in w for w in rec["warnings"])


def test_a_double_forked_daemon_with_its_own_output_is_ended_too(lab, make_experiment, cli):
    exp = make_experiment(DOUBLE_FORK)
    out = cli("run", "exp", "double-fork")
    assert out.returncode == 0, out.stderr
    daemon = int((exp.path / "daemon.pid").read_text())
    assert _gone(daemon), f"the daemon {daemon} outlived the run"


def test_ending_leftovers_spares_processes_the_run_did_not_start(lab, make_experiment, tmp_path):
    # A process of the same user, started while the run is going, in another session: not the run's.
    exp = make_experiment("import os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.01)\nprint('val_bpb: 1.0')\n")
    run = subprocess.Popen([*ASSAY, "run", "exp", "bystander"], cwd=lab.root, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        wait_for(lambda: exp.runs_dir.exists() and any(exp.runs_dir.iterdir()), what="the run to start")
        (exp.path / "go").write_text("")
        run.communicate(timeout=60)
        assert run.returncode == 0
        assert bystander.poll() is None, "a process outside the run was ended"
    finally:
        bystander.kill()
        bystander.wait()
        run.kill() if run.poll() is None else None


LONG_LINES = """\
import sys
out = sys.stdout.buffer
out.write(b"val_bpb: 3.0\\n")
out.write(b"val_bpb: 9.0" + b" " * (2 << 20) + b"\\n")     # a 2 MiB line: over the cap, not parsed
out.write(b"x" * (3 << 20))                                  # 3 MiB with no newline at all
out.write(b"\\r\\nprogress 1\\rval_bpb: 2.0\\r\\n")
out.write("é".encode() * 10 + b"\\nval_bpb: 1.0")           # last line without a newline
"""


def test_long_lines_are_logged_byte_for_byte_and_metrics_after_them_are_captured(lab, make_experiment, cli):
    exp = make_experiment(LONG_LINES)
    out = cli("run", "exp", "long")
    assert out.returncode == 0, out.stderr
    folder = next(exp.runs_dir.iterdir())
    expected = (b"val_bpb: 3.0\n" + b"val_bpb: 9.0" + b" " * (2 << 20) + b"\n" + b"x" * (3 << 20)
                + b"\r\nprogress 1\rval_bpb: 2.0\r\n" + "é".encode() * 10 + b"\nval_bpb: 1.0")
    assert (folder / "logs" / "output.log").read_bytes() == expected
    from assay.store.records import metric_series

    values = [v for _, v, _ in metric_series(folder)["val_bpb"]]
    assert values == [3.0, 2.0, 1.0]  # 9.0 sat on a line past the 1 MiB cap
    assert _record(exp)["status"] == "ok"


def test_the_reader_splits_lines_the_same_way_whatever_the_chunk_boundaries(tmp_path: Path):
    from assay.runner.process import _Pump

    data = b"a: 1\r\nbb: 2\rccc: 3\n" + b"y" * 50 + b"\nd: 4\n" + b"z" * 20
    expected = ["a: 1", "bb: 2", "ccc: 3", "d: 4", "z" * 20]
    for size in (1, 2, 3, 7, 64, len(data)):
        lines: list[str] = []
        read_fd, write_fd = os.pipe()
        os.close(write_fd)
        pump = _Pump(read_fd, tmp_path / f"log{size}", lines.append, False, line_cap=32)
        for i in range(0, len(data), size):
            pump._split(data[i:i + size])
        pump.run()  # end of output: hands over the unfinished last line, closes the log
        assert [ln for ln in lines if ln] == expected, size  # a \r\n cut in two gives one extra empty line
