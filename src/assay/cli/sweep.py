"""`assay sweep NAME sweep.yaml` or `assay sweep NAME lr=1e-4,3e-4 batch=32,64`: many runs of one experiment."""


from typing import Annotated, Any, Optional

import typer

from assay.cli.common import JsonOpt, emit


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""

    @app.command(context_settings={"allow_interspersed_args": True})
    def sweep(
        name: str,
        spec: Annotated[Optional[list[str]], typer.Argument(help="sweep.yaml, or key=v1,v2 items (choice(), range(), interval(), log()).")] = None,
        sampler: Annotated[Optional[str], typer.Option(help="grid, random, tpe (Optuna), cmaes, gp, qmc, optuna:<Class>.")] = None,
        trials: Annotated[Optional[int], typer.Option(help="Trial budget (default: the whole grid).")] = None,
        parallel: Annotated[Optional[int], typer.Option("--parallel", "-j", help="Trials at once (default: GPUs, else CPU cores).")] = None,
        executor: Annotated[Optional[str], typer.Option(help="local or ray.")] = None,
        address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: a local Ray instance).")] = None,
        pruner: Annotated[Optional[str], typer.Option(help="Optuna pruner: median, percentile, hyperband, halving, none.")] = None,
        seed: Annotated[Optional[int], typer.Option(help="Sampler seed.")] = None,
        preflight: Annotated[Optional[bool], typer.Option("--preflight/--no-preflight", help="One smoke run first; refuse to fan out if it fails.")] = None,
        timeout: Annotated[Optional[str], typer.Option(help="Per-trial timeout (default: the experiment's).")] = None,
        oom_ladder: Annotated[Optional[bool], typer.Option("--oom-ladder/--no-oom-ladder", help="Retry a trial that ends oom with the next remedy (default: on when the experiment has oom_ladder:).")] = None,
        approve_locked: Annotated[Optional[list[str]], typer.Option("--approve-locked", help="Let the OOM ladder change this locked key (repeatable).")] = None,
        resume: Annotated[Optional[str], typer.Option(help="Resume sweep ID ('last' for the newest); finished trials are not re-run.")] = None,
        multirun: Annotated[bool, typer.Option("-m", "--multirun", help="Accepted for Hydra habits; sweeping is implied.")] = False,
        value: Annotated[str, typer.Option(help="Score each trial by its metric's last (final) or best value.")] = "last",
        strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any trial did not end ok (default: when none did).")] = False,
        max_cost: Annotated[Optional[str], typer.Option("--max-cost", help="Stop launching trials before the runs would cost more: '$20', '10gpu-h', '5cpu-h' (a number: money when assay.toml sets a price, else GPU-hours).")] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve a sweep whose estimate is above approve_above in assay.toml.")] = False,
        json_: JsonOpt = False,
    ) -> None:
        """Run many trials of an experiment over a search space; each trial is a run tagged sweep=<id>."""
        from assay import api
        from assay.cli.render import ask_on_tty

        items = list(spec or [])
        progress: _Progress | None = None

        def on_event(ev: Any) -> None:
            nonlocal progress
            if progress is None:
                progress = _Progress(name, ev.sweep_id, quiet=json_, value=value)
            progress(ev)

        try:
            outcome = api.sweep(name, items or None, sampler=sampler, trials=trials, parallel=parallel, executor=executor,
                                address=address, pruner=pruner, seed=seed, preflight=preflight, timeout=timeout,
                                oom_ladder=oom_ladder, approve_locked=approve_locked, value=value, resume=resume,
                                max_cost=max_cost, yes=yes, ask=ask_on_tty(), say=None if json_ else print, on_event=on_event)
        finally:
            if progress is not None:
                progress.close()
        emit(outcome, json_, lambda o: _summary(name, o))
        raise typer.Exit(sweep_exit_code(outcome, strict))


def sweep_exit_code(outcome: Any, strict: bool) -> int:
    """130 interrupted; 1 when no trial ended ok (with `strict`: when any trial did not); else 0."""
    if outcome.status == "interrupted":
        return 130
    statuses = [t.status for t in outcome.trials]
    if not any(s == "ok" for s in statuses) or (strict and any(s != "ok" for s in statuses)):
        return 1
    return 0


class _Progress:
    """A Rich progress bar on a terminal (trials done, best so far, ETA); terse lines otherwise."""

    def __init__(self, name: str, sweep_id: str, quiet: bool, value: str = "last") -> None:
        from assay.cli.render import is_tty

        self.name, self.sweep_id, self.quiet, self.value = name, sweep_id, quiet, value
        self.bar: Any = None
        self.task: Any = None
        if is_tty() and not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("sweep {task.fields[sid]}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("best {task.fields[best]}"), TextColumn("eta"), TimeRemainingColumn())
            self.bar.start()

    def __call__(self, ev: Any) -> None:
        from assay.cli.render import fmt

        if self.quiet:
            return
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("sweep", total=ev.total, completed=ev.done, sid=ev.sweep_id, best="-")
            self.bar.update(self.task, total=ev.total, completed=ev.done, best=fmt(ev.best))
            if ev.kind == "trial_finished" and ev.result is not None and ev.result.status != "ok":
                self.bar.console.print(f"trial {ev.trial} {ev.result.status}: {ev.result.record.get('reason')}")
            elif ev.kind == "oom_retry":
                self.bar.console.print(_oom_line(ev))
            elif ev.kind == "max_cost":
                self.bar.console.print(f"{ev.note}; the running trials finish, no new one starts")
            return
        if ev.kind == "preflight":
            print(f"sweep {ev.sweep_id}: preflight smoke run", flush=True)
        elif ev.kind == "oom_retry":
            print(_oom_line(ev), flush=True)
        elif ev.kind == "max_cost":
            print(f"sweep {ev.sweep_id}: {ev.note}; the running trials finish, no new one starts", flush=True)
        elif ev.kind == "trial_finished" and ev.result is not None:
            from assay.config import format_duration

            params = " ".join(f"{k}={fmt(v)}" for k, v in (ev.params or {}).items())
            r = ev.result.record
            metric = r.get("primary_metric")
            value = ((r.get("metrics") or {}).get(metric) or {}).get(self.value)
            label = metric if self.value == "last" else f"best_{metric}"
            print(f"[{ev.done}/{ev.total}] t{ev.trial:03d} {r['status']:<7} {label}={fmt(value)}  {params}  "
                  f"(best {fmt(ev.best)}, eta {format_duration(ev.eta)})", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _oom_line(ev: Any) -> str:
    return f"t{ev.trial:03d} oom ({ev.result.record.get('id')}): retrying with the OOM ladder's {ev.note}"


def _summary(name: str, outcome: Any) -> None:
    from assay.cli.render import fmt

    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts().items()))
    print(f"sweep {outcome.sweep_id} {outcome.status}: {len(outcome.trials)} trials ({counts})")
    if outcome.best is not None:
        params = " ".join(f"{k}={fmt(v)}" for k, v in outcome.best.params.items())
        label = outcome.metric if outcome.value == "last" else f"best_{outcome.metric}"
        print(f"best trial: {label}={fmt(outcome.best.value)}  {params}  {outcome.best.run}")
    if outcome.cost:
        from assay.cli.render import cost_line

        print(cost_line(outcome.cost))
    if outcome.stopped:
        print(f"stopped: {outcome.stopped}")
    for warning in outcome.warnings:
        print(f"warning: {warning}")
    keys = ",".join(k.lstrip("+") for k in (outcome.trials[0].params if outcome.trials else {}))
    if outcome.status == "interrupted":
        print(f"resume: assay sweep {name} --resume {outcome.sweep_id}")
    elif outcome.status == "max_cost":
        print(f"resume: assay sweep {name} --resume {outcome.sweep_id} --max-cost <more>")
    elif keys:
        print(f"next: assay compare {name} --by {keys}" + ("" if outcome.value == "last" else f" --value {outcome.value}"))
