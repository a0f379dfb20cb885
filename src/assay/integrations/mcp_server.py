"""`assay mcp`: a Model Context Protocol server (stdio) that gives a coding agent the lab as tools.

Tools return small JSON values (bounded lists, log tails, never whole logs):

    list_experiments  list_runs  show_run  start_run  read_metrics  read_log
    add_note  loop_try  verdict

Errors come back as tool errors carrying assay's message and its fix. Works with the official
Python SDK, 1.x (`FastMCP`) and 2.x (`MCPServer`).

A client is not trusted with more than the lab: params are only `key=value` overrides checked against
the experiment's config.yaml before anything starts (never command-line options), experiment names
are plain folder names, and run readers only open files of the lab's run folders.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import AssayError, ConfigError, RunError
from assay.lab import Lab

if TYPE_CHECKING:
    from assay.runner import RunSpec

MAX_ROWS = 200
MAX_LOG_LINES = 500
INSTRUCTIONS = """\
assay lab tools. Protocol: one experiment = one hypothesis and one primary metric; decide success
criteria before running. start_run runs the experiment's entry point (params as key=value) and
returns one summary; read_log returns a bounded tail, never the whole log. Note surprises with
add_note ("[WEIRD] ...", "[HUNCH] ..."). Never edit run folders or protected evaluation code."""


def _server_class() -> Any:
    try:
        from mcp.server.mcpserver import MCPServer  # SDK 2.x

        return MCPServer
    except ImportError:
        from mcp.server.fastmcp import FastMCP  # SDK 1.x

        return FastMCP


def _tool_error() -> type[Exception]:
    try:
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        from mcp.server.fastmcp.exceptions import ToolError
    return ToolError


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """AssayError -> a tool error with message and hint; anything printed goes to stderr.

    stdout is the protocol channel of a stdio server: a stray print would corrupt it.
    """
    error = _tool_error()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return fn(*args, **kwargs)
        except AssayError as exc:
            raise error(exc.message + (f"\nFix: {exc.hint}" if exc.hint else "")) from None

    return wrapper


def _clean(value: Any) -> Any:
    """JSON-safe (NaN/inf as strings), as `--json` does."""
    from assay.cli.render import _clean as clean

    return json.loads(json.dumps(clean(value), default=str))


def _run_summary(record: dict[str, Any], path: Path) -> dict[str, Any]:
    keys = ("id", "status", "reason", "duration", "params", "metrics", "primary_metric", "exit_code")
    return {**{k: record.get(k) for k in keys}, "path": str(path), "log": str(path / "logs" / "output.log")}


def _checked_spec(lab: Lab, experiment: str, desc: str, params: list[str] | None, timeout: str | None,
                  repeat: int) -> RunSpec:
    """A RunSpec whose every part is validated as `assay run` would, before anything launches.

    Params must parse as `key=value` / `+key=value` overrides of config.yaml: an item such as
    `--entry` is refused here, so a client can never pass options to the run.
    """
    from assay.config import parse_duration
    from assay.experiment import load_experiment
    from assay.runner import RunSpec
    from assay.runner.launch import resolve_params

    items = list(params or [])
    if not all(isinstance(p, str) for p in items):
        raise ConfigError(f"start_run params must be strings, got {items!r}", 'Pass params as ["lr=3e-4", "depth=8"].')
    resolve_params(load_experiment(lab, experiment), items)  # bad name, unknown key, or not key=value
    if timeout is not None:
        parse_duration(timeout)
    if repeat < 1:
        raise ConfigError(f"start_run repeat must be at least 1, got {repeat}", "Pass repeat=1 for one run, repeat=K for K seeds.")
    return RunSpec(experiment, desc, items, timeout, repeat)


def _run_command(spec: RunSpec) -> list[str]:
    """`assay run` for a checked spec: options first, then `--`, so that no value from the client (a
    desc or param starting with '-') can be read as an option."""
    cmd = [sys.executable, "-m", "assay.cli.main", "run", f"--repeat={spec.repeat}"]
    if spec.timeout:
        cmd.append(f"--timeout={spec.timeout}")
    return [*cmd, "--", spec.experiment, spec.desc, *spec.overrides]


def _start_detached(lab: Lab, spec: RunSpec) -> dict[str, Any]:
    """Launch `assay run` in its own session and return its (first) run as soon as its record exists."""
    from assay.store import records

    experiment, desc = spec.experiment, spec.desc
    import tempfile

    cmd = _run_command(spec)
    # stderr to a file, not a pipe: the detached run outlives this server, and its later lines (each
    # run's start line) must not hit a pipe nobody reads any more (EPIPE would kill it mid-repeat).
    err_file = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=lab.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err_file, start_new_session=True)
    runs_dir = lab.experiment_dir(experiment) / "runs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # The launching process writes owner_pid into the first record: that names our run exactly.
        for path in records.run_folders(runs_dir)[::-1][:20]:
            try:
                record = records.read_record(path)
            except AssayError:
                continue
            if record.get("owner_pid") == proc.pid:
                return {**_run_summary(record, path), "pid": proc.pid}
        if proc.poll() is not None:
            err_file.seek(0)
            err = err_file.read().decode(errors="replace").strip()
            raise RunError(f"assay run {experiment} {desc} stopped before starting: {err or f'exit {proc.returncode}'}",
                           "Fix the experiment or params named above and start it again.")
        time.sleep(0.05)  # waiting for another process's first write; bounded by the deadline
    raise RunError(f"assay run {experiment} {desc} (pid {proc.pid}) made no run folder within 60s",
                   "Check `assay status`; the lab's disk or index may be locked.")


def _lab_run(lab: Lab, ref: str, *files: str) -> Path:
    """The run folder `ref` names, refused unless, links resolved, it sits in the runs/ folder of one
    of the lab's experiments, and unless run.json and `files` resolve inside it (no link out)."""
    from assay.experiment import list_experiments
    from assay.store import records
    from assay.store.query import find_run

    path = find_run(lab, ref).resolve()
    # Resolving the runs/ folders too keeps a runs/ linked to a scratch disk working.
    runs_dirs = {(lab.experiment_dir(name) / "runs").resolve() for name in list_experiments(lab)}
    if path.parent not in runs_dirs:
        raise RunError(f"Run '{ref}' is at {path}, not in a run folder of this lab ({lab.experiments_dir}/NAME/runs/)",
                       "Name a run of this lab by its id (experiment/folder); list them with list_runs.")
    for name in (records.RECORD_FILE, *files):
        target = (path / name).resolve()
        if not target.is_relative_to(path):
            raise RunError(f"{name} of run '{ref}' links to {target}, outside its run folder {path}",
                           f"Replace the link {path / name} with the file itself; assay reads only files of the run folder.")
    return path


def build_server(lab: Lab) -> Any:
    """The MCP server for `lab`, with its tools registered (not yet serving)."""
    server = _server_class()("assay", instructions=INSTRUCTIONS, log_level="WARNING")

    def tool(fn: Callable[..., Any]) -> Callable[..., Any]:
        server.tool()(_guard(fn))
        return fn

    @tool
    def list_experiments() -> list[dict[str, Any]]:
        """Experiments of the lab: name, hypothesis, primary metric and goal, entry point."""
        from assay.experiment import list_experiments as names
        from assay.experiment import load_experiment

        out = []
        for name in names(lab):
            exp = load_experiment(lab, name)
            out.append({"name": name, "hypothesis": exp.hypothesis, "metric": exp.metric, "goal": exp.goal,
                        "entry": exp.entry, "success": exp.success, "failure": exp.failure})
        return out

    @tool
    def list_runs(experiment: str | None = None, where: str | None = None, sort: str | None = None,
                  limit: int = 20) -> dict[str, Any]:
        """Runs, newest first (or by `sort`), filtered by `where` ("val_f1>0.8 and lr<1e-3"); same keys as `assay runs --json`."""
        from assay.store.query import list_runs as query

        rows, total = query(lab, experiment, where, sort, max(1, min(limit, MAX_ROWS)))
        return _clean({"total": total, "runs": rows})

    @tool
    def show_run(run: str) -> dict[str, Any]:
        """One run's full record (status, reason, params, metric summaries, git, a short log tail)."""
        from assay.store.query import show_run as show

        return _clean(show(lab, str(_lab_run(lab, run))))

    @tool
    def start_run(experiment: str, desc: str, params: list[str] | None = None, timeout: str | None = None,
                  repeat: int = 1, wait: bool = True) -> dict[str, Any]:
        """Run an experiment with key=value params (repeat=K: K seeds). wait=true returns the finished
        runs' summaries; wait=false returns at once with the first run's id (poll show_run / read_metrics)."""
        from assay.runner import run_experiment
        from assay.runner.launch import summary_line

        spec = _checked_spec(lab, experiment, desc, params, timeout, repeat)
        if not wait:
            return _clean(_start_detached(lab, spec))
        results = run_experiment(lab, spec)
        return _clean({"runs": [{**_run_summary(r.record, r.path), "summary": summary_line(r, lab.root)}
                                for r in results]})

    @tool
    def read_metrics(run: str, metric: str | None = None, last: int = 20) -> dict[str, Any]:
        """The last `last` points [step, value, time] of each metric of a run (or of one metric)."""
        from assay.store import records

        path = _lab_run(lab, run, records.METRICS_FILE)
        series = records.metric_series(path, {metric} if metric else None)
        if metric and metric not in series:
            known = sorted(records.metric_series(path))
            raise RunError(f"Run {records.run_id(path)} has no metric '{metric}' (known: {', '.join(known) or 'none'})",
                           "Call read_metrics without `metric` to see them all.")
        n = max(1, min(last, MAX_ROWS))
        return _clean({"run": records.run_id(path),
                       "metrics": {k: {"count": len(v), "points": [list(p) for p in v[-n:]]} for k, v in series.items()}})

    @tool
    def read_log(run: str, lines: int = 50) -> dict[str, Any]:
        """The last `lines` lines (at most 500, 64 KB) of a run's output log."""
        from assay.store import records

        path = _lab_run(lab, run, records.LOG_FILE)
        n = max(1, min(lines, MAX_LOG_LINES))
        return {"run": records.run_id(path), "log": str(path / records.LOG_FILE),
                "tail": records.log_tail(path, lines=n, max_bytes=65_536)}

    @tool
    def add_note(experiment: str, text: str, run: str | None = None) -> dict[str, Any]:
        """Append a note to the experiment's JOURNAL.md; start it with [WEIRD], [HUNCH], [TODO] or [RESOLVED]."""
        from assay.experiment import load_experiment
        from assay.journal import add_note as note
        from assay.store import records

        exp = load_experiment(lab, experiment)
        run_id = records.run_id(_lab_run(lab, run)) if run else None
        return note(exp.path, text, run_id).to_dict()

    @tool
    def loop_try(description: str, retry: bool = False, force: bool = False) -> dict[str, Any]:
        """In a running loop (branch assay/TAG checked out): commit the current edits, evaluate them,
        keep or reset. Returns the decision, the metric, its change against the best, and the reason.
        retry=true after fixing a crash; force=true re-runs an idea already tried, on purpose."""
        try:
            from assay.loop.ratchet import try_candidate
        except ImportError:
            raise RunError("The loop is not available in this assay install", "Upgrade assay; see `assay loop --help`.") from None
        import dataclasses

        out = try_candidate(lab, description, force=force, retry=retry)
        return _clean({**dataclasses.asdict(out), "line": out.line()})

    @tool
    def verdict(experiment: str, confidence: float = 0.95) -> dict[str, Any]:
        """The experiment's verdict against its success/failure criteria, per configuration, with the evidence."""
        try:
            from assay.report.verdict import verdict as judge
        except ImportError:
            raise RunError("Verdicts are not available in this assay install", "Upgrade assay; see `assay verdict --help`.") from None
        return _clean(judge(lab, experiment, confidence).to_dict())

    return server


def serve(lab: Lab) -> None:
    """Serve `lab` over stdio until the client disconnects."""
    try:
        server = build_server(lab)
    except ImportError:
        raise ConfigError("`assay mcp` needs the MCP Python SDK (mcp), which is not installed", "pip install 'assay[mcp]'") from None
    server.run()
