"""`assay mcp` over stdio, driven by the official MCP SDK's own client."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from assay.store import records

pytest.importorskip("mcp")
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

SCRIPT = """
import time, assay
p = assay.params()
for step in range(3):
    print(f"step={step} val_loss={p['lr'] / (step + 1):.4g}", flush=True)
time.sleep(p.get("sleep", 0))
"""


def _payload(result):
    assert not result.is_error, result.content[0].text
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


async def _session_calls(lab_root, calls):
    params = StdioServerParameters(command=sys.executable, args=["-m", "assay.cli.main", "mcp"], cwd=str(lab_root))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await asyncio.wait_for(session.initialize(), 60)
        return await calls(session)


def test_agent_lists_runs_reads_metrics_notes_and_gets_clear_errors(lab, make_experiment):
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "sleep": 0}, metric="val_loss", goal="min")

    async def calls(s):
        tools = {t.name for t in (await s.list_tools()).tools}
        out = {"tools": tools}
        out["exps"] = _payload(await s.call_tool("list_experiments", {}))
        out["run"] = _payload(await s.call_tool("start_run", {"experiment": "exp", "desc": "base", "params": ["lr=0.3"]}))
        rid = out["run"]["runs"][0]["id"]
        out["runs"] = _payload(await s.call_tool("list_runs", {"experiment": "exp"}))
        out["metrics"] = _payload(await s.call_tool("read_metrics", {"run": rid, "metric": "val_loss", "last": 2}))
        out["log"] = _payload(await s.call_tool("read_log", {"run": rid, "lines": 1}))
        out["show"] = _payload(await s.call_tool("show_run", {"run": rid}))
        out["verdict"] = _payload(await s.call_tool("verdict", {"experiment": "exp"}))
        out["note"] = _payload(await s.call_tool("add_note", {"experiment": "exp", "text": "[HUNCH] lr matters", "run": rid}))
        out["bad_param"] = await s.call_tool("start_run", {"experiment": "exp", "desc": "x", "params": ["lr_max=1"]})
        out["bad_metric"] = await s.call_tool("read_metrics", {"run": rid, "metric": "val_acc"})
        out["bg"] = _payload(await s.call_tool("start_run", {"experiment": "exp", "desc": "bg", "params": ["sleep=1"], "repeat": 2,
                                                             "wait": False}))
        return out

    out = asyncio.run(_session_calls(lab.root, calls))
    assert {"list_experiments", "list_runs", "show_run", "start_run", "read_metrics", "read_log", "add_note",
            "loop_try", "verdict"} <= out["tools"]
    assert out["exps"][0]["name"] == "exp" and out["exps"][0]["metric"] == "val_loss"
    run = out["run"]["runs"][0]
    assert run["status"] == "ok" and run["params"]["lr"] == 0.3 and "val_loss=0.1" in run["summary"]
    assert out["runs"]["total"] == 1 and out["runs"]["runs"][0]["id"] == run["id"]
    points = out["metrics"]["metrics"]["val_loss"]
    assert points["count"] == 3 and [p[:2] for p in points["points"]] == [[1, pytest.approx(0.15)], [2, pytest.approx(0.1)]]
    assert out["log"]["tail"].strip() == "step=2 val_loss=0.1"
    assert out["show"]["id"] == run["id"] and out["show"]["params"]["lr"] == 0.3
    assert out["verdict"]["experiment"] == "exp" and out["verdict"]["verdict"]
    assert out["note"]["tag"] == "HUNCH" and out["note"]["run"] == run["id"]
    assert "[HUNCH] lr matters" in (lab.experiment_dir("exp") / "JOURNAL.md").read_text()
    assert out["bad_param"].is_error and "lr_max" in out["bad_param"].content[0].text
    assert out["bad_metric"].is_error and "no metric 'val_acc' (known: val_loss)" in out["bad_metric"].content[0].text
    bg = out["bg"]
    assert bg["status"] == "running" and bg["id"].startswith("exp/") and bg["id"].endswith("-bg-seed0")
    runs_dir = Path(bg["path"]).parent
    deadline = time.monotonic() + 60  # the detached runs outlive the server and finish on their own
    while True:
        statuses = [records.read_record(p)["status"] for p in sorted(runs_dir.glob("*-bg-seed*"))]
        if len(statuses) == 2 and "running" not in statuses:
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.1)
    assert statuses == ["ok", "ok"]


def test_loop_and_verdict_tools_report_their_own_errors_outside_a_loop(lab, make_experiment):
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "sleep": 0}, metric="val_loss", goal="min")

    async def calls(s):
        return (await s.call_tool("loop_try", {"description": "wider"}),
                await s.call_tool("verdict", {"experiment": "nope"}))

    loop, verdict = asyncio.run(_session_calls(lab.root, calls))
    assert loop.is_error and "not inside a git repository" in loop.content[0].text and "Fix: " in loop.content[0].text
    assert verdict.is_error and "Unknown experiment 'nope'" in verdict.content[0].text
