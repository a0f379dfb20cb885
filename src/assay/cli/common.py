"""What every command module shares: the `--json` / `--value` options and `emit`, the one place a
command's result becomes output (its `to_dict()` as JSON, or the command's text for people)."""


from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output with stable keys.")]
ValueOpt = Annotated[str, typer.Option("--value", help="Per run: last (final value) or best (best step).")]

R = TypeVar("R")


def emit(result: R, json_: bool, human: Callable[[R], None], **extra: Any) -> None:
    """Print `result`: under --json its `to_dict()` (plus `extra` keys, e.g. the exit code), else `human(result)`."""
    if json_:
        from assay.cli.render import emit_json

        data: Any = result.to_dict() if hasattr(result, "to_dict") else result  # a dict, or a list (figures)
        emit_json({**data, **extra} if extra else data)
        return
    human(result)
