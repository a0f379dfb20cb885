"""`assay loop ...` and `assay try`: the keep-or-discard ratchet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:  # kept out of `assay --help`
    from assay.lab import Lab
    from assay.loop.ratchet import Outcome

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output with stable keys.")]
loop_app = typer.Typer(help="The autonomous loop: baseline, try, keep or reset, results.tsv.", no_args_is_help=True)


def _lab() -> Lab:
    from assay.lab import find_lab

    return find_lab()


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

    from assay.experiment import confirm_settings, load_experiment
    from assay.loop.ratchet import start as do_start

    if confirm_settings(load_experiment(_lab(), name)) is None:
        print(f"warning: experiment '{name}' declares no `confirm:` in experiment.yaml: every decision looks at the validation "
              "split and no held-out split can check the result (add e.g. `confirm: {params: {split: test}}`)", file=sys.stderr)
    out = do_start(_lab(), name, tag, edit, protect or [], decision, repeats, max_repeats, min_delta, confidence,
                   lines_per_delta, timeout, max_retries, value)
    if json_:
        _emit_outcome(out)
        return
    print(out.line())
    print(f"next: edit {', '.join(edit)}, then: assay try \"what you changed\"")


def try_(
    description: Annotated[str, typer.Argument(help="The idea, in a few words.")],
    force: Annotated[bool, typer.Option(help="Run a diff that was already tried.")] = False,
    retry: Annotated[bool, typer.Option(help="This fixes the candidate that just crashed.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Commit the edits, run them, keep or reset: one line with the decision, metric ± noise, reason."""
    from assay.loop.ratchet import try_candidate

    out = try_candidate(_lab(), description, force, retry)
    if json_:
        _emit_outcome(out)
    else:
        print(out.line())


def _emit_outcome(out: Outcome) -> None:
    from dataclasses import asdict

    from assay.cli.render import emit_json

    emit_json(asdict(out))


@loop_app.command("status")
def status(tag: Annotated[Optional[str], typer.Argument(help="Loop tag (default: the checked-out one).")] = None,
           json_: JsonOpt = False) -> None:
    """Best so far, noise estimate, counts, a pending crash."""
    from assay.cli.render import emit_json, fmt
    from assay.loop.ratchet import status as do_status
    from assay.loop.results import show, show_delta

    s = do_status(_lab(), tag)
    if json_:
        emit_json(s)
        return
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


@loop_app.command("log")
def log(tag: Annotated[Optional[str], typer.Argument()] = None, last: Annotated[int, typer.Option(help="Rows (0: all).")] = 20,
        json_: JsonOpt = False) -> None:
    """results.tsv as a table."""
    from assay.cli.render import emit_json, table
    from assay.loop import results
    from assay.loop.ratchet import status as do_status

    s = do_status(_lab(), tag)
    rows = [r for r in results.read(Path(s["results"])) if r.tag == s["tag"]]
    rows = rows[-last:] if last else rows
    if json_:
        emit_json([r.to_json() for r in rows])
        return
    table(["#", "commit", s["label"], "status", "Δ", "n", "description", "reason"],
          [[r.iteration, r.commit, results.show(r.value) or "-", r.status, r.delta, r.n, r.description[:40], r.reason[:70]]
           for r in rows])


@loop_app.command("resume")
def resume(tag: str, json_: JsonOpt = False) -> None:
    """Rebuild the loop's state from git + results.tsv after an interruption; run a missing baseline."""
    from assay.loop.ratchet import resume as do_resume

    out = do_resume(_lab(), tag)
    if json_:
        from assay.cli.render import emit_json

        emit_json({"tag": tag, **out})
        return
    for n in out["notes"]:
        print(n)
    print(f"loop {tag}: best {(out['best_commit'] or '-')[:8]}, {out['iterations']} tried; next: assay try \"...\"")


@loop_app.command("confirm")
def confirm(tag: str,
            force: Annotated[bool, typer.Option(help="Confirm a best commit that was confirmed before (one more look).")] = False,
            json_: JsonOpt = False) -> None:
    """Run the baseline and the best on the held-out split (`confirm:`), once: confirmed vs claimed gain."""
    from assay.loop.confirm import confirm as do_confirm

    out = do_confirm(_lab(), tag, force)
    if json_:
        from assay.cli.render import emit_json

        emit_json(out.to_json())
    else:
        print(out.line())


@loop_app.command("drop")
def drop(tag: str, json_: JsonOpt = False) -> None:
    """Abandon the crashed candidate (its diff stays under refs/assay/TAG/tried/)."""
    from assay.loop.ratchet import drop as do_drop

    dropped = do_drop(_lab(), tag)
    if json_:
        from assay.cli.render import emit_json

        emit_json({"tag": tag, "dropped": dropped})
        return
    print(f"dropped: {dropped}")


@loop_app.command("prompt")
def prompt(tag: Annotated[Optional[str], typer.Argument()] = None,
           last: Annotated[int, typer.Option(help="Results rows to include.")] = 10, json_: JsonOpt = False) -> None:
    """Print the compact brief for whoever proposes the next change."""
    from assay.loop.brief import brief
    from assay.loop.ratchet import current
    from assay.loop.state import find_by_tag

    lab = _lab()
    st = find_by_tag(lab, tag) if tag else current(lab)[0]
    text = brief(lab, st, last)
    if json_:
        from assay.cli.render import emit_json

        emit_json({"tag": st.tag, "prompt": text})
        return
    print(text, end="")


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
    cost_per_hour: Annotated[Optional[float], typer.Option(help="Cost of one hour of runs.")] = None,
    max_cost: Annotated[Optional[float], typer.Option(help="Stop when the runs cost this much.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Let an agent command or the params proposer drive the loop within budgets."""
    from assay.experiment import load_experiment
    from assay.loop.driver import Budget, run_loop
    from assay.loop.proposers import make_proposer
    from assay.loop.state import find_by_tag

    lab = _lab()
    st = find_by_tag(lab, tag)
    proposer = make_proposer(lab, st, load_experiment(lab, st.experiment).goal, agent, propose or (None if agent else "params"),
                             param, agent_timeout, space)
    lines: list[str] = []
    why = run_loop(lab, tag, proposer, Budget(max_iterations, max_time, plateau, cost_per_hour, max_cost, max_crashes),
                   lines.append if json_ else print)
    if json_:
        from assay.cli.render import emit_json

        emit_json({"tag": tag, "stopped": why, "lines": lines})
        return
    print(f"stopped: {why}")


@loop_app.command("plot")
def plot(tag: Annotated[Optional[str], typer.Argument()] = None, json_: JsonOpt = False) -> None:
    """The progress plot from results.tsv: every try; kept green (labelled), discarded grey, crashes as red crosses."""
    from assay.loop.plot import progress_plot
    from assay.loop.ratchet import current
    from assay.loop.state import find_by_tag

    lab = _lab()
    st = find_by_tag(lab, tag) if tag else current(lab)[0]
    path = progress_plot(lab, st)
    if json_:
        from assay.cli.render import emit_json

        emit_json({"tag": st.tag, "path": str(path), "sidecar": str(path.with_suffix(".json"))})
        return
    print(path)


def register(app: typer.Typer) -> None:
    """Add `assay loop ...` and `assay try` to `app`."""
    app.add_typer(loop_app, name="loop")
    app.command("try")(try_)
