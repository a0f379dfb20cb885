"""`assay sweep NAME sweep.yaml` or `assay sweep NAME lr=1e-4,3e-4 batch=32,64`: many runs of one experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

# sweep.yaml keys besides `params:` (command-line options win over them).
_FILE_KEYS = {"params", "fixed", "sampler", "trials", "parallel", "executor", "address", "seed", "preflight", "pruner",
              "timeout", "sampler_options", "executor_options", "max_cost"}


def _load_file(path: Path) -> dict[str, Any]:
    from assay.config import load_yaml
    from assay.errors import ConfigError, did_you_mean

    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise ConfigError(f"{path} must be a mapping with a `params:` section",
                          "Write e.g.\n  params:\n    lr: [1e-4, 3e-4]\n    batch: [32, 64]\n  sampler: grid")
    for key in data:
        if key not in _FILE_KEYS:
            raise ConfigError(f"Unknown key '{key}' in {path} (known: {', '.join(sorted(_FILE_KEYS))})." + did_you_mean(key, _FILE_KEYS),
                              f"Fix or remove '{key}'.")
    return data


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
        json_: Annotated[bool, typer.Option("--json", help="Machine-readable summary with stable keys.")] = False,
    ) -> None:
        """Run many trials of an experiment over a search space; each trial is a run tagged sweep=<id>."""
        from assay.lab import find_lab
        from assay.sweep.driver import SweepConfig, resume_config, run_sweep, start_sweep
        from assay.sweep.space import space_from_args, space_from_mapping

        lab = find_lab()
        items = list(spec or [])
        if resume:
            if items:
                from assay.errors import ConfigError

                raise ConfigError("--resume takes no search space: the stored one is used", f"assay sweep {name} --resume {resume}")
            sf, cfg = resume_config(lab, name, None if resume == "last" else resume)
            from dataclasses import replace

            cfg = replace(cfg, trials=trials or cfg.trials, parallel=parallel or cfg.parallel, max_cost=max_cost or cfg.max_cost)
            if max_cost:
                sf.settings["max_cost"] = max_cost
        else:
            file_data: dict[str, Any] = {}
            if items and items[0].endswith((".yaml", ".yml")) and "=" not in items[0]:
                path = Path(items.pop(0))
                file_data = _load_file(path)
                space = space_from_mapping(file_data["params"], file_data.get("fixed"), path, path.read_text(encoding="utf-8"))
                if items:
                    extra = space_from_args(items)
                    space = type(space)({**space.dims, **extra.dims}, {**space.fixed, **extra.fixed}, {**space.sources, **extra.sources})
            else:
                space = space_from_args(items)
            chosen_sampler = sampler or file_data.get("sampler") or "grid"
            sampler_options = dict(file_data.get("sampler_options") or {})
            chosen_pruner = pruner or file_data.get("pruner")
            if chosen_pruner:
                sampler_options["pruner"] = chosen_pruner
            ex = executor or file_data.get("executor") or "local"
            ex_options = dict(file_data.get("executor_options") or {})
            addr = address or file_data.get("address")
            if addr:
                ex_options["address"] = addr
            cfg = SweepConfig(name, space, chosen_sampler, trials or file_data.get("trials"), parallel or file_data.get("parallel"),
                              ex, ex_options, sampler_options,
                              seed if seed is not None else int(file_data.get("seed", 0)),
                              preflight if preflight is not None else bool(file_data.get("preflight", False)),
                              timeout or file_data.get("timeout"),
                              oom_ladder if oom_ladder is not None else file_data.get("oom_ladder"),
                              tuple(approve_locked or file_data.get("approve_locked") or ()), value,
                              max_cost or file_data.get("max_cost"))
        from assay.cli.render import ask_on_tty
        from assay.sweep.driver import approve_sweep

        approved = approve_sweep(lab, cfg, yes=yes, ask=ask_on_tty(), sf=sf if resume else None)
        if approved and not json_:
            print(approved)
        if not resume:
            sf = start_sweep(lab, cfg)
        progress = _Progress(name, sf.id, quiet=json_, value=cfg.value)
        try:
            outcome = run_sweep(lab, sf, cfg, progress)
        finally:
            progress.close()
        _summary(lab, name, outcome, json_)
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


def _summary(lab: Any, name: str, outcome: Any, json_: bool) -> None:
    from assay.cli.render import emit_json, fmt

    if json_:
        emit_json(outcome.to_dict())
        return
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


def run_validated(lab: Any, spec: Any, smoke: bool, oom_ladder: bool | None, approve_locked: list[str],
                  quiet: bool = False) -> list[Any]:
    """`assay run` with --smoke, --timeout auto and/or the OOM ladder; prints what each step did
    (unless quiet) and returns the runs to summarize."""
    from dataclasses import replace

    from assay.experiment import load_experiment
    from assay.runner.launch import run_experiment
    from assay.runner.validate import run_with_auto_timeout, run_with_oom_ladder, smoke_run

    say = (lambda line: None) if quiet else print
    exp = load_experiment(lab, spec.experiment)
    if smoke:
        if spec.timeout == "auto":
            from assay.errors import ConfigError

            raise ConfigError("--smoke and --timeout auto do not combine", "A smoke run has its own limit (smoke.limit, default 60s).")
        res = smoke_run(lab, exp, spec.desc, spec.overrides, spec.extra_params, dict(spec.tags, smoke="true"), spec.entry)
        m = res.record.get("smoke") or {}
        if m.get("steps_per_second"):
            say(f"smoke: {m['steps']} {m.get('steps_key') or 'steps'} in {m['seconds']:.1f}s, {m['steps_per_second']:.3g} steps/s")
        return [res]
    use_ladder = oom_ladder if oom_ladder is not None else exp.has_oom_ladder

    def launch(lab_: Any, spec_: Any) -> list[Any]:
        if not use_ladder:
            return run_experiment(lab_, spec_)
        approved = set(approve_locked)
        out = run_with_oom_ladder(lab_, spec_, approve=lambda key, old, new: key in approved,
                                  on_step=lambda st: say(f"oom ladder rung {st.rung} ({st.remedy}): "
                                                         + (f"skipped, {st.skipped}" if st.skipped else f"{st.status}  {st.run}")))
        return out.results

    if spec.timeout == "auto":
        sized = run_with_auto_timeout(lab, replace(spec, timeout=None), launch)
        from assay.config import format_duration

        say(f"smoke {sized.smoke.record['id']}: timeout {format_duration(sized.timeout)} ({sized.why})")
        return sized.results
    return launch(lab, spec)
