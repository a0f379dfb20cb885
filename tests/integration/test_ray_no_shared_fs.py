"""`assay sweep --executor ray --address` on a cluster whose workers do not use the lab's disk.

A real local Ray cluster: a head node with no CPUs (nothing runs there) and two worker nodes, each
started from its own folder with its own TMPDIR, so a trial's code and run folder live in that
node's folder. The trials' code is committed, edited and not committed, and partly untracked:
all of it must reach the workers. The cluster's processes are ended by their session ids, so
other Ray instances on the machine are left alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.integration.conftest import commit_baseline

ray = pytest.importorskip("ray")

TRAIN = """\
import json, os, time, assay
from helper import scale  # untracked: shipped with the code
FACTOR = 1
p = assay.params()
time.sleep(1.0)  # two trials overlap, one per worker
run = os.environ["ASSAY_RUN_DIR"]
with open(os.path.join(run, "data", "where.json"), "w") as fh:
    json.dump({"cwd": os.getcwd(), "file": os.path.abspath(__file__), "run": run}, fh)
with open("note.txt", "w") as fh:
    fh.write("x")
assay.log_artifact("note.txt")
print("val_loss:", scale(p["x"]) * FACTOR)
"""


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def cluster():
    """(address, [worker folders]); Unix socket paths must stay short, hence mkdtemp in /tmp."""
    base = Path(tempfile.mkdtemp(prefix="arc", dir="/tmp"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    gcs, client, dash, *agents = _ports(6)
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, args: list[str], agent: int) -> Path:
        folder = base / name
        (folder / "tmp").mkdir(parents=True)
        procs.append(subprocess.Popen(
            ["ray", "start", "--block", "--temp-dir", str(folder / "t"), "--dashboard-agent-listen-port", str(agent),
             "--disable-usage-stats", *args], cwd=folder, env={**env, "TMPDIR": str(folder / "tmp")},
            stdout=(folder / "log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True))
        return folder

    address = f"127.0.0.1:{gcs}"
    try:
        start("head", ["--head", "--port", str(gcs), "--num-cpus", "0", "--ray-client-server-port", str(client),
                       "--dashboard-port", str(dash), "--include-dashboard", "false"], agents[0])
        workers = [start(f"w{i}", ["--address", address, "--num-cpus", "1"], agents[i]) for i in (1, 2)]
        yield address, workers, env
    finally:
        for p in procs:  # `ray start --block` leads a session holding every process of its node
            sid = p.pid
            for pid in [int(x) for x in os.listdir("/proc") if x.isdigit()]:
                try:
                    if os.getsid(pid) == sid:
                        os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    continue
            p.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def _wait_for_nodes(address: str, env: dict[str, str], n: int) -> None:
    probe = f"import ray; ray.init(address='{address}', log_to_driver=False); print(len([x for x in ray.nodes() if x['Alive']]))"
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
        if out.stdout.strip() == str(n):
            return
        assert time.monotonic() < deadline, f"the cluster never had {n} nodes: {out.stdout} {out.stderr[-2000:]}"
        time.sleep(1)


def test_a_ray_sweep_on_a_cluster_without_the_lab_disk_brings_every_run_home(lab, make_experiment, cluster):
    address, workers, env = cluster
    exp = make_experiment(TRAIN, config={"seed": 0, "x": 1.0}, metric="val_loss", goal="min")
    commit_baseline(lab.root)
    (exp.path / "helper.py").write_text("def scale(x):\n    return 10 * x\n")  # untracked
    train = exp.path / "train.py"
    train.write_text(train.read_text().replace("FACTOR = 1", "FACTOR = 2"))  # uncommitted
    assert git(lab.root, "status", "--porcelain") != ""
    _wait_for_nodes(address, env, 3)

    out = subprocess.run([sys.executable, "-m", "assay.cli.main", "sweep", "exp", "x=1.0,2.0,3.0,4.0", "--executor", "ray",
                          "--address", address, "-j", "2"], cwd=lab.root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    runs = sorted(p for p in exp.runs_dir.iterdir() if p.is_dir())
    assert len(runs) == 4
    lab_root = str(lab.root.resolve())
    used = set()
    for run in runs:
        rec = json.loads((run / "run.json").read_text())
        assert rec["status"] == "ok", rec.get("reason")
        x = rec["params"]["x"]
        assert rec["metrics"]["val_loss"]["last"] == pytest.approx(20 * x)  # the patch and the untracked file arrived
        assert f"val_loss: {20 * x}" in (run / "logs" / "output.log").read_text()
        assert (run / "data" / "note.txt").read_text() == "x"  # logged as an artifact on the worker
        where = json.loads((run / "data" / "where.json").read_text())
        for key in ("cwd", "file", "run"):  # the script never saw the lab's paths
            assert not where[key].startswith(lab_root), (key, where[key])
        node = [w for w in workers if where["cwd"].startswith(str(w))]
        assert len(node) == 1, where
        used.add(node[0])
    assert used == set(workers)  # both workers ran trials
