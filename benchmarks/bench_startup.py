"""Import time and CLI start-up: assay vs mlflow and trackio, each a fresh process, median of --reps.

`import X` is timed inside the fresh process (perf_counter around the import, as `python -X
importtime` would total it); `X --help` is the wall time of the installed console script.
Targets (issue #2): `import assay` <= 50 ms, `assay --help` <= 150 ms.

    python benchmarks/bench_startup.py [--reps 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BIN, PY, fresh_json, have, machine, ms, ratio, table, wall  # noqa: E402

IMPORT = "import time, json; t = time.perf_counter(); import {mod}; print(json.dumps({{'s': time.perf_counter() - t}}))"


def import_time(mod: str, reps: int) -> float:
    return statistics.median(fresh_json([PY, "-c", IMPORT.format(mod=mod)])["s"] for _ in range(reps))


def help_time(cmd: str, reps: int, env: dict[str, str] | None = None) -> float:
    wall([str(BIN / cmd), "--help"], env=env)  # warm the OS page cache once
    return statistics.median(wall([str(BIN / cmd), "--help"], env=env) for _ in range(reps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    base = statistics.median(wall([PY, "-c", "pass"]) for _ in range(args.reps))
    ours_import, ours_help = import_time("assay", args.reps), help_time("assay", args.reps)
    rows = [["import", "assay", ms(ours_import), "50 ms", "1.0x"]]
    for peer in ("mlflow", "trackio"):
        if have(peer):
            t = import_time(peer, args.reps)
            rows.append(["import", peer, ms(t), "", ratio(t, ours_import)])
    rows.append(["--help (wall)", "assay", ms(ours_help), "150 ms", "1.0x"])
    plain = help_time("assay", args.reps, {"TYPER_USE_RICH": "0"})
    rows.append(["--help (wall)", "assay, TYPER_USE_RICH=0", ms(plain), "150 ms", ratio(ours_help, plain)])
    for peer in ("mlflow", "trackio"):
        if have(peer) and (BIN / peer).exists():
            t = help_time(peer, args.reps)
            rows.append(["--help (wall)", peer, ms(t), "", ratio(t, ours_help)])
    table("Import and CLI start-up (lower is better)", ["what", "tool", "median", "target", "assay faster by"], rows,
          [machine(), f"median of {args.reps} fresh processes; a bare `python -c pass` takes {ms(base)} here "
           "(included in the --help wall times)",
           "TYPER_USE_RICH=0: Typer's plain help formatter instead of its Rich one (rich.markdown, markdown_it "
           "and the rendering cost ~100 ms); its ratio column compares it with the default assay --help"])


if __name__ == "__main__":
    main()
