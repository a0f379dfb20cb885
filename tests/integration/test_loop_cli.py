"""The loop's commands as a user types them (real subprocesses): run with a scripted agent standing
in for an LLM coding CLI, status and log as JSON, plot, prompt, and errors on stderr with a fix."""

from __future__ import annotations

import json
import sys

from tests.conftest import run_cli
from tests.integration.conftest import PREPARE, TRAIN, commit_baseline

AGENT = (f"{sys.executable} -c \"import os,re; p='experiments/exp/train.py'; t=open(p).read(); "
         "n=os.environ['ASSAY_AGENT_CALL']; lr={'1': '0.5', '2': '4.0'}.get(n, '0.4'); "
         "open(p,'w').write(re.sub(r'LR = .*', 'LR = ' + lr, t)); "
         "open(os.environ['ASSAY_DESC_FILE'],'w').write('lr ' + lr)\"")


def test_loop_run_with_an_agent_then_status_log_plot_and_prompt(lab, make_experiment):
    exp = make_experiment(TRAIN.replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    out = run_cli("loop", "start", "exp", "--tag", "c", "--edit", "train.py", "--protect", "prepare.py",
                  "--decision", "greedy", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    out = run_cli("loop", "run", "c", "--agent", AGENT, "--max-iterations", "3", "--agent-timeout", "60s", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["keep", "discard", "keep", "stopped:"]
    assert lines[-1] == "stopped: max iterations (3)"
    s = json.loads(run_cli("loop", "status", "c", "--json", cwd=lab.root).stdout)
    assert s["counts"] == {"keep": 3, "discard": 1, "crash": 0} and s["iterations"] == 3
    log = json.loads(run_cli("loop", "log", "c", "--json", cwd=lab.root).stdout)
    assert [r["description"] for r in log] == ["baseline", "lr 0.5", "lr 4.0", "lr 0.4"]
    table = run_cli("loop", "log", "c", cwd=lab.root).stdout
    assert "lr 4.0" in table and "discard" in table
    png = run_cli("loop", "plot", "c", cwd=lab.root)
    assert png.returncode == 0 and png.stdout.strip().endswith("loop-c.png")
    prompt = run_cli("loop", "prompt", "c", cwd=lab.root)
    assert "lr 0.4" in prompt.stdout and "assay try" in prompt.stdout


def test_loop_errors_name_the_problem_and_the_fix(lab, make_experiment):
    make_experiment(TRAIN.replace("NOISE", "0.0"))
    out = run_cli("loop", "start", "exp", "--tag", "x", "--edit", "train.py", cwd=lab.root)
    assert out.returncode == 1 and "not inside a git repository" in out.stderr and "git init" in out.stderr
    out = run_cli("loop", "status", "nope", cwd=lab.root)
    assert out.returncode == 1 and "No loop with tag 'nope'" in out.stderr and "assay loop start" in out.stderr
