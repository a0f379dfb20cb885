"""results.tsv: one row per decision, appended and fsynced before the branch moves.

autoresearch's columns first (commit, metric, memory_gb, status, description), then what a
noise-aware loop adds. A torn last line (a killed writer) is ignored by readers.

Every view of the loop (`try`, `loop log`, `loop status`, the brief, the plot, the dashboard)
shows a commit's value through `commit_value` and `show`, so a commit has one number everywhere.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from assay.errors import StoreError
from assay.loop.decisions import RECORDED, Decision

SIGNIFICANT = 6  # digits of a commit's value, wherever it is shown


def commit_value(values: Sequence[float]) -> float | None:
    """The one number a commit shows everywhere: the mean of the runs that measure it (for a kept
    candidate, its re-measurement on fresh seeds), rounded once to SIGNIFICANT digits. None: no run."""
    return float(show(statistics.fmean(values))) if values else None


def label(metric: str, which: str) -> str:
    """The name a loop's number is shown under: the metric for `last` values, best_<metric> for `best`."""
    return metric if which == "last" else f"best_{metric}"


def show(value: float | None) -> str:
    """A commit's value as text ("" when it has none, e.g. a crash)."""
    return "" if value is None else f"{value:.{SIGNIFICANT}g}"


def show_delta(delta: float | None) -> str:
    return "" if delta is None else f"{delta:+.{SIGNIFICANT}g}"


def gain(value: float | None, best: float | None, goal: str) -> float | None:
    """How much better `value` is than `best` (positive is better), as the difference of the two
    numbers shown, so that Δ in every view is the difference a reader can check."""
    if value is None or best is None:
        return None
    return float(show_delta(value - best if goal == "max" else best - value))


@dataclass(frozen=True)
class Row:
    commit: str
    metric: str  # the commit's value (see commit_value); 0.000000 for a crash, as in autoresearch
    memory_gb: str
    status: Decision  # keep | discard | crash
    description: str
    delta: str = ""  # the value's gain over the best before it (positive is better)
    n: str = ""  # runs behind the value
    mean: str = ""  # the commit's value again ("" for a crash)
    std: str = ""  # spread of the runs behind the value
    reason: str = ""
    runs: str = ""  # run ids, space-separated: every run of the candidate, selection and re-measurement
    tag: str = ""
    iteration: str = ""

    @property
    def value(self) -> float | None:
        """The commit's number, as written; None for a crash (its metric column is a placeholder)."""
        if self.status == Decision.CRASH:
            return None
        for text in (self.mean, self.metric):
            try:
                v = float(text)
            except ValueError:
                continue
            if math.isfinite(v):
                return v
        return None

    def to_dict(self) -> dict[str, Any]:
        """The row's columns as written, plus `value` (a number, or None for a crash)."""
        return {**asdict(self), "status": str(self.status), "value": self.value}


COLUMNS = [f.name for f in fields(Row)]


def _clean(text: str) -> str:
    return " ".join(str(text).replace("\t", " ").split())


def append(path: Path, row: Row) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", encoding="utf-8") as fh:
        if new:
            fh.write("\t".join(COLUMNS) + "\n")
        fh.write("\t".join(_clean(v) for v in asdict(row).values()) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read(path: Path) -> list[Row]:
    """All complete rows; a malformed file is a StoreError naming the line."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StoreError(f"{path} is not UTF-8 text (byte {exc.start})",
                         f"Move it aside (mv {path} {path}.old); `assay loop resume` writes a new one.") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # torn last line
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows: list[Row] = []
    header: list[str] | None = None
    for lineno, cells in enumerate(reader, 1):
        if not cells:
            continue
        if header is None:
            header = cells
            if header[:5] != COLUMNS[:5]:
                raise StoreError(f"{path}:1 is not an assay results.tsv header: {' '.join(header[:5])}",
                                 f"Move it aside (mv {path} {path}.old); `assay loop resume` writes a new one.")
            continue
        if len(cells) > len(header):
            raise StoreError(f"{path}:{lineno} has {len(cells)} fields, the header {len(header)}",
                             f"Fix or remove line {lineno} of {path}.")
        values = dict(zip(header, cells))
        try:
            status = Decision(values.get("status", ""))
        except ValueError:
            status = None
        if status is None or status not in RECORDED:
            raise StoreError(f"{path}:{lineno} has status '{values.get('status', '')}' (known: keep, discard, crash)",
                             f"Fix or remove line {lineno} of {path}.")
        rows.append(Row(**{c: values.get(c, "") for c in COLUMNS if c != "status"}, status=status))
    return rows


def run_value(record: dict[str, Any], which: str = "last") -> float | None:
    """The value of one run for the loop: the `last` (or, for a loop started with --value best,
    `best`) value of its primary metric, when it finished ok with a finite one. Every number the
    loop shows is computed from these."""
    v = ((record.get("metrics") or {}).get(record.get("primary_metric") or "") or {}).get(which)
    if record.get("status") != "ok" or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)
