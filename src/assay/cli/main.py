"""`assay` commands. Each parses, calls one API function, renders; no SQL, git or processes here."""


import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, TypedDict

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
    from assay.api import ExperimentInfo, Journal, LabInfo, Reindexed, Runs, Waited

app = typer.Typer(
    name="assay",
    help="Hypothesis-driven ML experiments: declare, run, capture, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False}

from assay.cli.common import JsonOpt, emit  # noqa: E402


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


@app.command()
def init(path: Annotated[Optional[Path], typer.Argument(help="Folder to make a lab (default: here).")] = None,
         json_: JsonOpt = False) -> None:
    """Make a folder an assay lab: assay.toml, .assay/ index, AGENTS.md section (imported by an existing CLAUDE.md)."""
    from assay import api

    emit(api.init(path), json_, _print_init)


def _print_init(info: "LabInfo") -> None:
    print(f"lab ready at {info.root}" + (f" (wrote {', '.join(info.written)})" if info.written else " (already initialised)"))
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
    from assay import api

    info = api.new_experiment(name, hypothesis=hypothesis, metric=metric, goal=goal, success=success, failure=failure,
                              secondary=secondary, from_=from_, entry=entry, timeout=timeout, script=from_script)
    emit(info, json_, lambda i: _print_new(i, script=from_script, metric=metric, goal=goal))


def _print_new(info: "ExperimentInfo", *, script: Path | None, metric: str | None, goal: str | None) -> None:
    from assay import api

    rel = _rel(info.path, api.find().root)
    found = info.adoption
    if found is not None:
        print(f"adopted {script} ({found.kind}: {len(found.params)} params, style {found.style})")
        for p in found.params:
            print(f"  {p.name} = {p.default!r}" + (f"  ({p.type})" if p.type else "") + ("  required" if p.required else ""))
        print(f"entry {info.entry}, runs in {info.workdir} (the script's folder); nothing copied")
        if metric is None:
            line = next(n for m, n in found.metrics if m == info.metric)
            print(f"metric {info.metric}: the one metric the script prints ({found.script.name}:{line}); pass --metric to choose another")
        if goal is None:
            print(f"goal {info.goal}: guessed from the name {info.metric}; pass --goal to set it")
        for note_ in found.notes:
            print(f"warning: {note_}", file=sys.stderr)
        print(f"created {rel}/ (metric {info.metric}, {info.goal}; params in {rel}/config.yaml)")
    else:
        print(f"created {rel}/ (metric {info.metric}, {info.goal})")
    print(f"next: assay run {info.experiment} baseline")


def _rel(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


class _RunOptions(TypedDict):
    """What `assay run` passes to api.run both in the foreground and with --detach."""

    overrides: list[str]
    timeout: str | None
    entry: str | None
    tags: dict[str, str]
    oom_ladder: bool | None
    approve_locked: list[str]


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
    from assay import api
    from assay.cli.live import LiveRuns, wants_live_status
    from assay.runner.detach import HANDOFF_ENV, HandOff

    common: _RunOptions = {"overrides": list(overrides or []), "timeout": timeout, "entry": entry,
                           "tags": parse_tags(tag or []), "oom_ladder": oom_ladder, "approve_locked": approve_locked or []}
    if detach:
        started = api.run(name, desc, detach=True, follow=follow, repeat=repeat, smoke=smoke, **common)
        emit(started, json_, lambda d: print(f"running  {d.id}  {d.path}  (pid {d.pid})\nnext: assay wait {d.id}"))
        return
    lab = api.find()
    handoff = os.environ.pop(HANDOFF_ENV, None)  # set for the `assay run` that --detach starts
    live = LiveRuns(lab.root, live_status=wants_live_status(follow, json_), summaries=not json_)
    observer = live if handoff is None else HandOff(live, Path(handoff))
    try:
        results = api.run(name, desc, repeat=repeat, follow=follow, smoke=smoke, observer=observer,
                          say=None if json_ else print, lab=lab, **common)
    finally:
        live.stop()
    emit(results, json_, lambda rs: _print_unreported(rs, live.printed, lab.root))
    raise typer.Exit(results.exit_code)


def _print_unreported(results: "Runs", printed: set[str], root: Path) -> None:
    """Summary lines of the runs not reported as they ended (e.g. a smoke run)."""
    from assay.runner.launch import summary_line

    for r in results:
        if str(r.path) not in printed:
            print(summary_line(r, root))


@app.command()
def wait(
    run_refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Runs to wait for (`last`: the newest).")],
    timeout: Annotated[Optional[str], typer.Option(help="Stop waiting after this long, e.g. 90s, 10m (exit 124; the runs go on).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Wait until runs end; exit as `assay run` would have (0 all ok, 1 any not ok, 130 interrupted; 124 timed out)."""
    from assay import api
    from assay.config import parse_duration

    lab = api.find()
    waited = api.wait(run_refs, timeout=parse_duration(timeout), lab=lab)
    emit(waited, json_, lambda w: _print_waited(w, lab.root, run_refs, timeout))
    raise typer.Exit(waited.exit_code)


def _print_waited(waited: "Waited", root: Path, run_refs: list[str], timeout: str | None) -> None:
    from assay.config import format_duration, parse_duration
    from assay.runner.launch import RunResult, summary_line

    for r in waited.runs:
        path = Path(r["path"])
        if r["status"] == "running":
            print(f"{'running':<8}  {_rel(path, root)}")
        else:
            print(summary_line(RunResult(path, r), root))
    if waited.timed_out:
        print(f"stopped waiting after {format_duration(parse_duration(timeout))}; the runs go on (assay wait {' '.join(run_refs)})", file=sys.stderr)


@app.command()
def runs(
    name: Annotated[Optional[str], typer.Argument(help="Experiment (default: all).")] = None,
    where: Annotated[Optional[str], typer.Option(help='Filter, e.g. "val_f1>0.8 and lr<1e-3, status=ok".')] = None,
    sort: Annotated[Optional[str], typer.Option(help="Field to sort by (metrics best-first); field:asc|desc.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show (0: all).")] = 20,
    all_: Annotated[bool, typer.Option("--all", help="Include ignored runs.")] = False,
    value: Annotated[str, typer.Option("--value", help="Metric columns show each run's last (final) or best value.")] = "last",
    cost: Annotated[bool, typer.Option("--cost", help="Add the cost ledger's columns: GPU-hours, CPU-hours, money.")] = False,
    json_: JsonOpt = False,
) -> None:
    """List runs (newest first), filtered and sorted."""
    from assay import api
    from assay.cli.render import runs_table

    res = api.runs(experiment=name, where=where, sort=sort, limit=limit, include_ignored=all_, value=value)
    emit(res, json_, lambda t: runs_table(t, name, where, value, cost=cost))


@app.command()
def show(run_ref: Annotated[str, typer.Argument(metavar="RUN")], json_: JsonOpt = False) -> None:
    """Show one run's record: status, params, metrics, provenance, log tail path."""
    from assay import api
    from assay.cli.render import run_details

    emit(api.show(run_ref), json_, run_details)


@app.command()
def compare(
    name: str,
    by: Annotated[Optional[str], typer.Option(help="Params to group by, comma-separated: lr,batch; `code` for the code version (default: the params that vary).")] = None,
    metric: Annotated[Optional[str], typer.Option(help="Metric (default: the primary).")] = None,
    value: Annotated[str, typer.Option("--value", help="Per run: last (final value) or best (best step).")] = "last",
    pool_code: Annotated[bool, typer.Option("--pool-code", help="Pool runs of different code versions with equal params.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Include ignored runs.")] = False,
    cost: Annotated[bool, typer.Option("--cost", help="Add each configuration's cost: GPU-hours, CPU-hours, money.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Compare configurations (params, entry point, code version): mean ± std over seeds, best row marked."""
    from assay import api
    from assay.cli.render import compare_table

    res = api.compare(name, by=by, metric=metric, value=value, pool_code=pool_code, include_ignored=all_)
    emit(res, json_, lambda c: compare_table(c, name, cost=cost) if c.rows else print(f"no finished runs in {name}"))


@app.command()
def note(name: str, text: str, run: Annotated[Optional[str], typer.Option(help="Run the note is about.")] = None,
         json_: JsonOpt = False) -> None:
    """Append a timestamped note to JOURNAL.md: "[HUNCH] ...", tags WEIRD, HUNCH, TODO, RESOLVED."""
    from assay import api

    lab = api.find()
    emit(api.note(name, text, run=run, lab=lab), json_,
         lambda n: print(f"noted [{n.entry.tag}] in {_rel(n.journal, lab.root)}"))


@app.command()
def journal(name: str, tag: Annotated[Optional[str], typer.Option(help="Only this tag.")] = None, json_: JsonOpt = False) -> None:
    """Read an experiment's journal entries."""
    from assay import api

    emit(api.journal(name, tag=tag), json_, lambda j: _print_journal(j, tag))


def _print_journal(entries: "Journal", tag: str | None) -> None:
    for e in entries:
        print(f"{e.when} [{e.tag}] {e.text}" + (f" (run: {e.run})" if e.run else ""))
    if not entries:
        print("no entries" + (f" tagged {tag}" if tag else ""))


@app.command()
def ignore(run_ref: Annotated[str, typer.Argument(metavar="RUN")], why: Annotated[str, typer.Option(help="Why it is left out.")],
           json_: JsonOpt = False) -> None:
    """Leave a run out of tables and comparisons (recorded in IGNORED_RUNS.md)."""
    from assay import api

    emit(api.ignore(run_ref, why=why), json_, lambda i: print(f"ignored {i.id}"))


@app.command()
def reindex(force: Annotated[bool, typer.Option(help="Move an unreadable index aside first.")] = False, json_: JsonOpt = False) -> None:
    """Rebuild the SQLite index from the run folders (the files are the truth)."""
    from assay import api

    emit(api.reindex(force=force), json_, _print_reindex)


def _print_reindex(res: "Reindexed") -> None:
    d = res.to_dict()
    if d.get("moved_aside"):
        print(f"moved the unreadable index to {d['moved_aside']}")
    print(f"indexed {d['runs']} runs" + (f", {d['newly_lost']} newly marked lost" if d["newly_lost"] else ""))
    for p in d["problems"]:
        print(f"  unreadable: {p['path']}: {p['error']}")
    for w in d.get("warnings", []):
        print(f"  warning: {w['path']}: {w['warning']}")


@app.command()
def status(json_: JsonOpt = False) -> None:
    """Runs in progress, and runs lost (their process died without a final record)."""
    from assay import api
    from assay.cli.render import running_and_lost

    emit(api.status(), json_, running_and_lost)


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="Folder for the demo lab.")] = Path("assay-demo"),
) -> None:
    """Create a demo lab (scikit-learn digits), run a baseline and variants, print the comparison."""
    from assay.cli.render import compare_table
    from assay.demo import run_demo

    shown = run_demo(path, print)
    compare_table(shown.comparison, shown.experiment)
    v = shown.verdict
    print(f"\nverdict: {v.verdict.upper()}: {v.reason}")
    if v.hint:
        print(f"to decide it: {v.hint}")
    print(f"next: cd {path} && assay runs digits --sort val_f1 && assay verdict digits && assay ui")


@app.command("agent-guide")
def agent_guide(json_: JsonOpt = False) -> None:
    """Print the guide for coding agents (installed into AGENTS.md by `assay init`)."""
    from assay.agents import GUIDE

    emit({"guide": GUIDE}, json_, lambda g: print(g["guide"], end=""))


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
