"""`assay mcp`: a Model Context Protocol server (stdio) that gives a coding agent the lab as tools.

Tools return small JSON values (bounded lists, log tails, never whole logs). They mirror the CLI's
commands and call the same Python functions:

    read-only:  list_experiments  runs  show  read_metrics  read_log  compare  verdict  gate  best
                loop_status
    writing:    new_experiment  run  sweep  note  ignore  loop_try

Read-only tools carry `readOnlyHint`. The long ones (run, sweep, loop_try) send progress
notifications while they work: one per run or trial that starts or ends, and a heartbeat every few
seconds, so a client that resets its timeout on progress keeps waiting. Errors come back as tool
errors carrying assay's message and its fix. Works with the official Python SDK, 1.x (`FastMCP`)
and 2.x (`MCPServer`); the server reports its name (`assay`) and assay's version.

A client is not trusted with more than the lab: params are only `key=value` overrides checked against
the experiment's config.yaml before anything starts (never command-line options), experiment names
are plain folder names, run readers only open files of the lab's run folders, and what a call may
start is bounded (MAX_TIMEOUT per run, MAX_REPEAT seeds, MAX_TRIALS trials per sweep).
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import tempfile
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
MAX_TIMEOUT = "4h"  # per run started by a client; an experiment's longer timeout is capped to it
MAX_REPEAT = 10  # seeds per `run` call
MAX_TRIALS = 50  # trials per `sweep` call
MAX_PARALLEL = 32
HEARTBEAT_S = 5.0  # a progress notification at least this often while a long tool works
INSTRUCTIONS = """\
assay lab tools. Protocol: one experiment = one hypothesis and one primary metric; decide success
criteria before running (new_experiment). `run` runs the experiment's entry point (params as
key=value; repeat=3 for three seeds) and returns one summary per run; read_log returns a bounded
tail, never the whole log. Decide with compare (configurations, mean over seeds) and verdict (the
hypothesis against its criteria); gate checks one bar ("val_f1 >= 0.75") on a run and its seeds;
best names the best run and its folder. Note surprises with note ("[WEIRD] ...", "[HUNCH] ...").
Never edit run folders or protected evaluation code."""


def _server_class() -> Any:
    try:
        from mcp.server.mcpserver import MCPServer  # SDK 2.x

        return MCPServer
    except ImportError:
        from mcp.server.fastmcp import FastMCP  # type: ignore[attr-defined]  # SDK 1.x (the extra installs 2.x)

        return FastMCP


def _tool_error() -> type[Exception]:
    try:
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[import-not-found,no-redef]  # SDK 1.x
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


def _clean(value: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe (NaN/inf as strings), as `--json` does."""
    from assay.api import json_safe

    clean: dict[str, Any] = json.loads(json.dumps(json_safe(value), default=str))
    return clean


def _context_class() -> type:
    try:
        from mcp.server.mcpserver import Context  # SDK 2.x
    except ImportError:
        from mcp.server.fastmcp import Context  # type: ignore[attr-defined,no-redef]  # SDK 1.x
    return Context


def _annotations(read_only: bool, destructive: bool = False, lab_only: bool = True) -> Any:
    from mcp.types import ToolAnnotations

    if read_only:
        return ToolAnnotations.model_validate({"readOnlyHint": True, "openWorldHint": False})
    # Tools that run the experiment's code leave openWorldHint unset: that code may reach anything.
    # (By the spec's names, which both SDKs accept; 2.x spells its keyword arguments in snake case.)
    return ToolAnnotations.model_validate({"readOnlyHint": False, "destructiveHint": destructive,
                                           "openWorldHint": False if lab_only else None})


class _Progress:
    """Reports of a long tool's worker thread, turned into the call's progress notifications.

    `report(done, total, message)` may be called from any thread (a sweep's trial threads too).
    The MCP spec wants each notification's progress to grow, so repeated reports of one `done`
    and heartbeats send done + h/(h+1): growing, never reaching done + 1 (nor past the total).
    """

    def __init__(self, ctx: Any, total: float | None) -> None:
        import anyio
        import anyio.lowlevel

        self.ctx, self.total = ctx, total
        self.done, self.ticks, self.message = 0.0, 0, "started"
        self.started = time.monotonic()
        self.token = anyio.lowlevel.current_token()
        # (done, total, message) reports; subscripted as anyio 4 (which mcp needs) allows
        self.send, self.receive = anyio.create_memory_object_stream[tuple[float, float | None, str | None]](
            max_buffer_size=float("inf"))

    def report(self, done: float, total: float | None = None, message: str | None = None) -> None:
        import anyio.from_thread

        anyio.from_thread.run_sync(self.send.send_nowait, (done, total, message), token=self.token)

    async def notify(self, item: tuple[float, float | None, str | None] | None) -> None:
        """Send one notification: for a report `item`, or a heartbeat (None)."""
        if item is not None and item[0] > self.done:
            self.done, self.ticks = item[0], 0
        else:
            self.ticks += 1
        if item is not None:
            self.total = item[1] if item[1] is not None else self.total
            self.message = item[2] or self.message
        if self.ticks and self.total is not None and self.done >= self.total:
            return  # finished: nothing can grow any more, and the result follows
        elapsed = f"{time.monotonic() - self.started:.0f}s"
        await self.ctx.report_progress(self.done + self.ticks / (self.ticks + 1), self.total, f"{self.message} ({elapsed})")


async def _in_thread(ctx: Any, work: Callable[[Callable[..., None]], Any], total: float | None = None) -> Any:
    """`work(report)` in a worker thread (stdout to stderr, as _guard), while the client gets a
    progress notification for each report and a heartbeat every HEARTBEAT_S."""
    import anyio
    import anyio.to_thread

    progress = _Progress(ctx, total)
    outcome: dict[str, Any] = {}

    def call() -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return work(progress.report)

    async def worker() -> None:
        async with progress.send:  # closing it ends the notification loop below
            try:
                outcome["value"] = await anyio.to_thread.run_sync(call)
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group (no ExceptionGroup)
                outcome["error"] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        await ctx.report_progress(0, total, "started")
        async with progress.receive:
            while True:
                item = None
                with anyio.move_on_after(HEARTBEAT_S):
                    try:
                        item = await progress.receive.receive()
                    except anyio.EndOfStream:
                        break
                await progress.notify(item)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _guard_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """_guard for the async (long) tools."""
    error = _tool_error()

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except AssayError as exc:
            raise error(exc.message + (f"\nFix: {exc.hint}" if exc.hint else "")) from None

    return wrapper


def _run_summary(record: dict[str, Any], path: Path) -> dict[str, Any]:
    keys = ("id", "status", "reason", "duration", "params", "metrics", "primary_metric", "exit_code")
    return {**{k: record.get(k) for k in keys}, "path": str(path), "log": str(path / "logs" / "output.log")}


def _checked_spec(lab: Lab, experiment: str, desc: str, params: list[str] | None, timeout: str | None,
                  repeat: int) -> RunSpec:
    """A RunSpec whose every part is validated as `assay run` would, before anything launches.

    Params must parse as `key=value` / `+key=value` overrides of config.yaml: an item such as
    `--entry` is refused here, so a client can never pass options to the run. The run's timeout
    is bounded: a `timeout` over MAX_TIMEOUT is refused, an experiment's longer one is capped.
    """
    from assay.experiment import load_experiment
    from assay.runner import RunSpec
    from assay.runner.launch import resolve_params

    items = list(params or [])
    if not all(isinstance(p, str) for p in items):
        raise ConfigError(f"run params must be strings, got {items!r}", 'Pass params as ["lr=3e-4", "depth=8"].')
    exp = load_experiment(lab, experiment)
    resolve_params(exp, items)  # bad name, unknown key, or not key=value
    if not 1 <= repeat <= MAX_REPEAT:
        raise ConfigError(f"run repeat must be 1 to {MAX_REPEAT}, got {repeat}",
                          "Pass repeat=1 for one run, repeat=K for K seeds; more seeds take more calls.")
    return RunSpec(experiment, desc, items, _bounded_timeout(lab, exp, timeout, "run"), repeat)


def _bounded_timeout(lab: Lab, exp: Any, timeout: str | None, tool: str) -> str | None:
    """`timeout` if within MAX_TIMEOUT (else a ConfigError); None when the experiment's own timeout
    is within it; else MAX_TIMEOUT."""
    from assay.config import parse_duration

    limit = parse_duration(MAX_TIMEOUT)
    assert limit is not None  # MAX_TIMEOUT is a finite duration
    if timeout is not None:
        asked = parse_duration(timeout)
        if asked is None or asked > limit:  # "none" is no limit at all: over it too
            raise ConfigError(f"{tool} timeout '{timeout}' is over the limit of {MAX_TIMEOUT} for runs started over MCP",
                              f"Pass timeout={MAX_TIMEOUT} or less, or start longer runs from a shell: assay run {exp.name} ...")
        return timeout
    own = parse_duration(exp.timeout or lab.default_timeout)
    return None if own is not None and own <= limit else MAX_TIMEOUT


def _run_command(spec: RunSpec) -> list[str]:
    """`assay run` for a checked spec: options first, then `--`, so that no value from the client (a
    desc or param starting with '-') can be read as an option."""
    cmd = [sys.executable, "-m", "assay.cli.main", "run", f"--repeat={spec.repeat}"]
    if spec.timeout:
        cmd.append(f"--timeout={spec.timeout}")
    return [*cmd, "--", spec.experiment, spec.desc, *spec.overrides]


def _start_detached(lab: Lab, spec: RunSpec) -> dict[str, Any]:
    """Launch `assay run` in its own session and return its (first) run as soon as its record exists."""
    cmd = _run_command(spec)
    # stderr to a file, not a pipe: the run outlives the server, and writing to a pipe nobody reads
    # any more would kill it (SIGPIPE) at its next status line.
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=lab.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=errors, start_new_session=True)
    with errors:
        return _first_record(lab, spec, proc, errors)


def _first_record(lab: Lab, spec: RunSpec, proc: subprocess.Popen[bytes], errors: Any) -> dict[str, Any]:
    """The first record the launched `assay run` writes (it carries its pid), or its error if it stops first."""
    from assay.store import records

    experiment, desc = spec.experiment, spec.desc
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
            errors.seek(0)
            err = errors.read().decode(errors="replace").strip()
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
    import inspect

    from assay import __version__

    cls = _server_class()
    if "version" in inspect.signature(cls).parameters:
        server = cls("assay", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    else:  # SDK 1.x: FastMCP takes no version; its low-level server reports one
        server = cls("assay", instructions=INSTRUCTIONS, log_level="WARNING")
        server._mcp_server.version = __version__
    context = _context_class()

    def tool(read_only: bool = False, destructive: bool = False, lab_only: bool = True) -> Callable[..., Any]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if "ctx" in inspect.signature(fn).parameters:
                fn.__annotations__["ctx"] = context  # the SDK injects the request's Context by this type
            guarded = _guard_async(fn) if inspect.iscoroutinefunction(fn) else _guard(fn)
            server.tool(annotations=_annotations(read_only, destructive, lab_only))(guarded)
            return fn

        return register

    _experiment_tools(lab, tool)
    _run_tools(lab, tool)
    _evidence_tools(lab, tool)
    _loop_tools(lab, tool)
    return server


def _experiment_tools(lab: Lab, tool: Callable[..., Any]) -> None:
    @tool(read_only=True)
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

    @tool()
    def new_experiment(name: str, hypothesis: str, metric: str | None = None, goal: str | None = None,
                       success: str | None = None, failure: str | None = None, secondary: list[str] | None = None,
                       from_experiment: str | None = None, timeout: str | None = None) -> dict[str, Any]:
        """Create experiments/NAME/ (as `assay new`): one hypothesis, one primary metric (goal max or min),
        success/failure criteria such as "val_f1 >= 0.80"; from_experiment copies an experiment's scripts and config."""
        from assay import api
        from assay.config import parse_duration
        from assay.experiment import load_experiment

        if not hypothesis.strip():
            raise ConfigError("An experiment needs a hypothesis", 'Pass hypothesis="X improves Y because Z".')
        if timeout is not None:
            parse_duration(timeout)
        made = api.new_experiment(name, hypothesis=hypothesis, metric=metric, goal=goal, success=success, failure=failure,
                                  secondary=secondary, from_=from_experiment, timeout=timeout, lab=lab)
        exp = load_experiment(lab, made.experiment)
        return {"name": exp.name, "path": str(exp.path), "metric": exp.metric, "goal": exp.goal, "entry": exp.entry,
                "success": exp.success, "failure": exp.failure,
                "next": f"edit {exp.path / exp.entry}, then call run(experiment={exp.name!r}, desc='baseline')"}

    @tool()
    def note(experiment: str, text: str, run: str | None = None) -> dict[str, Any]:
        """Append a note to the experiment's JOURNAL.md; start it with [WEIRD], [HUNCH], [TODO] or [RESOLVED]."""
        from assay import api

        return api.note(experiment, text, run=str(_lab_run(lab, run)) if run else None, lab=lab).entry.to_dict()

    @tool()
    def ignore(run: str, why: str) -> dict[str, Any]:
        """Leave a run out of tables, comparisons, verdicts and gates (recorded in IGNORED_RUNS.md with `why`)."""
        from assay import api

        done = api.ignore(str(_lab_run(lab, run)), why=why, lab=lab)
        return {"run": done.id, "ignored": " ".join(why.split())}


def _run_tools(lab: Lab, tool: Callable[..., Any]) -> None:
    @tool(read_only=True)
    def runs(experiment: str | None = None, where: str | None = None, sort: str | None = None,
             limit: int = 20) -> dict[str, Any]:
        """Runs, newest first (or by `sort`), filtered by `where` ("val_f1>0.8 and lr<1e-3"); same keys as `assay runs --json`."""
        from assay import api

        return _clean(api.runs(experiment=experiment, where=where, sort=sort, limit=max(1, min(limit, MAX_ROWS)), lab=lab).to_dict())

    @tool(read_only=True)
    def show(run: str) -> dict[str, Any]:
        """One run's full record (status, reason, params, metric summaries, git, a short log tail)."""
        from assay import api

        return _clean(api.show(str(_lab_run(lab, run)), lab=lab).to_dict())

    @tool(read_only=True)
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

    @tool(read_only=True)
    def read_log(run: str, lines: int = 50) -> dict[str, Any]:
        """The last `lines` lines (at most 500, 64 KB) of a run's output log."""
        from assay.store import records

        path = _lab_run(lab, run, records.LOG_FILE)
        n = max(1, min(lines, MAX_LOG_LINES))
        return {"run": records.run_id(path), "log": str(path / records.LOG_FILE),
                "tail": records.log_tail(path, lines=n, max_bytes=65_536)}

    @tool(lab_only=False)
    async def run(experiment: str, desc: str, params: list[str] | None = None, timeout: str | None = None,
                  repeat: int = 1, wait: bool = True, ctx: Any = None) -> dict[str, Any]:
        """Run an experiment with key=value params (repeat=K: K seeds, at most 10; timeout at most 4h per run).
        wait=true returns the finished runs' summaries (with progress notifications per run); wait=false
        returns at once with the first run's id (poll show / read_metrics)."""
        from assay import api
        from assay.runner.launch import summary_line

        spec = _checked_spec(lab, experiment, desc, params, timeout, repeat)
        if not wait:
            return _clean(_start_detached(lab, spec))

        def work(report: Callable[..., None]) -> Any:
            return api.run(spec.experiment, spec.desc, overrides=spec.overrides, timeout=spec.timeout, repeat=spec.repeat,
                           oom_ladder=False, observer=_RunProgress(report, spec.repeat), lab=lab)

        results = await _in_thread(ctx, work, total=spec.repeat)
        return _clean({"runs": [{**_run_summary(r.record, r.path), "summary": summary_line(r, lab.root)} for r in results]})

    @tool(lab_only=False)
    async def sweep(experiment: str, space: list[str], sampler: str = "grid", trials: int | None = None,
                    parallel: int | None = None, timeout: str | None = None, value: str = "last", seed: int = 0,
                    ctx: Any = None) -> dict[str, Any]:
        """Many runs over a search space, as `assay sweep` (local executor): space items such as "lr=1e-4,3e-4",
        "lr=log(1e-5,1e-2)", "depth=range(2,8)"; sampler grid, random or tpe; at most 50 trials (a grid
        defaults to its size). Sends a progress notification per trial. Returns `assay sweep --json`'s keys."""
        from assay import api
        from assay.experiment import load_experiment
        from assay.sweep.space import space_from_args

        items = list(space)
        if not items or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"sweep space must be a non-empty list of strings, got {items!r}", 'Pass space=["lr=1e-4,3e-4", "batch=32,64"].')
        exp = load_experiment(lab, experiment)
        parsed = space_from_args(items)
        budget = trials if trials is not None else (parsed.size() if sampler == "grid" else None)
        if budget is None:
            raise ConfigError(f"A {sampler} search needs a trial budget", f"Pass trials=20 (at most {MAX_TRIALS}).")
        if not 1 <= budget <= MAX_TRIALS:
            raise ConfigError(f"sweep of {budget} trials is over the limit of {MAX_TRIALS} per call" if budget > MAX_TRIALS
                              else f"sweep trials must be at least 1, got {budget}",
                              f"Pass trials={MAX_TRIALS} or fewer (a grid: fewer values); a sweep file with `assay sweep` has no limit.")
        if parallel is not None and not 1 <= parallel <= MAX_PARALLEL:
            raise ConfigError(f"sweep parallel must be 1 to {MAX_PARALLEL}, got {parallel}", "Pass parallel=4, or leave it out.")
        bounded = _bounded_timeout(lab, exp, timeout, "sweep")

        def work(report: Callable[..., None]) -> Any:
            def on_event(ev: Any) -> None:
                if ev.kind in ("trial_started", "trial_finished", "oom_retry", "done"):
                    best = "" if ev.best is None else f", best {ev.best:.4g}"
                    report(ev.done, ev.total, f"sweep {ev.sweep_id}: {ev.done}/{ev.total} trials done, {ev.running} running{best}")

            return api.sweep(experiment, parsed, sampler=sampler, trials=budget, parallel=parallel, executor="local",
                             seed=seed, timeout=bounded, value=value, on_event=on_event, lab=lab)

        outcome = await _in_thread(ctx, work, total=budget)
        return _clean(outcome.to_dict())


class _RunProgress:
    """A RunObserver that reports each seed's start and end as progress (must not raise)."""

    def __init__(self, report: Callable[..., None], total: int) -> None:
        self.report, self.total, self.ended_count = report, total, 0

    def started(self, path: Path, record: dict[str, Any]) -> None:
        self.report(self.ended_count, self.total, f"run {record.get('id')} started")

    def ended(self, result: Any) -> None:
        self.ended_count += 1
        self.report(self.ended_count, self.total, f"run {result.record.get('id')} ended {result.status}")


def _evidence_tools(lab: Lab, tool: Callable[..., Any]) -> None:
    @tool(read_only=True)
    def compare(experiment: str, by: list[str] | None = None, metric: str | None = None, value: str = "last",
                pool_code: bool = False, include_ignored: bool = False) -> dict[str, Any]:
        """Configurations side by side (as `assay compare --json`): mean, std and n over seeds of the metric,
        the best row, and each row's gap to the best with its 95% interval (within_noise: the gap may be luck)."""
        from assay import api

        return _clean(api.compare(experiment, by=by, metric=metric, value=value, pool_code=pool_code,
                                  include_ignored=include_ignored, lab=lab).to_dict())

    @tool(read_only=True)
    def verdict(experiment: str, confidence: float = 0.95, value: str = "last") -> dict[str, Any]:
        """The experiment's verdict against its success/failure criteria, per configuration, with the evidence."""
        from assay import api

        return _clean(api.verdict(experiment, confidence=confidence, value=value, lab=lab).to_dict())

    @tool(read_only=True)
    def gate(experiment: str, criterion: str, run: str | None = None, best: bool = False, value: str = "last",
             confidence: float = 0.95) -> dict[str, Any]:
        """Does "val_f1 >= 0.75" hold on a run (default: the newest finished one; best=true: the best run)?
        With repeated seeds it judges the interval of their mean. outcome: holds, fails, or undecided (the
        interval straddles the threshold). A missing run or metric is a tool error (as `assay gate`'s exit 2)."""
        from assay import api

        if run is not None:
            run = str(_lab_run(lab, run))
        return _clean(api.check_gate(experiment, criterion, run=run, best=best, value=value, confidence=confidence,
                                     lab=lab).to_dict())

    @tool(read_only=True)
    def best(experiment: str, value: str = "last", artifact: str | None = None) -> dict[str, Any]:
        """The best run (the best single run of the configuration with the best mean): its id, folder, score and
        params; with `artifact` (e.g. "checkpoints/model.pt") that file's path, checked to exist."""
        from assay import api

        return _clean(api.best(experiment, value=value, artifact=artifact, lab=lab).to_dict())


def _loop_tools(lab: Lab, tool: Callable[..., Any]) -> None:
    @tool(read_only=True)
    def loop_status(tag: str | None = None) -> dict[str, Any]:
        """A loop's state (default: the checked-out assay/TAG branch): best commit and value, noise, counts,
        a pending crash, the last results (as `assay loop status --json`)."""
        from assay.loop.ratchet import status

        return _clean(status(lab, tag))

    @tool(destructive=True, lab_only=False)
    async def loop_try(description: str, retry: bool = False, force: bool = False, ctx: Any = None) -> dict[str, Any]:
        """In a running loop (branch assay/TAG checked out): commit the current edits, evaluate them,
        keep or reset. Returns the decision, the metric, its change against the best, and the reason.
        retry=true after fixing a crash; force=true re-runs an idea already tried, on purpose."""
        import dataclasses

        from assay.loop.ratchet import try_candidate

        def work(report: Callable[..., None]) -> Any:
            report(0, None, f"evaluating '{description[:60]}'")
            return try_candidate(lab, description, force=force, retry=retry)

        out = await _in_thread(ctx, work)
        return _clean({**dataclasses.asdict(out), "line": out.line()})


def serve(lab: Lab) -> None:
    """Serve `lab` over stdio until the client disconnects."""
    try:
        server = build_server(lab)
    except ImportError:
        raise ConfigError("`assay mcp` needs the MCP Python SDK (mcp), which is not installed", "pip install 'assay[mcp]'") from None
    server.run()
