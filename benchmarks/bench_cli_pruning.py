"""CLI command pruning: `assay run` and `assay --help` with the app narrowed to the named command
(what `assay` does) and with the whole Typer app built for every command line (plain Typer).

cli/main.py hands Typer only the command the command line names (`_only_the_named_command`), so
Typer turns one signature into click objects instead of ~40. This measures what that saves. Both
variants run the same entry point, `assay.cli.main.main`, in a fresh process; "off" replaces the
narrowing with the whole app (in the benchmark's process only). On and off alternate, so a drift
of the machine hits both alike. Overhead = median minus a bare `python train.py`.

    python benchmarks/bench_cli_pruning.py [--reps 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, machine, ms, table, version, wall  # noqa: E402
from bench_run_overhead import make_lab  # noqa: E402

DRIVER = """\
import sys
import assay.cli.main as cli
if {prune!r} == "off":
    cli._only_the_named_command = lambda argv: cli.app  # plain Typer: the whole app, every time
sys.argv = ["assay", *{args!r}]
cli.main()
"""


def driver(prune: str, args: list[str]) -> list[str]:
    return [PY, "-c", DRIVER.format(prune=prune, args=args)]


def alternate(cases: dict[str, list[str]], cwd: Path, reps: int) -> dict[str, float]:
    """Median wall seconds of each case, the cases run in turn `reps` times after one warm-up each."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for argv in cases.values():
        wall(argv, cwd=cwd)
    for _ in range(reps):
        for key, argv in cases.items():
            times[key].append(wall(argv, cwd=cwd))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as users run
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        root = Path(tmp, "lab")
        exp = make_lab(root)
        bare = alternate({"bare": [PY, "-u", "train.py"]}, exp, args.reps)["bare"]
        t = alternate({"run on": driver("on", ["run", "bench", "overhead"]),
                       "run off": driver("off", ["run", "bench", "overhead"]),
                       "help on": driver("on", ["--help"]), "help off": driver("off", ["--help"]),
                       "sub-help on": driver("on", ["run", "--help"]),
                       "sub-help off": driver("off", ["run", "--help"])}, root, args.reps)
    rows = [["python train.py", ms(bare), "-", "-"],
            ["assay run", ms(t["run on"]), ms(t["run off"]), ms(t["run off"] - t["run on"])],
            ["assay run overhead (minus bare)", ms(t["run on"] - bare), ms(t["run off"] - bare),
             ms(t["run off"] - t["run on"])],
            ["assay --help", ms(t["help on"]), ms(t["help off"]), ms(t["help off"] - t["help on"])],
            ["assay run --help", ms(t["sub-help on"]), ms(t["sub-help off"]), ms(t["sub-help off"] - t["sub-help on"])]]
    table("Typer command pruning (median wall time; lower is better)",
          ["command", "pruning on (assay)", "pruning off (plain Typer)", "saved by pruning"], rows,
          [machine(), f"typer {version('typer')}, click {version('click')}; median of {args.reps} fresh processes "
           "after one warm-up, on and off alternating; PYTHONDONTWRITEBYTECODE unset",
           "`assay --help` names no command, so both variants build the whole app: its row shows the noise"])


if __name__ == "__main__":
    main()
