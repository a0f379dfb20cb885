"""`assay` commands. Each parses, calls one API function, renders; no SQL, git or processes here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

# Rich help only on a terminal: piped (agents, scripts) it costs ~75 ms of imports for boxes
# nobody sees. Typer reads TYPER_USE_RICH once, at import; it is removed again so that the
# scripts assay launches do not inherit it.
_PLAIN = not sys.stdout.isatty() and "TYPER_USE_RICH" not in os.environ
if _PLAIN:
    os.environ["TYPER_USE_RICH"] = "0"
import typer  # noqa: E402

if _PLAIN:
    del os.environ["TYPER_USE_RICH"]

from assay.errors import AssayError  # noqa: E402

if TYPE_CHECKING:  # kept out of `assay --help`
    from assay.adopt import Adoption
    from assay.experiment import Experiment
    from assay.lab import Lab

app = typer.Typer(
    name="assay",
    help="Hypothesis-driven ML experiments: declare, run, capture, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False}

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output with stable keys.")]


def _version(value: bool) -> None:
    if value:
        from assay import __version__

        print(f"assay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
          version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print assay's version and exit.")] = False) -> None:
    _state["debug"] = debug


def parse_tags(items: list[str]) -> dict[str, str]:
    """`--tag key=value` items; a malformed one is a usage error naming it (never dropped silently)."""
    from assay.errors import ConfigError

    tags = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"Cannot read --tag '{item}': expected key=value", "Write it as --tag key=value, e.g. --tag arch=gpt.")
        tags[key.strip()] = value
    return tags


def outcome_exit_code(statuses: list[str]) -> int:
    """The exit code of a command that ran something (README, "Exit codes"): 130 when interrupted,
    1 when any run did not end ok (failed, timeout, oom, killed, nan, pruned...), else 0."""
    if "interrupted" in statuses:
        return 130
    return 0 if all(s == "ok" for s in statuses) else 1


def _lab() -> Lab:
    from assay.lab import find_lab

    return find_lab()


@app.command()
def init(path: Annotated[Optional[Path], typer.Argument(help="Folder to make a lab (default: here).")] = None,
         json_: JsonOpt = False) -> None:
    """Make a folder an assay lab: assay.toml, .assay/ index, AGENTS.md section (imported by an existing CLAUDE.md)."""
    from assay.lab import init_lab

    lab, written = init_lab(path)
    if json_:
        from assay.cli.render import emit_json

        emit_json({"root": str(lab.root), "written": written})
        return
    print(f"lab ready at {lab.root}" + (f" (wrote {', '.join(written)})" if written else " (already initialised)"))
    print("next: assay new NAME --hypothesis \"...\" --metric val_f1 --goal max")


@app.command()
def new(
    name: str,
    hypothesis: Annotated[str, typer.Option("--hypothesis", "-H", help="What you expect and why.")] = "",
    metric: Annotated[Optional[str], typer.Option(help="The one primary metric that decides it.")] = None,
    goal: Annotated[Optional[str], typer.Option(help="max or min.")] = None,
    success: Annotated[Optional[str], typer.Option(help='Success criterion, e.g. "val_f1 >= 0.80".')] = None,
    failure: Annotated[Optional[str], typer.Option(help='Failure criterion, e.g. "val_f1 < 0.75".')] = None,
    secondary: Annotated[Optional[list[str]], typer.Option("--secondary", help="Secondary metric (name or name:min).")] = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="Copy this experiment's structure.")] = None,
    entry: Annotated[Optional[str], typer.Option(help="Entry point (default train.py); train.ipynb scaffolds a Jupyter notebook, app.py a marimo app.")] = None,
    timeout: Annotated[Optional[str], typer.Option(help="Default timeout, e.g. 30m.")] = None,
    from_script: Annotated[Optional[Path], typer.Option("--from-script", help="Adopt this existing script where it is (reads its params, runs nothing).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Create experiments/NAME/ with its hypothesis, criteria, config and a train.py."""
    from assay.experiment import new_experiment

    if not hypothesis:
        from assay.errors import ConfigError

        raise ConfigError("An experiment needs a hypothesis", f"assay new {name} --hypothesis \"X improves Y because Z\" ...")
    lab = _lab()
    if from_script is not None:
        _adopt(lab, name, from_script, json_, hypothesis=hypothesis, metric=metric, goal=goal, success=success,
               failure=failure, secondary=secondary, timeout=timeout)
        return
    exp = new_experiment(lab, name, hypothesis, metric, goal, success, failure, secondary, from_, entry, timeout)
    if json_:
        from assay.cli.render import emit_json

        emit_json(_experiment_json(exp, None))
        return
    print(f"created {exp.path.relative_to(lab.root)}/ (metric {exp.metric}, {exp.goal})")
    print(f"next: assay run {name} baseline")


def _experiment_json(exp: Experiment, found: Adoption | None) -> dict[str, Any]:
    """`assay new --json`: the experiment made, and what adopting a script found in it (else null)."""
    adopted = None if found is None else {
        "kind": found.kind, "style": found.style, "notes": list(found.notes),
        "params": [{"name": p.name, "default": p.default, "type": p.type, "required": p.required} for p in found.params]}
    return {"experiment": exp.name, "path": str(exp.path), "metric": exp.metric, "goal": exp.goal, "entry": exp.entry,
            "adopted": adopted}


def _adopt(lab: Lab, name: str, script: Path, json_: bool, **kw: Any) -> None:  # noqa: ANN003 - the options of `new`
    from assay.adopt import adopt_script

    exp, found = adopt_script(lab, name, script, **kw)
    if json_:
        from assay.cli.render import emit_json

        emit_json(_experiment_json(exp, found))
        return
    rel = exp.path.relative_to(lab.root)
    print(f"adopted {script} ({found.kind}: {len(found.params)} params, style {found.style})")
    for p in found.params:
        print(f"  {p.name} = {p.default!r}" + (f"  ({p.type})" if p.type else "") + ("  required" if p.required else ""))
    print(f"entry {exp.entry}, runs in {exp.raw.get('workdir')} (the script's folder); nothing copied")
    if kw.get("metric") is None:
        line = next(n for m, n in found.metrics if m == exp.metric)
        print(f"metric {exp.metric}: the one metric the script prints ({script.name}:{line}); pass --metric to choose another")
    if kw.get("goal") is None:
        print(f"goal {exp.goal}: guessed from the name {exp.metric}; pass --goal to set it")
    for note in found.notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"created {rel}/ (metric {exp.metric}, {exp.goal}; params in {rel}/config.yaml)")
    print(f"next: assay run {name} baseline")


@app.command(context_settings={"allow_extra_args": False})
def run(
    name: str,
    desc: Annotated[str, typer.Argument(help="Short description, part of the run folder name.")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value params (+key=value adds a key).")] = None,
    timeout: Annotated[Optional[str], typer.Option(help="e.g. 90s, 10m, 2h (default: the experiment's).")] = None,
    repeat: Annotated[int, typer.Option(help="Run K seeds: seed, seed+1, ...")] = 1,
    entry: Annotated[Optional[str], typer.Option(help="Entry point instead of the experiment's.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Also stream output to the screen.")] = False,
    tag: Annotated[Optional[list[str]], typer.Option(help="key=value tag for the run.")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="A scaled-down run (the experiment's smoke: params) under 60s; records throughput.")] = False,
    oom_ladder: Annotated[Optional[bool], typer.Option("--oom-ladder/--no-oom-ladder", help="On OOM retry with the next remedy (default: on when the experiment has oom_ladder:).")] = None,
    approve_locked: Annotated[Optional[list[str]], typer.Option("--approve-locked", help="A locked key the OOM ladder may change.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start the run in the background; print its id and folder at once (then: assay wait RUN).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Run an experiment's entry point; output goes to the run's logs/, one summary line here.

    --timeout auto sizes the timeout from a smoke run first (time per step x steps + 30%)."""
    from assay.cli.live import LiveRuns, wants_live_status
    from assay.runner import RunSpec, run_experiment
    from assay.runner.detach import HANDOFF_ENV, HandOff
    from assay.runner.launch import summary_line

    lab = _lab()
    tags = parse_tags(tag or [])
    if detach:
        _detach(lab, json_, follow=follow, repeat=repeat, smoke=smoke, auto=timeout == "auto")
        return
    handoff = os.environ.pop(HANDOFF_ENV, None)  # set for the `assay run` that --detach starts
    live = LiveRuns(lab.root, live_status=wants_live_status(follow, json_), summaries=not json_)
    observer = live if handoff is None else HandOff(live, Path(handoff))
    spec = RunSpec(name, desc, list(overrides or []), timeout, repeat, entry, follow, tags, observer=observer)
    try:
        if smoke or timeout == "auto" or oom_ladder or (oom_ladder is None and _has_ladder(lab, name)):
            from assay.cli.sweep import run_validated

            results = run_validated(lab, spec, smoke, oom_ladder, approve_locked or [], quiet=json_)
        else:
            results = run_experiment(lab, spec)
    finally:
        live.stop()
    if json_:
        from assay.cli.render import emit_json

        emit_json([{**r.record, "path": str(r.path)} for r in results])
    else:
        for r in results:
            if str(r.path) not in live.printed:  # e.g. a smoke run: not reported as it ended
                print(summary_line(r, lab.root))
    # A run the OOM ladder retried is decided by its retry: the exit code reads the final attempts.
    retried = {r.record.get("tags", {}).get("oom_retry_of") for r in results}
    raise typer.Exit(outcome_exit_code([r.status for r in results if r.record.get("id") not in retried]))


def _has_ladder(lab: Lab, name: str) -> bool:
    """The experiment declares an `oom_ladder:` (its runs then retry an OOM by default). A plain run
    skips the validate-before-spend module altogether (a few ms of every `assay run`)."""
    from assay.experiment import load_experiment

    return load_experiment(lab, name).has_oom_ladder


def _detach(lab: Lab, json_: bool, *, follow: bool, repeat: int, smoke: bool, auto: bool) -> None:
    """`assay run --detach`: the same command line, without --detach, started in the background."""
    from assay.errors import ConfigError
    from assay.runner.detach import NotStarted, start_detached

    clash = "--follow" if follow else "--repeat" if repeat > 1 else "--smoke" if smoke else "--timeout auto" if auto else None
    if clash:
        raise ConfigError(f"--detach starts one run and returns; it does not combine with {clash}",
                          "Start each run with its own `assay run ... --detach`, or drop --detach.")
    started = start_detached(lab, [a for a in sys.argv[1:] if a != "--detach"])
    if isinstance(started, NotStarted):  # its own error message (JSON under --json) says why
        (sys.stdout if json_ else sys.stderr).write(started.output)
        raise typer.Exit(started.exit_code)
    if json_:
        from assay.cli.render import emit_json

        emit_json(started.to_dict())
        return
    print(f"running  {started.id}  {started.path}  (pid {started.pid})")
    print(f"next: assay wait {started.id}")


@app.command()
def wait(
    run_refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Runs to wait for (`last`: the newest).")],
    timeout: Annotated[Optional[str], typer.Option(help="Stop waiting after this long, e.g. 90s, 10m (exit 124; the runs go on).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Wait until runs end; exit as `assay run` would have (0 all ok, 1 any not ok, 130 interrupted; 124 timed out)."""
    from assay.config import parse_duration
    from assay.runner.detach import wait_for_runs
    from assay.runner.launch import RunResult, summary_line

    lab = _lab()
    waited = wait_for_runs(lab, run_refs, parse_duration(timeout))
    code = WAIT_TIMED_OUT if waited.timed_out else outcome_exit_code([r["status"] for r in waited.runs])
    if json_:
        from assay.cli.render import emit_json

        emit_json({"runs": waited.runs, "timed_out": waited.timed_out, "exit": code})
        raise typer.Exit(code)
    for r in waited.runs:
        path = Path(r["path"])
        if r["status"] == "running":
            print(f"{'running':<8}  {path.relative_to(lab.root) if path.is_relative_to(lab.root) else path}")
        else:
            print(summary_line(RunResult(path, r), lab.root))
    if waited.timed_out:
        from assay.config import format_duration

        print(f"stopped waiting after {format_duration(parse_duration(timeout))}; the runs go on (assay wait {' '.join(run_refs)})", file=sys.stderr)
    raise typer.Exit(code)


WAIT_TIMED_OUT = 124  # as coreutils' `timeout`: the wait ran out, not the run (README, "Exit codes")


@app.command()
def runs(
    name: Annotated[Optional[str], typer.Argument(help="Experiment (default: all).")] = None,
    where: Annotated[Optional[str], typer.Option(help='Filter, e.g. "val_f1>0.8 and lr<1e-3, status=ok".')] = None,
    sort: Annotated[Optional[str], typer.Option(help="Field to sort by (metrics best-first); field:asc|desc.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show (0: all).")] = 20,
    all_: Annotated[bool, typer.Option("--all", help="Include ignored runs.")] = False,
    value: Annotated[str, typer.Option("--value", help="Metric columns show each run's last (final) or best value.")] = "last",
    json_: JsonOpt = False,
) -> None:
    """List runs (newest first), filtered and sorted."""
    from assay.cli.render import emit_json, fmt, table, varying_params, when
    from assay.config import format_bytes, format_duration
    from assay.report.evidence import check_value
    from assay.store.query import list_runs

    check_value(value)
    lab = _lab()
    rows, total = list_runs(lab, name, where, sort, limit or None, all_)
    if json_:
        emit_json({"total": total, "runs": rows})
        return
    if not rows:
        print("no runs" + (f" match '{where}'" if where else "") + (f" in {name}" if name else ""))
        return
    varying = varying_params(rows)
    metric_keys = list(dict.fromkeys(r["primary_metric"] for r in rows if r["primary_metric"]))[:3]
    headers = ["run", "status", *(m if value == "last" else f"best_{m}" for m in metric_keys), *varying, "time", "mem", "started"]
    body = []
    for r in rows:
        rid = r["id"] if not name else r["id"].split("/", 1)[1]
        body.append([rid + (" (ignored)" if r["ignored"] else ""), r["status"],
                     *(fmt((r["metrics"].get(m) or {}).get(value)) for m in metric_keys),
                     *(fmt(r["params"].get(k)) for k in varying),
                     format_duration(r["duration"]), format_bytes(r["peak_rss"]), when(r["started"])])
    table(headers, body)
    if total is not None and total > len(rows):
        print(f"({total - len(rows)} more; --limit 0 shows all)")


@app.command()
def show(run_ref: Annotated[str, typer.Argument(metavar="RUN")], json_: JsonOpt = False) -> None:
    """Show one run's record: status, params, metrics, provenance, log tail path."""
    from assay.cli.render import emit_json, fmt, when
    from assay.config import format_bytes, format_duration
    from assay.store.query import show_run

    lab = _lab()
    rec = show_run(lab, run_ref)
    if json_:
        emit_json(rec)
        return
    print(f"{rec['id']}  {rec['status']}" + (f"  ({rec['reason']})" if rec.get("reason") else ""))
    if rec.get("ignored"):
        print(f"ignored: {rec['ignored']}")
    print(f"started {when(rec.get('started'))}  duration {format_duration(rec.get('duration'))}  "
          f"peak {format_bytes(rec.get('peak_rss'))}" + (f"  gpu {format_bytes(rec['peak_gpu_mem'])}" if rec.get("peak_gpu_mem") else "")
          + f"  exit {fmt(rec.get('exit_code'))}")
    from assay.config import flatten

    print("params: " + ", ".join(f"{k}={fmt(v)}" for k, v in flatten(rec.get("params") or {}).items()))
    for k, s in (rec.get("metrics") or {}).items():
        print(f"  {k}: last {fmt(s.get('last'))} @ {s.get('last_step')}, best {fmt(s.get('best'))} @ {s.get('best_step')} ({s.get('count')} points)")
    git = rec.get("git") or {}
    if git:
        print(f"git: {(git.get('commit') or '-')[:10]} on {git.get('branch')}" + (f", dirty ({len(git['dirty'])} files, patch {git.get('patch')})" if git.get("dirty") else ""))
    for w in rec.get("warnings", []):
        print(f"warning: {w}")
    print(f"log: {rec['path']}/logs/output.log")


@app.command()
def compare(
    name: str,
    by: Annotated[Optional[str], typer.Option(help="Params to group by, comma-separated: lr,batch; `code` for the code version (default: the params that vary).")] = None,
    metric: Annotated[Optional[str], typer.Option(help="Metric (default: the primary).")] = None,
    value: Annotated[str, typer.Option("--value", help="Per run: last (final value) or best (best step).")] = "last",
    pool_code: Annotated[bool, typer.Option("--pool-code", help="Pool runs of different code versions with equal params.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Include ignored runs.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Compare configurations (params, entry point, code version): mean ± std over seeds, best row marked."""
    from assay.cli.render import emit_json

    lab = _lab()
    keys = None if by is None else [k.strip() for k in by.split(",") if k.strip()]
    from assay.store.query import compare as do_compare

    res = do_compare(lab, name, keys, metric, all_, value=value, pool_code=pool_code)
    if json_:
        emit_json(res)
        return
    if not res["rows"]:
        print(f"no finished runs in {name}")
        return
    from assay.cli.render import compare_table

    compare_table(res, name)


@app.command()
def note(name: str, text: str, run: Annotated[Optional[str], typer.Option(help="Run the note is about.")] = None,
         json_: JsonOpt = False) -> None:
    """Append a timestamped note to JOURNAL.md: "[HUNCH] ...", tags WEIRD, HUNCH, TODO, RESOLVED."""
    from assay.experiment import load_experiment
    from assay.journal import add_note
    from assay.store.query import find_run

    lab = _lab()
    exp = load_experiment(lab, name)
    run_id = None
    if run:
        p = find_run(lab, run)
        run_id = f"{p.parent.parent.name}/{p.name}"
    e = add_note(exp.path, text, run_id)
    if json_:
        from assay.cli.render import emit_json

        emit_json({**e.to_dict(), "journal": str(exp.path / "JOURNAL.md")})
        return
    print(f"noted [{e.tag}] in {exp.path.relative_to(lab.root)}/JOURNAL.md")


@app.command()
def journal(name: str, tag: Annotated[Optional[str], typer.Option(help="Only this tag.")] = None, json_: JsonOpt = False) -> None:
    """Read an experiment's journal entries."""
    from assay.experiment import load_experiment
    from assay.journal import read_journal

    exp = load_experiment(_lab(), name)
    entries = read_journal(exp.path, tag)
    if json_:
        from assay.cli.render import emit_json

        emit_json([e.to_dict() for e in entries])
        return
    for e in entries:
        print(f"{e.when} [{e.tag}] {e.text}" + (f" (run: {e.run})" if e.run else ""))
    if not entries:
        print("no entries" + (f" tagged {tag}" if tag else ""))


@app.command()
def ignore(run_ref: Annotated[str, typer.Argument(metavar="RUN")], why: Annotated[str, typer.Option(help="Why it is left out.")],
           json_: JsonOpt = False) -> None:
    """Leave a run out of tables and comparisons (recorded in IGNORED_RUNS.md)."""
    from assay.journal import ignore_run
    from assay.store.index import Index
    from assay.store.query import find_run

    lab = _lab()
    path = find_run(lab, run_ref)
    ignore_run(path, why)
    with Index(lab) as index:
        index.set_ignored(f"{path.parent.parent.name}/{path.name}", True)
    if json_:
        from assay.cli.render import emit_json

        emit_json({"id": f"{path.parent.parent.name}/{path.name}", "path": str(path), "why": why})
        return
    print(f"ignored {path.parent.parent.name}/{path.name}")


@app.command()
def reindex(force: Annotated[bool, typer.Option(help="Move an unreadable index aside first.")] = False, json_: JsonOpt = False) -> None:
    """Rebuild the SQLite index from the run folders (the files are the truth)."""
    from assay.store.query import reindex as do_reindex

    res = do_reindex(_lab(), force)
    if json_:
        from assay.cli.render import emit_json

        emit_json(res)
        return
    if res.get("moved_aside"):
        print(f"moved the unreadable index to {res['moved_aside']}")
    print(f"indexed {res['runs']} runs" + (f", {res['newly_lost']} newly marked lost" if res["newly_lost"] else ""))
    for p in res["problems"]:
        print(f"  unreadable: {p['path']}: {p['error']}")
    for w in res.get("warnings", []):
        print(f"  warning: {w['path']}: {w['warning']}")


@app.command()
def status(json_: JsonOpt = False) -> None:
    """Runs in progress, and runs lost (their process died without a final record)."""
    from assay.cli.render import emit_json, fmt, when
    from assay.store.query import running_and_lost

    res = running_and_lost(_lab())
    if json_:
        emit_json(res)
        return
    for r in res["running"]:
        last = ", ".join(f"{k}={fmt(v)}" for k, v in list(r.get("metrics", {}).items())[:4])
        step = f"  step {r['last_step']}" if r.get("last_step") is not None else ""
        print(f"running  {r['id']}  since {when(r['started'])}{step}  {last}")
    for r in res["lost"]:
        print(f"lost     {r['id']}  started {when(r['started'])}")
    if not res["running"] and not res["lost"]:
        print("nothing running, nothing lost")


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="Folder for the demo lab.")] = Path("assay-demo"),
) -> None:
    """Create a demo lab (scikit-learn digits), run a baseline and variants, print the comparison."""
    from assay.demo import run_demo

    run_demo(path, print)


@app.command("agent-guide")
def agent_guide(json_: JsonOpt = False) -> None:
    """Print the guide for coding agents (installed into AGENTS.md by `assay init`)."""
    from assay.agents import GUIDE

    if json_:
        from assay.cli.render import emit_json

        emit_json({"guide": GUIDE})
        return
    print(GUIDE, end="")


# Commands of the larger areas live in their own modules; each exposes register(app) and keeps
# its heavy imports inside the command functions, so `assay --help` stays fast.
from assay.cli import ecosystem as _ecosystem  # noqa: E402
from assay.cli import evidence as _evidence  # noqa: E402
from assay.cli import loop as _loop  # noqa: E402
from assay.cli import pipeline as _pipeline  # noqa: E402
from assay.cli import sweep as _sweep  # noqa: E402
from assay.cli import web as _web  # noqa: E402

for _module in (_loop, _sweep, _evidence, _web, _ecosystem, _pipeline):
    _module.register(app)


def _only_the_named_command(argv: list[str]) -> typer.Typer:
    """The app holding just the command (or group) `argv` names, when it names one.

    Typer turns every command's signature into click objects before dispatching (~35 ms for ~40
    commands, a sixth of `assay run`'s overhead); one command line needs one of them. Anything
    else (help, a typo, root options in odd places) gets the whole app and its usual messages.
    """
    import copy

    from typer.main import get_command_name

    args = [a for a in argv if a != "--debug"]
    if not args or args[0].startswith("-"):
        return app
    cmds = [c for c in app.registered_commands
            if (c.name or (c.callback and get_command_name(c.callback.__name__))) == args[0]]
    groups = [g for g in app.registered_groups if (g.name or (g.typer_instance and g.typer_instance.info.name)) == args[0]]
    if not cmds and not groups:
        return app
    narrow = copy.copy(app)
    narrow.registered_commands, narrow.registered_groups = cmds, groups
    return narrow


def main() -> None:
    """Entry point: AssayError -> `Error: ...` + hint on stderr, exit with its code (traceback with --debug).

    Under --json every error, usage errors included, is one JSON object on stdout instead:
    {"error": message, "fix": hint or null, "exit": code}, and the exit code is the same.
    """
    argv = sys.argv[1:]
    as_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    try:
        if as_json:
            sys.exit(_main_json(argv))
        _only_the_named_command(argv)(prog_name="assay")
    except AssayError as exc:
        if _state["debug"]:
            raise
        _fail(exc.message, exc.hint, exc.exit_code, as_json)
    except OSError as exc:  # a writer the read-only checks did not cover (sweep, loop, init): one line too
        import errno

        if _state["debug"] or exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        _fail(f"Cannot write {exc.filename or 'to the lab'}: {exc.strerror}",
              "Work in a writable copy of the lab, or ask its owner to make it writable.", 1, as_json)


def _main_json(argv: list[str]) -> int:
    """Run the command with click's own error printing off, so usage errors come back as JSON too."""
    try:
        code = _only_the_named_command(argv)(prog_name="assay", standalone_mode=False)
    except typer.Abort:
        _fail("Interrupted", None, 130, True)
    except typer.TyperException as exc:  # click's usage errors: unknown option, missing argument (exit 2)
        ctx = getattr(exc, "ctx", None)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(message, f"See `{ctx.command_path if ctx else 'assay'} --help`.", getattr(exc, "exit_code", 2), True)
    return code if isinstance(code, int) else 0


def _fail(message: str, hint: str | None, code: int, as_json: bool) -> None:
    """Report an error and exit with `code` (README, "Exit codes")."""
    if as_json:
        from assay.cli.render import emit_json

        emit_json({"error": message, "fix": hint, "exit": code})
    else:
        print(f"Error: {message}", file=sys.stderr)
        if hint:
            print(f"  {hint}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
