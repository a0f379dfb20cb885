"""`assay mcp` over stdio, driven by the official MCP SDK's own client."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

import assay
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


TOOLS = {"list_experiments", "new_experiment", "run", "runs", "show", "read_metrics", "read_log", "note", "ignore", "compare",
         "verdict", "sweep", "gate", "best", "loop_status", "loop_try"}
READ_ONLY = {"list_experiments", "runs", "show", "read_metrics", "read_log", "compare", "verdict", "gate", "best", "loop_status"}


async def _session_calls(lab_root, calls, with_init=False):
    # The SDK passes the server only a few variables by default; pass ours so PYTHONPATH reaches it.
    params = StdioServerParameters(command=sys.executable, args=["-m", "assay.cli.main", "mcp"], cwd=str(lab_root),
                                   env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await asyncio.wait_for(session.initialize(), 60)
        out = await calls(session)
        return (init, out) if with_init else out


def _collect(events):
    async def on_progress(progress, total, message):
        events.append((progress, total, message))

    return on_progress


def _assert_progress(events, total):
    values = [e[0] for e in events]
    assert values == sorted(set(values)), events  # each notification's progress grows (the MCP spec)
    assert events[0][:2] == (0, total) and events[-1][:2] == (total, total), events


def test_agent_lists_runs_reads_metrics_notes_and_gets_clear_errors(lab, make_experiment):
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "sleep": 0}, metric="val_loss", goal="min")

    async def calls(s):
        tools = {t.name for t in (await s.list_tools()).tools}
        out = {"tools": tools}
        out["exps"] = _payload(await s.call_tool("list_experiments", {}))
        out["run"] = _payload(await s.call_tool("run", {"experiment": "exp", "desc": "base", "params": ["lr=0.3"]}))
        rid = out["run"]["runs"][0]["id"]
        out["runs"] = _payload(await s.call_tool("runs", {"experiment": "exp"}))
        out["metrics"] = _payload(await s.call_tool("read_metrics", {"run": rid, "metric": "val_loss", "last": 2}))
        out["log"] = _payload(await s.call_tool("read_log", {"run": rid, "lines": 1}))
        out["show"] = _payload(await s.call_tool("show", {"run": rid}))
        out["verdict"] = _payload(await s.call_tool("verdict", {"experiment": "exp"}))
        out["note"] = _payload(await s.call_tool("note", {"experiment": "exp", "text": "[HUNCH] lr matters", "run": rid}))
        out["bad_param"] = await s.call_tool("run", {"experiment": "exp", "desc": "x", "params": ["lr_max=1"]})
        out["bad_metric"] = await s.call_tool("read_metrics", {"run": rid, "metric": "val_acc"})
        out["bg"] = _payload(await s.call_tool("run", {"experiment": "exp", "desc": "bg", "params": ["sleep=1"], "repeat": 2,
                                                             "wait": False}))
        return out

    out = asyncio.run(_session_calls(lab.root, calls))
    assert out["tools"] == TOOLS
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


def test_server_reports_its_name_and_version_and_marks_the_read_only_tools(lab):
    init, tools = asyncio.run(_session_calls(lab.root, lambda s: s.list_tools(), with_init=True))
    assert (init.server_info.name, init.server_info.version) == ("assay", assay.__version__)
    hints = {t.name: t.annotations.read_only_hint for t in tools.tools}
    assert set(hints) == TOOLS
    assert {name for name, ro in hints.items() if ro} == READ_ONLY
    loop_try = next(t for t in tools.tools if t.name == "loop_try")
    assert loop_try.annotations.destructive_hint is True  # a discard resets the work tree


PIPE = """
import os, pathlib, assay
p = assay.params()
ckpt = pathlib.Path(os.environ["ASSAY_RUN_DIR"]) / "checkpoints" / "model.pt"
ckpt.parent.mkdir(exist_ok=True)
ckpt.write_text(f"q={p['q']} seed={p['seed']}")
assay.log({"val_f1": p["q"] + 0.01 * (p["seed"] - 1)}, step=0)
"""


def test_agent_creates_an_experiment_runs_sweeps_compares_gates_and_finds_the_best(lab):
    async def calls(s):
        out = {"new": _payload(await s.call_tool("new_experiment", {
            "name": "pipe", "hypothesis": "q drives f1", "metric": "val_f1", "goal": "max", "success": "val_f1 >= 0.7"}))}
        path = Path(out["new"]["path"])  # the agent writes its script: the scaffold refuses to run
        (path / "train.py").write_text(PIPE)
        (path / "config.yaml").write_text("seed: 0\nq: 0.8\n")
        out["run_events"], out["sweep_events"] = [], []
        out["run"] = _payload(await s.call_tool("run", {"experiment": "pipe", "desc": "base", "repeat": 2},
                                                progress_callback=_collect(out["run_events"])))
        out["sweep"] = _payload(await s.call_tool("sweep", {"experiment": "pipe", "space": ["q=0.6,0.9"], "parallel": 1},
                                                  progress_callback=_collect(out["sweep_events"])))
        out["compare"] = _payload(await s.call_tool("compare", {"experiment": "pipe"}))
        base = out["run"]["runs"][0]["id"]
        out["gate_base"] = _payload(await s.call_tool("gate", {"experiment": "pipe", "criterion": "val_f1 >= 0.75", "run": base}))
        out["gate_best"] = _payload(await s.call_tool("gate", {"experiment": "pipe", "criterion": "val_f1 >= 0.75", "best": True}))
        out["gate_fails"] = _payload(await s.call_tool("gate", {"experiment": "pipe", "criterion": "val_f1 >= 0.95", "best": True}))
        out["best"] = _payload(await s.call_tool("best", {"experiment": "pipe", "artifact": "checkpoints/model.pt"}))
        out["ignore"] = _payload(await s.call_tool("ignore", {"run": out["best"]["run"], "why": "leaked\nlabels"}))
        out["best_after"] = _payload(await s.call_tool("best", {"experiment": "pipe"}))
        out["gate_metric"] = await s.call_tool("gate", {"experiment": "pipe", "criterion": "val_acc >= 0.5"})
        return out

    out = asyncio.run(_session_calls(lab.root, calls))
    assert out["new"]["metric"] == "val_f1" and out["new"]["success"] == "val_f1 >= 0.7"
    assert [r["status"] for r in out["run"]["runs"]] == ["ok", "ok"]
    _assert_progress(out["run_events"], 2)
    assert any("ended ok" in m for _, _, m in out["run_events"])
    assert out["sweep"]["status"] == "done" and out["sweep"]["counts"] == {"ok": 2}
    assert out["sweep"]["best"]["params"] == {"q": 0.9}
    _assert_progress(out["sweep_events"], 2)
    rows = out["compare"]["rows"]
    assert sorted((r["q"], r["n"]) for r in rows) == [(0.6, 1), (0.8, 2), (0.9, 1)] and rows[out["compare"]["best"]]["q"] == 0.9
    # Two seeds (0.79, 0.80): the interval of their mean straddles 0.75, so the gate stays shut.
    assert out["gate_base"]["outcome"] == "undecided" and len(out["gate_base"]["runs"]) == 2
    assert out["gate_best"]["outcome"] == "holds" and out["gate_best"]["run"] == out["sweep"]["best"]["run"]
    assert out["gate_fails"]["outcome"] == "fails" and out["gate_fails"]["holds"] is False
    assert out["best"]["run"] == out["sweep"]["best"]["run"] and Path(out["best"]["artifact"]).read_text() == "q=0.9 seed=0"
    assert out["ignore"] == {"run": out["best"]["run"], "ignored": "leaked labels"}
    assert out["best_after"]["run"] == out["run"]["runs"][1]["id"]  # q=0.8's better seed, once q=0.9 is ignored
    assert out["gate_metric"].is_error and "no last value of metric 'val_acc'" in out["gate_metric"].content[0].text


def test_run_and_sweep_refuse_what_is_over_their_bounds_before_anything_starts(lab, make_experiment):
    exp = make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "sleep": 0}, metric="val_loss", goal="min", timeout="8h")
    many = ",".join(str(i / 100) for i in range(51))

    async def calls(s):
        return [await s.call_tool(name, args) for name, args in [
            ("run", {"experiment": "exp", "desc": "x", "timeout": "5h"}),
            ("run", {"experiment": "exp", "desc": "x", "repeat": 11}),
            ("sweep", {"experiment": "exp", "space": [f"lr={many}"]}),
            ("sweep", {"experiment": "exp", "space": ["lr=0.1,0.2"], "trials": 51}),
            ("sweep", {"experiment": "exp", "space": ["lr=0.1,0.2"], "timeout": "1d"}),
            ("sweep", {"experiment": "exp", "space": ["lr=interval(0.1,0.2)"], "sampler": "random"}),
        ]]

    texts = [r.content[0].text for r in asyncio.run(_session_calls(lab.root, calls))]
    assert "run timeout '5h' is over the limit of 4h" in texts[0]
    assert "run repeat must be 1 to 10, got 11" in texts[1]
    assert "sweep of 51 trials is over the limit of 50" in texts[2] and "sweep of 51 trials" in texts[3]
    assert "sweep timeout '1d' is over the limit of 4h" in texts[4]
    assert "A random search needs a trial budget" in texts[5]
    assert not exp.runs_dir.exists() or list(exp.runs_dir.iterdir()) == []
    assert not (exp.path / "sweeps").exists() or list((exp.path / "sweeps").iterdir()) == []


def test_a_run_under_an_experiment_timeout_over_the_bound_is_capped(lab, make_experiment):
    from assay.integrations.mcp_server import MAX_TIMEOUT, _checked_spec

    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "sleep": 0}, timeout="8h")
    make_experiment(SCRIPT, name="short", config={"seed": 0, "lr": 0.5, "sleep": 0}, timeout="10m")
    assert _checked_spec(lab, "exp", "x", [], None, 1).timeout == MAX_TIMEOUT
    assert _checked_spec(lab, "short", "x", [], None, 1).timeout is None  # the experiment's own 10m applies


def test_loop_status_and_loop_try_drive_a_real_loop_with_progress(lab, loop_lab):
    from assay.loop.ratchet import start
    from tests.integration.conftest import edit

    exp = loop_lab()
    start(lab, "exp", "t1", ["train.py"], ["prepare.py"], decision="greedy")
    edit(exp, LR=0.5)

    async def calls(s):
        events = []
        tried = _payload(await s.call_tool("loop_try", {"description": "lower lr"}, progress_callback=_collect(events)))
        status = _payload(await s.call_tool("loop_status", {}))
        return tried, status, events

    tried, status, events = asyncio.run(_session_calls(lab.root, calls))
    assert tried["decision"] == "keep" and tried["delta"] == pytest.approx(0.45) and tried["line"].startswith("keep")
    assert status["tag"] == "t1" and status["iterations"] == tried["iteration"] and status["best_commit"] == tried["commit"]
    assert events and "evaluating 'lower lr'" in events[-1][2]
