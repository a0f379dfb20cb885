"""`assay gate` and `assay best`: steps of a pipeline (train -> gate -> evaluate the best checkpoint)."""


from typing import Annotated, Any, Optional

import typer

from assay.cli.common import JsonOpt, ValueOpt, emit


def gate(
    name: str,
    criterion: Annotated[str, typer.Argument(help='What must hold, e.g. "val_f1 >= 0.75" (join several with "and").')],
    run: Annotated[Optional[str], typer.Option(help="Run to gate (default: the newest finished run).")] = None,
    best: Annotated[bool, typer.Option("--best", help="Gate the best run (see `assay best`).")] = False,
    value: ValueOpt = "last",
    confidence: Annotated[float, typer.Option(help="Confidence of the interval over repeated seeds.")] = 0.95,
    json_: JsonOpt = False,
) -> None:
    """Gate a pipeline step on a run's metric: exit 0 holds, 1 fails, 2 nothing to judge (no run, no metric).

    With repeated seeds the interval of their mean is judged; one that straddles the threshold exits 1."""
    from assay import api

    res = api.check_gate(name, criterion, run=run, best=best, value=value, confidence=confidence)
    code = 0 if res.holds else 1
    emit(res, json_, _print_gate, exit=code)
    raise typer.Exit(code)


def _print_gate(res: Any) -> None:
    print(f"gate {res.outcome}: {res.reason}")
    print(f"  run {res.run}" + (f" (+{len(res.runs) - 1} more seeds of its configuration)" if len(res.runs) > 1 else ""))
    if res.hint:
        print(f"  next: {res.hint}")


def best(
    name: str,
    value: ValueOpt = "last",
    artifact: Annotated[Optional[str], typer.Option(help="Print this file of the best run instead, e.g. checkpoints/model.pt.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Print the folder of the best run (best single run of the best configuration), or one of its files."""
    from assay import api

    emit(api.best(name, value=value, artifact=artifact), json_, lambda b: print(b.artifact or b.path))


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command()(gate)
    app.command()(best)
