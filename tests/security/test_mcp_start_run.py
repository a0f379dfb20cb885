"""MCP `run` takes only key=value params checked against config.yaml: never options, never a shell."""

from __future__ import annotations

import asyncio
import sys

import pytest

from assay.store import records
from tests.conftest import wait_for

pytest.importorskip("mcp")
from tests.security.mcp_session import call_tools, error_text  # noqa: E402

SCRIPT = "import assay\np = assay.params()\nprint(f\"val_bpb: {p['lr']}\")\n"
PWNED = "sh -c 'id > PWNED'"


def _runs(exp) -> list:
    return records.run_folders(exp.runs_dir) if exp.runs_dir.is_dir() else []


@pytest.mark.parametrize("wait", [True, False])
@pytest.mark.parametrize("params", [
    ["--entry", PWNED],
    [f"--entry={PWNED}"],
    ["lr=0.1", "--entry", PWNED],
    ["-f"],
    ["--repeat=50"],
    ["lr_max=1"],  # unknown key: refused before any launch, as on the CLI
])
def test_run_refuses_params_that_are_not_known_key_value_overrides(lab, make_experiment, params, wait):
    exp = make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5})
    [result] = asyncio.run(call_tools(lab.root, [("run", {"experiment": "exp", "desc": "x", "params": params,
                                                                "wait": wait})]))
    text = error_text(result)
    assert "Cannot read override" in text or "Unknown parameter 'lr_max'" in text, text
    assert not (exp.path / "PWNED").exists() and not (lab.root / "PWNED").exists()
    assert _runs(exp) == []  # refused before anything launched


def test_detached_run_reads_a_desc_and_values_starting_with_dashes_as_plain_values(lab, make_experiment):
    exp = make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5})
    [result] = asyncio.run(call_tools(lab.root, [("run", {
        "experiment": "exp", "desc": "--entry=id", "params": ["lr=-2", "+note=--timeout=1s"], "wait": False})]))
    assert not result.is_error, result.content[0].text

    def finished():
        done = [records.read_record(p) for p in _runs(exp)]
        return done if done and all(r["status"] != "running" for r in done) else None

    [record] = wait_for(finished, 60, "the detached run to finish")
    assert record["status"] == "ok" and record["params"]["lr"] == -2 and record["params"]["note"] == "--timeout=1s"
    assert record["command"][-1].endswith("train.py")  # the experiment's own entry point, not the desc


def test_run_refuses_a_timeout_or_repeat_that_cannot_be_read(lab, make_experiment):
    exp = make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5})
    bad_timeout, bad_repeat = asyncio.run(call_tools(lab.root, [
        ("run", {"experiment": "exp", "desc": "x", "timeout": "--entry=sh", "wait": False}),
        ("run", {"experiment": "exp", "desc": "x", "repeat": 0, "wait": False}),
    ]))
    assert "Cannot read duration '--entry=sh'" in error_text(bad_timeout)
    assert "run repeat must be 1 to 10, got 0" in error_text(bad_repeat)
    assert _runs(exp) == []


def test_the_detached_command_line_puts_every_client_value_after_a_double_dash(lab, make_experiment):
    from assay.integrations.mcp_server import _checked_spec, _run_command

    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5})
    cmd = _run_command(_checked_spec(lab, "exp", "-x", ["lr=-1"], "10m", 2))
    assert cmd[:5] == [sys.executable, "-m", "assay.cli.main", "run", "--repeat=2"]
    assert cmd[5:] == ["--timeout=10m", "--", "exp", "-x", "lr=-1"]
