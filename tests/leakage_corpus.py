"""The labelled leakage corpus (tests/fixtures/leakage/): read the labels, score `assay check` on it.

Each case names what it should be flagged for on its first line (a notebook: the first line of its
first cell): `# expect: preprocessing-leakage` (several kinds comma-separated) or `# expect: clean`.
Shared by tests/unit/test_leakage.py and benchmarks/bench_leakage.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "fixtures" / "leakage"


def cases(folder: Path = CORPUS) -> list[Path]:
    return sorted([*folder.glob("*.py"), *folder.glob("*.ipynb")])


def expected(path: Path) -> set[str]:
    """The kinds a case is labelled with (empty: clean)."""
    if path.suffix == ".ipynb":
        first = "".join(json.loads(path.read_text())["cells"][0]["source"]).splitlines()[0]
    else:
        first = path.read_text().splitlines()[0]
    head, sep, kinds = first.partition(":")
    if not sep or head.strip() != "# expect":
        raise ValueError(f"{path.name}: the first line must be '# expect: KIND[, KIND]' or '# expect: clean'")
    return {k.strip() for k in kinds.split(",")} - {"clean"}


def found(path: Path) -> set[str]:
    """The leakage kinds `assay check` reports for a case."""
    from assay.checks.leakage import KINDS
    from assay.checks.repro import check_file

    return {f.code for f in check_file(path).findings if f.code in KINDS}


@dataclass(frozen=True)
class Score:
    kind: str
    labelled: int
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(results: dict[Path, tuple[set[str], set[str]]]) -> list[Score]:
    """Per kind, over cases: results maps a case to (expected kinds, found kinds)."""
    from assay.checks.leakage import KINDS

    out = []
    for kind in KINDS:
        tp = sum(kind in e and kind in f for e, f in results.values())
        fp = sum(kind not in e and kind in f for e, f in results.values())
        fn = sum(kind in e and kind not in f for e, f in results.values())
        out.append(Score(kind, sum(kind in e for e, _ in results.values()), tp, fp, fn))
    return out
