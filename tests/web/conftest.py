"""A lab made by real runs (the runner launching tiny scripts), shared by the API and browser tests.

Scripts log known values, so tests can check that what the dashboard serves and draws is exactly
what was logged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# The real browser the web and security tests drive through Playwright.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright, one per test module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()

SCRIPT = """\
import assay

p = assay.params()
assay.init()
lr = p["lr"]  # read, so the run records no unread-override warning
for step, v in enumerate(p["losses"]):
    assay.log({"loss": v, "acc": round(1 - v, 6)}, step=step)
if p["crash"]:
    raise SystemExit("boom: <b>not bold</b>")
print(f"val_loss: {p['losses'][-1]}")
assay.finish()
"""
BASE = [1.0, 0.5, 0.25, 0.125]
FAST = [0.9, 0.6, 0.4]
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> loss spikes at step 3'
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082")


@dataclass(frozen=True)
class RealLab:
    lab: object
    root: Path
    base: str  # run ids
    fast: str
    crashed: str
    ignored: str


def build_lab(root: Path) -> RealLab:
    from assay.config import dump_yaml
    from assay.journal import add_note, ignore_run
    from assay.lab import init_lab
    from assay.runner.launch import RunSpec, run_experiment

    lab, _ = init_lab(root)
    exp_dir = lab.experiment_dir("exp")
    exp_dir.mkdir(parents=True)
    (exp_dir / "train.py").write_text(SCRIPT)
    (exp_dir / "config.yaml").write_text(dump_yaml({"seed": 0, "lr": 0.1, "losses": BASE, "crash": False}))
    (exp_dir / "experiment.yaml").write_text(dump_yaml({
        "hypothesis": "A higher <em>lr</em> converges faster", "metric": {"name": "val_loss", "goal": "min"},
        "success": "val_loss <= 0.2", "failure": "val_loss > 0.9", "entry": "train.py", "timeout": "60s",
        "units": {"loss": "nats"}}))
    (exp_dir / "JOURNAL.md").write_text("# Journal: exp\n\n")
    other = lab.experiment_dir("other")
    other.mkdir()
    (other / "experiment.yaml").write_text(dump_yaml({"hypothesis": "untested", "metric": {"name": "acc", "goal": "max"}}))

    def run(desc: str, **params: object) -> str:
        (res,) = run_experiment(lab, RunSpec("exp", desc, extra_params=params))
        return str(res.record["id"])

    base = run("base", lr=0.1, losses=BASE)
    fast = run("fast", lr=0.5, losses=FAST)
    crashed = run("crash", lr=1.0, losses=[2.0], crash=True)
    ignored = run("ignored", lr=0.01, losses=[3.0, 2.0])
    ignored_path = exp_dir / "runs" / ignored.split("/")[1]
    ignore_run(ignored_path, "data loader bug")
    with lab.index() as index:
        index.set_ignored(ignored, True)
    (exp_dir / "runs" / base.split("/")[1] / "plots" / "curve.png").write_bytes(PNG)
    add_note(exp_dir, f"[WEIRD] {XSS}", run=base)
    (exp_dir / "results.tsv").write_text(textwrap.dedent(f"""\
        commit\tmetric\tmemory_gb\tstatus\tdescription\tdelta\truns
        a1b2c3d\t0.50\t0.1\tkeep\tbaseline\t0\t{base}
        b2c3d4e\t0.60\t0.1\tdiscard\twider layer\t0.1\t{fast}
        c3d4e5f\t\t0.0\tcrash\tbad idea <script>x</script>\t\t{crashed}
        d4e5f6a\t0.40\t0.1\tkeep\tcosine schedule\t-0.1\t
        e5f6""").replace("        ", ""))
    (exp_dir / "REPORT.md").write_text(
        "# Report: exp\n\nVerdict: supported <script>window.__pwned = 3</script>\n\n"
        "<!-- assay:begin:summary -->\n**a bold finding**\n<!-- assay:end:summary -->\n\n"
        "| run | val_loss |\n|---|---|\n| base | 0.125 |\n\n- a finding\n\n![curve](runs/"
        + base.split("/")[1] + "/plots/curve.png)\n")
    (root / "secret.txt").write_text("outside the experiments folder")
    (exp_dir / "escape").symlink_to(root / "secret.txt")
    return RealLab(lab, root, base, fast, crashed, ignored)


@pytest.fixture(scope="session")
def real_lab(tmp_path_factory: pytest.TempPathFactory) -> RealLab:
    return build_lab(tmp_path_factory.mktemp("web") / "lab")


@dataclass(frozen=True)
class Dashboard:
    url: str  # http://HOST:PORT, no trailing slash
    token: str  # "" when served with --no-token
    port: int
    output: str  # what `assay ui` printed before it answered


@contextmanager
def serve_dashboard(root: Path, *args: str, host: str = "127.0.0.1") -> Iterator[Dashboard]:
    """`assay ui ARGS` as a real server in `root`, polled until /api/health answers (deadline 30 s).

    The token is read from the URL the command printed, as a person would copy it.
    """
    import httpx

    port = free_port(host)
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli.main", "ui", "--port", str(port), "--host", host, *args],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    printed = []
    while not printed or "assay dashboard for" not in printed[-1]:
        line = proc.stdout.readline()  # the URL line comes before serving starts; "" when the command exited
        if not line:
            proc.wait(timeout=10)
            raise AssertionError(f"assay ui exited ({proc.returncode}) before printing its URL: {''.join(printed)}")
        printed.append(line)
    token = printed[-1].split("?token=", 1)[1].split()[0] if "?token=" in printed[-1] else ""
    url = f"http://{host}:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/api/health", headers=headers, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"assay ui did not answer: {''.join(printed)}")
            time.sleep(0.1)
        yield Dashboard(url, token, port, "".join(printed))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


CURVES = """\
import math, random
import assay

p = assay.params()
assay.init()
rng = random.Random(p["seed"])
for step in range(p["steps"]):
    loss = p["lr"] * 10 * math.exp(-step / 10) + 0.2 + rng.gauss(0, 0.02)
    assay.log({"loss": round(loss, 6), "epoch": step // 10}, step=step)
print(f"val_loss: {round(loss + rng.gauss(0, 0.01), 6)}")
assay.finish()
"""


@dataclass(frozen=True)
class CompareLab:
    lab: object
    root: Path
    runs: list[str]


def build_compare_lab(root: Path) -> CompareLab:
    """Experiment `cmp`: lr 0.1 and 0.3 over three seeds, then lr 0.1 again on a second code
    version of train.py (an edit makes one): three configurations, each a curve of 30 steps."""
    from assay.config import dump_yaml
    from assay.lab import init_lab
    from assay.runner.launch import RunSpec, run_experiment

    lab, _ = init_lab(root)
    exp_dir = lab.experiment_dir("cmp")
    exp_dir.mkdir(parents=True)
    (exp_dir / "train.py").write_text(CURVES)
    (exp_dir / "config.yaml").write_text(dump_yaml({"seed": 0, "lr": 0.1, "steps": 30}))
    (exp_dir / "experiment.yaml").write_text(dump_yaml({
        "hypothesis": "lr 0.1 ends below 0.25", "metric": {"name": "val_loss", "goal": "min"},
        "success": "val_loss <= 0.25", "entry": "train.py", "timeout": "60s", "units": {"loss": "nats", "val_loss": "nats"}}))
    runs = []
    for lr in (0.1, 0.3):
        for seed in (0, 1, 2):
            (res,) = run_experiment(lab, RunSpec("cmp", f"lr{lr}-s{seed}", extra_params={"lr": lr, "seed": seed}))
            runs.append(str(res.record["id"]))
    (exp_dir / "train.py").write_text(CURVES.replace("-step / 10", "-step / 5"))  # faster decay
    for seed in (0, 1, 2):
        (res,) = run_experiment(lab, RunSpec("cmp", f"v2-s{seed}", extra_params={"lr": 0.1, "seed": seed}))
        runs.append(str(res.record["id"]))
    return CompareLab(lab, root, runs)


@pytest.fixture(scope="session")
def compare_lab(tmp_path_factory: pytest.TempPathFactory) -> CompareLab:
    return build_compare_lab(tmp_path_factory.mktemp("web-compare") / "lab")


SWEEP_SCRIPT = """\
import math
import assay

p = assay.params()
assay.init()
if p["opt"] == "sgd" and p["lr"] > 0.03:
    raise SystemExit("diverged: sgd with a large lr")
for step in range(5):
    loss = (math.log10(p["lr"]) + 2.5) ** 2 + 0.1 * p["layers"] + (0.3 if p["opt"] == "sgd" else 0.0) + 1.0 / (step + 1)
    assay.log({"loss": round(loss, 6)}, step=step)
print(f"val_loss: {round(loss, 6)}")
assay.finish()
"""


@dataclass(frozen=True)
class SweepLab:
    lab: object
    root: Path
    summary: dict  # `assay sweep ... --json`


def build_sweep_lab(root: Path) -> SweepLab:
    """Experiment `sw`: a real `assay sweep` of 20 random trials on 2 slots over a log-range lr, an
    int range and a categorical optimiser; sgd with lr > 0.03 crashes, so some trials fail."""
    import json

    from assay.config import dump_yaml
    from assay.lab import init_lab

    lab, _ = init_lab(root)
    exp_dir = lab.experiment_dir("sw")
    exp_dir.mkdir(parents=True)
    (exp_dir / "train.py").write_text(SWEEP_SCRIPT)
    (exp_dir / "config.yaml").write_text(dump_yaml({"seed": 0, "lr": 0.01, "layers": 2, "opt": "adam"}))
    (exp_dir / "experiment.yaml").write_text(dump_yaml({
        "hypothesis": "lr near 3e-3 is best", "metric": {"name": "val_loss", "goal": "min"},
        "entry": "train.py", "timeout": "60s", "units": {"val_loss": "nats"}}))
    out = subprocess.run([sys.executable, "-m", "assay.cli.main", "sweep", "sw", "lr=log(1e-4,1e-1)", "layers=range(1,5)",
                          "opt=sgd,adam", "--sampler", "random", "--trials", "20", "-j", "2", "--json"],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return SweepLab(lab, root, json.loads(out.stdout))


@pytest.fixture(scope="session")
def sweep_lab(tmp_path_factory: pytest.TempPathFactory) -> SweepLab:
    return build_sweep_lab(tmp_path_factory.mktemp("web-sweep") / "lab")


LOOP_AGENT = r'''
import os, re
n = int(os.environ["ASSAY_AGENT_CALL"])
train = "experiments/exp/train.py"
plan = {
    1: ("lr 0.5", r"^LR = .*$", "LR = 0.5"),
    2: ("depth from a typo", r"^DEPTH = .*$", "DEPTH = missing_name"),
    3: ("fix: depth 4", r"^DEPTH = .*$", "DEPTH = 4"),
    4: ("lr 3.0", r"^LR = .*$", "LR = 3.0"),
}
desc, pattern, line = plan[n]
text = open(train).read()
open(train, "w").write(re.sub(pattern, line, text, flags=re.M))
open(os.environ["ASSAY_DESC_FILE"], "w").write(desc + "\n")
'''


@dataclass(frozen=True)
class LoopLab:
    lab: object
    root: Path
    tag: str


def build_loop_lab(root: Path) -> LoopLab:
    """Experiment `exp` in a git repository, driven by a real `assay loop start` + `assay loop run`
    with a scripted agent (standing in for an LLM coding CLI, which cannot run here): a kept
    improvement, a crash, its fix (kept) and a worse try (discarded)."""
    from assay.config import dump_yaml
    from assay.lab import init_lab
    from tests.conftest import git
    from tests.integration.conftest import PREPARE, TRAIN

    lab, _ = init_lab(root)
    exp_dir = lab.experiment_dir("exp")
    exp_dir.mkdir(parents=True)
    (exp_dir / "train.py").write_text(TRAIN.replace("NOISE", "0.0"))
    (exp_dir / "prepare.py").write_text(PREPARE)
    (exp_dir / "config.yaml").write_text(dump_yaml({"seed": 0}))
    (exp_dir / "experiment.yaml").write_text(dump_yaml({"hypothesis": "a better lr and depth lower val_bpb",
                                                        "metric": {"name": "val_bpb", "goal": "min"}, "entry": "train.py",
                                                        "timeout": "60s"}))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "baseline")
    agent = root.parent / "agent.py"
    agent.write_text(LOOP_AGENT)
    cli = [sys.executable, "-m", "assay.cli.main"]
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["loop", "start", "exp", "--tag", "dash", "--edit", "train.py", "--protect", "prepare.py", "--decision", "greedy"],
                 ["loop", "run", "dash", "--agent", f"{sys.executable} {agent}", "--max-iterations", "4", "--agent-timeout", "60s"]):
        out = subprocess.run([*cli, *args], cwd=root, capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
    return LoopLab(lab, root, "dash")


@pytest.fixture(scope="session")
def loop_lab_real(tmp_path_factory: pytest.TempPathFactory) -> LoopLab:
    return build_loop_lab(tmp_path_factory.mktemp("web-loop") / "lab")
