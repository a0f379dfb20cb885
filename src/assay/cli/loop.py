"""`assay loop ...` and `assay try`: the keep-or-discard ratchet."""


from typing import Annotated, Optional

import typer

from assay.cli.common import JsonOpt, emit

loop_app = typer.Typer(help="The autonomous loop: baseline, try, keep or reset, results.tsv.", no_args_is_help=True)


@loop_app.command("start")
def start(
    name: str,
    tag: Annotated[str, typer.Option(help="Loop name; the branch is assay/TAG.")],
    edit: Annotated[list[str], typer.Option(help="A file candidates may change (repeatable).")],
    protect: Annotated[Optional[list[str]], typer.Option(help="A file nobody may change, e.g. the evaluation.")] = None,
    decision: Annotated[str, typer.Option(help="noise-aware, sequential or greedy.")] = "noise-aware",
    repeats: Annotated[int, typer.Option(help="Baseline seeds for the noise estimate.")] = 3,
    max_repeats: Annotated[int, typer.Option(help="Most seeds a promising candidate gets.")] = 4,
    min_delta: Annotated[float, typer.Option(help="Smallest improvement worth keeping.")] = 0.0,
    confidence: Annotated[float, typer.Option(help="Confidence a keep must reach.")] = 0.95,
    lines_per_delta: Annotated[float, typer.Option(help="Extra improvement required per changed line.")] = 0.0,
    timeout: Annotated[Optional[str], typer.Option(help="Per-run timeout (default: the experiment's).")] = None,
    max_retries: Annotated[int, typer.Option(help="Fix attempts after a crash before the idea is dropped.")] = 2,
    value: Annotated[str, typer.Option(help="Which value of each run counts: last (when training ended) or best.")] = "last",
    json_: JsonOpt = False,
) -> None:
    """Create branch assay/TAG, fix the protected files, run the unmodified baseline."""
    import sys

    from assay import loop

    out = loop.start(name, tag=tag, edit=edit, protect=protect or (), decision=decision, repeats=repeats,
                     max_repeats=max_repeats, min_delta=min_delta, confidence=confidence, lines_per_delta=lines_per_delta,
                     timeout=timeout, max_retries=max_retries, value=value,
                     warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    emit(out, json_, lambda o: print(f"{o.line()}\nnext: edit {', '.join(edit)}, then: assay try \"what you changed\""))


def try_(
    description: Annotated[str, typer.Argument(help="The idea, in a few words.")],
    force: Annotated[bool, typer.Option(help="Run a diff that was already tried.")] = False,
    retry: Annotated[bool, typer.Option(help="This fixes the candidate that just crashed.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Commit the edits, run them, keep or reset: one line with the decision, metric ± noise, reason."""
    from assay import loop

    emit(loop.try_(description, force=force, retry=retry), json_, lambda o: print(o.line()))


@loop_app.command("status")
def status(tag: Annotated[Optional[str], typer.Argument(help="Loop tag (default: the checked-out one).")] = None,
           json_: JsonOpt = False) -> None:
    """Best so far, noise estimate, counts, a pending crash."""
    from assay import loop

    emit(loop.status(tag), json_, lambda st: _status_lines(st.to_dict()))


def _status_lines(s: dict) -> None:
    from assay.cli.render import fmt
    from assay.loop.results import show, show_delta

    c = s["counts"]
    looks = f"{'at least ' if s['looks_lower_bound'] else ''}{s['looks']}"
    print(f"loop {s['tag']} on {s['branch']}: best {s['label']}={show(s['best']) or '-'} (n={s['best_n']}, {s['goal']}) "
          f"at {(s['best_commit'] or '-')[:8]}, σ={fmt(s['sigma'])} (df {s['sigma_df']}), {s['decision']}")
    print(f"{s['iterations']} tried: {c.get('keep', 0)} kept (baseline included), {c.get('discard', 0)} discarded, {c.get('crash', 0)} crashed")
    conf = s["confirmation"]
    if conf and conf["best_commit"] == s["best_commit"]:
        held = f"confirm {conf['number']}: gain {show_delta(conf['confirmed_gain'])} [{show(conf['ci'][0])}, {show(conf['ci'][1])}] on the held-out split"
    else:
        held = f"the best is unconfirmed (assay loop confirm {s['tag']})"
    print(f"{looks} looks at the validation metric (runs read to decide or re-measure); {s['confirms']} confirm(s); {held}")
    if s["pending_crash"]:
        print(f"pending crash: {s['pending_crash']['description']} (assay try --retry ... or assay loop drop {s['tag']})")
    flight = s["in_flight"]
    for c in flight["candidates"]:
        print(f"in flight: candidate {c['k']} ({c['phase']}, {c['runs']} run(s)) on {c['base'][:8]}: {c['description'] or '(being proposed)'}")
    if flight["leftovers"]:
        print(f"an interrupted parallel run left {len(flight['leftovers'])} worktree(s): assay loop resume {s['tag']}")


@loop_app.command("log")
def log(tag: Annotated[Optional[str], typer.Argument()] = None, last: Annotated[int, typer.Option(help="Rows (0: all).")] = 20,
        json_: JsonOpt = False) -> None:
    """results.tsv as a table."""
    from assay import loop

    res = loop.log(tag, last=last)
    emit(res.rows, json_, lambda rows: _log_table(res.label, rows))  # --json: the rows, a list (docs/ecosystem.md)


def _log_table(label: str, rows: list[dict]) -> None:
    from assay.cli.render import table
    from assay.loop.results import show

    table(["#", "commit", label, "status", "Δ", "n", "description", "reason"],
          [[r["iteration"], r["commit"], show(r["value"]) or "-", r["status"], r["delta"], r["n"], r["description"][:40],
            r["reason"][:70]] for r in rows])


@loop_app.command("resume")
def resume(tag: str, json_: JsonOpt = False) -> None:
    """Rebuild the loop's state from git + results.tsv after an interruption; run a missing baseline."""
    from assay import loop

    def lines(out: loop.Resumed) -> None:
        for n in out.notes:
            print(n)
        print(f"loop {tag}: best {(out.best_commit or '-')[:8]}, {out.iterations} tried; next: assay try \"...\"")

    emit(loop.resume(tag), json_, lines)


@loop_app.command("confirm")
def confirm(tag: str,
            force: Annotated[bool, typer.Option(help="Confirm a best commit that was confirmed before (one more look).")] = False,
            json_: JsonOpt = False) -> None:
    """Run the baseline and the best on the held-out split (`confirm:`), once: confirmed vs claimed gain."""
    from assay import loop

    emit(loop.confirm(tag, force=force), json_, lambda o: print(o.line()))


@loop_app.command("drop")
def drop(tag: str, json_: JsonOpt = False) -> None:
    """Abandon the crashed candidate (its diff stays under refs/assay/TAG/tried/)."""
    from assay import loop

    emit(loop.drop(tag), json_, lambda o: print(f"dropped: {o.dropped}"))


@loop_app.command("prompt")
def prompt(tag: Annotated[Optional[str], typer.Argument()] = None,
           last: Annotated[int, typer.Option(help="Results rows to include.")] = 10, json_: JsonOpt = False) -> None:
    """Print the compact brief for whoever proposes the next change."""
    from assay import loop

    emit(loop.prompt(tag, last=last), json_, lambda o: print(o.prompt, end=""))


@loop_app.command("run")
def run(
    tag: str,
    agent: Annotated[Optional[str], typer.Option(help="Shell command of a headless coding agent; gets $ASSAY_PROMPT.")] = None,
    propose: Annotated[Optional[str], typer.Option(help="Built-in proposer: params.")] = None,
    param: Annotated[Optional[list[str]], typer.Option(help="With --propose params: a key to tune (repeatable).")] = None,
    space: Annotated[Optional[list[str]], typer.Option(
        help="With --propose params: a dimension in the sweep syntax, e.g. 'max_features=interval(0.1,1.0)' (repeatable).")] = None,
    max_iterations: Annotated[Optional[int], typer.Option(help="Stop after N tries.")] = 20,
    max_time: Annotated[Optional[str], typer.Option(help="Stop after this long, e.g. 8h.")] = None,
    plateau: Annotated[Optional[int], typer.Option(help="Stop after N measured tries without a keep (crashes do not count).")] = 10,
    max_crashes: Annotated[Optional[int], typer.Option(help="Stop after N crashes in a row.")] = 5,
    agent_timeout: Annotated[str, typer.Option(help="Time limit of one agent call.")] = "30m",
    cost_per_hour: Annotated[Optional[float], typer.Option(help="Price of one hour of a run's wall time (added to assay.toml's prices).")] = None,
    max_cost: Annotated[Optional[str], typer.Option(help="Start no try that could take the runs' cost past this: '$20', '10gpu-h', '5cpu-h' (a number: money when priced, else GPU-hours).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve a loop whose estimate is above approve_above in assay.toml.")] = False,
    parallel: Annotated[int, typer.Option(help="Candidates evaluated at once, each in its own git worktree.")] = 1,
    executor: Annotated[str, typer.Option(
        help="Where candidates' runs go: local (one slot per candidate, one GPU each) or ray (workers get the candidate's commit; no shared disk needed).")] = "local",
    address: Annotated[Optional[str], typer.Option(help="With --executor ray: the cluster's address (default: a local Ray instance).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Let an agent command or the params proposer drive the loop within budgets."""
    from assay import loop
    from assay.cli.render import ask_on_tty

    out = loop.run(tag, parallel=parallel, agent=agent, propose=propose, params=param, space=space,
                   max_iterations=max_iterations, max_time=max_time, plateau=plateau, max_crashes=max_crashes,
                   agent_timeout=agent_timeout, cost_per_hour=cost_per_hour, max_cost=max_cost, executor=executor,
                   address=address, yes=yes, ask=ask_on_tty(), say=None if json_ else print)
    emit(out, json_, lambda o: print(f"stopped: {o.stopped}"))


@loop_app.command("plot")
def plot(tag: Annotated[Optional[str], typer.Argument()] = None, json_: JsonOpt = False) -> None:
    """The progress plot from results.tsv: every try; kept green (labelled), discarded grey, crashes as red crosses."""
    from assay import loop

    emit(loop.plot(tag), json_, lambda o: print(o.path))


def register(app: typer.Typer) -> None:
    """Add `assay loop ...` and `assay try` to `app`."""
    app.add_typer(loop_app, name="loop")
    app.command("try")(try_)
