"""results.tsv: one row per decision, appended and fsynced before the branch moves.

autoresearch's columns first (commit, metric, memory_gb, status, description), then what a
noise-aware loop adds. A torn last line (a killed writer) is ignored by readers.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from assay.errors import StoreError


@dataclass(frozen=True)
class Row:
    commit: str
    metric: str  # mean of the candidate's runs ("" for a crash)
    memory_gb: str
    status: str  # keep | discard | crash
    description: str
    delta: str = ""
    n: str = ""
    mean: str = ""
    std: str = ""
    reason: str = ""
    runs: str = ""  # run ids, space-separated
    tag: str = ""
    iteration: str = ""


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
        values = dict(zip(header, cells))
        rows.append(Row(**{c: values.get(c, "") for c in COLUMNS}))
        if len(cells) > len(header):
            raise StoreError(f"{path}:{lineno} has {len(cells)} fields, the header {len(header)}",
                             f"Fix or remove line {lineno} of {path}.")
    return rows
