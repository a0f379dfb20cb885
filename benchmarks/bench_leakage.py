"""Leakage found by `assay check`: precision and recall per kind on the labelled corpus, and speed.

The corpus (tests/fixtures/leakage/) holds leaky scripts and notebooks and clean look-alikes
(pipelines, split-first code, cross-validation, one final test score), each labelled on its first
line. Speed: files per second for the whole `assay check` (parse, every check) and for the
leakage analysis alone on parsed trees, median of --reps passes over the corpus.

    python benchmarks/bench_leakage.py [--reps 5]

Anchor: Yang et al., "Data Leakage in Notebooks: Static Detection and Better Processes" (ASE 2022)
detect the same three kinds with a datalog engine over notebooks; it is not run here (not a pip
package), so the table has no peer column.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(Path(__file__).resolve().parent)]

from _common import machine, median, table  # noqa: E402

from assay.checks.leakage import leakage_findings  # noqa: E402
from assay.checks.repro import check_file, collect  # noqa: E402
from tests.leakage_corpus import cases, expected, found, score  # noqa: E402


def passes(fn, reps: int) -> float:
    """Median seconds of fn() over reps calls, after one warm-up."""
    fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    files = cases()
    results = {p: (expected(p), found(p)) for p in files}
    n_nb = sum(p.suffix == ".ipynb" for p in files)
    clean = sum(not e for e, _ in results.values())
    rows = [[s.kind, str(s.labelled), str(s.tp), str(s.fp), str(s.fn), f"{s.precision:.2f}", f"{s.recall:.2f}"]
            for s in score(results)]
    misses = [f"{p.name}: expected {sorted(e) or 'clean'}, found {sorted(f) or 'nothing'}"
              for p, (e, f) in results.items() if e != f]
    table(f"Leakage corpus: {len(files)} cases ({n_nb} notebooks, {clean} clean look-alikes), target >= 0.9",
          ["kind", "labelled", "TP", "FP", "FN", "precision", "recall"], rows, misses or ["every case as labelled"])

    trees = [(m.tree, m.aliases, m.path.name) for p in files for m in collect(p)]
    lines = sum(len(p.read_text().splitlines()) for p in files)
    whole = passes(lambda: [check_file(p) for p in files], args.reps)
    alone = passes(lambda: [leakage_findings(t, a, n) for t, a, n in trees], args.reps)
    table(f"Speed over the corpus ({len(files)} files, {lines:,} lines; median of {args.reps})",
          ["what", "per pass", "files/s", "lines/s"],
          [["`assay check` (parse + every check)", f"{whole * 1000:.1f} ms", f"{len(files) / whole:,.0f}",
            f"{lines / whole:,.0f}"],
           ["leakage analysis alone (parsed trees)", f"{alone * 1000:.1f} ms", f"{len(files) / alone:,.0f}",
            f"{lines / alone:,.0f}"]],
          [machine()])


if __name__ == "__main__":
    main()
