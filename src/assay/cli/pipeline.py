"""`assay gate` and `assay best`: steps of a pipeline (train -> gate -> evaluate the best checkpoint)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:  # kept out of `assay --help`
    from assay.lab import Lab

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output with stable keys.")]
ValueOpt = Annotated[str, typer.Option("--value", help="Per run: last (final value) or best (best step).")]


def _lab() -> Lab:
    from assay.lab import find_lab

    return find_lab()


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
    from assay.gates import check_gate

    res = check_gate(_lab(), name, criterion, run=run, best=best, value=value, confidence=confidence)
    code = 0 if res.holds else 1
    if json_:
        from assay.cli.render import emit_json

        emit_json({**res.to_dict(), "exit": code})
    else:
        print(f"gate {res.outcome}: {res.reason}")
        print(f"  run {res.run}" + (f" (+{len(res.runs) - 1} more seeds of its configuration)" if len(res.runs) > 1 else ""))
        if res.hint:
            print(f"  next: {res.hint}")
    raise typer.Exit(code)


def best(
    name: str,
    value: ValueOpt = "last",
    artifact: Annotated[Optional[str], typer.Option(help="Print this file of the best run instead, e.g. checkpoints/model.pt.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Print the folder of the best run (best single run of the best configuration), or one of its files."""
    from assay.gates import best_run, best_summary

    out = best_summary(name, best_run(_lab(), name, value=value), value, artifact)
    if json_:
        from assay.cli.render import emit_json

        emit_json(out)
        return
    print(out["artifact"] or out["path"])


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command()(gate)
    app.command()(best)
