"""Exit codes are a contract (README, "Exit codes"): 0 every run ok, 1 a run that did not end ok
(its summary still printed, --json still valid), 2 usage or configuration, 130 interrupted (tested
in test_store.py and test_sweep.py). Real scripts, real subprocesses."""

from __future__ import annotations

import json

import pytest

SCRIPTS = {
    "ok": "print('val_bpb: 1.0')\n",
    "failed": "import sys\nprint('val_bpb: 1.0')\nsys.exit(3)\n",
    "timeout": "import time\nprint('val_bpb: 1.0', flush=True)\ntime.sleep(60)\n",
    "oom": "raise MemoryError('out of memory in the forward pass')\n",
    "killed": "import os, signal\nprint('val_bpb: 1.0', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "nan": "print('val_bpb: nan')\n",
}


@pytest.mark.parametrize("status", list(SCRIPTS))
def test_assay_run_exits_with_the_runs_outcome_and_still_prints_its_summary(lab, make_experiment, cli, status):
    make_experiment(SCRIPTS[status])
    args = ["run", "exp", status, "--timeout", "2s"]
    out = cli(*args)
    assert out.returncode == (0 if status == "ok" else 1), (out.stdout, out.stderr)
    assert out.stdout.startswith(f"{status} ")  # the summary line is printed either way
    as_json = cli(*args, "--json")
    assert as_json.returncode == out.returncode and json.loads(as_json.stdout)[0]["status"] == status


def test_one_failed_seed_of_a_repeat_makes_the_command_exit_1(lab, make_experiment, cli):
    make_experiment("import os, sys\nprint('val_bpb: 1.0')\nsys.exit(1 if os.environ['ASSAY_SEED'] == '1' else 0)\n")
    out = cli("run", "exp", "mixed", "--repeat", "3")
    assert out.returncode == 1 and [line.split()[0] for line in out.stdout.splitlines() if not line.startswith(" ")] == ["ok", "failed", "ok"]


def test_a_sweep_exits_1_when_no_trial_succeeded_and_with_strict_when_any_failed(lab, make_experiment, cli):
    make_experiment("import assay, sys\np = assay.params()\nprint('val_bpb:', p['lr'])\nsys.exit(1 if p['lr'] > 0.5 else 0)\n",
                    config={"seed": 0, "lr": 0.1})
    assert cli("sweep", "exp", "lr=0.7,0.9", "-j", "1").returncode == 1  # every trial failed
    some = cli("sweep", "exp", "lr=0.1,0.9", "-j", "1")
    assert some.returncode == 0 and "1 failed" in some.stdout  # some succeeded: the summary says what failed
    assert cli("sweep", "exp", "lr=0.1,0.9", "-j", "1", "--strict").returncode == 1
    assert cli("sweep", "exp", "lr=0.1,0.2", "-j", "1", "--strict").returncode == 0


@pytest.mark.parametrize(("args", "token"), [
    (["runs", "--where", "lr>>1"], ">>"),
    (["runs", "--where", "val_bpb>abc"], "abc"),
    (["runs", "--where", "nosuchfield>1"], "nosuchfield"),
    (["runs", "--sort", "val_bpb:sideways"], "sideways"),
    (["runs", "--sort", "nosuchfield"], "nosuchfield"),
    (["run", "exp", "x", "--tag", "foo"], "foo"),
    (["compare", "exp", "--by", "nosuch"], "nosuch"),
    (["compare", "exp", "--value", "median"], "median"),
    (["run", "exp", "x", "nosuch=1"], "nosuch"),
    (["run", "nosuch", "x"], "nosuch"),
    (["show", "nosuchrun"], "nosuchrun"),
])
def test_usage_and_configuration_errors_exit_2_naming_the_bad_token(lab, make_experiment, cli, args, token):
    make_experiment("print('val_bpb: 1.0')\n", config={"seed": 0, "lr": 0.1})
    assert cli("run", "exp", "base").returncode == 0
    out = cli(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("Error: ") and token in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3


def test_read_only_commands_exit_0_on_a_failed_run(lab, make_experiment, cli):
    make_experiment(SCRIPTS["failed"])
    assert cli("run", "exp", "bad").returncode == 1
    for args in (["show", "bad"], ["runs"], ["compare", "exp"], ["verdict", "exp"], ["status"]):
        assert cli(*args).returncode == 0, args
