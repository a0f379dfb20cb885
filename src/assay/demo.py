"""`assay demo`: a lab from the bundled digits example, a baseline, variants, the comparison."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from assay.errors import ConfigError

if TYPE_CHECKING:
    from assay.api import Comparison
    from assay.report.verdict import Verdict

EXAMPLE = "digits"
VARIANTS: list[tuple[str, list[str]]] = [
    ("baseline", []),
    ("alpha-1e-3", ["alpha=1e-3"]),
    ("alpha-1e-2", ["alpha=1e-2"]),
    ("logloss", ["loss=log_loss"]),
    ("logloss-alpha-1e-3", ["loss=log_loss", "alpha=1e-3"]),
    ("logloss-alpha-1e-2", ["loss=log_loss", "alpha=1e-2"]),
]


def install_example(exp_dir: Path) -> None:
    """Copy the bundled example experiment into `exp_dir`."""
    src = resources.files("assay") / "examples" / EXAMPLE
    exp_dir.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name.endswith((".py", ".yaml")):
            (exp_dir / item.name).write_bytes(item.read_bytes())
    (exp_dir / "JOURNAL.md").write_text(f"# Journal: {EXAMPLE}\n\n", encoding="utf-8")
    (exp_dir / "README.md").write_text(
        f"# {EXAMPLE}\n\nBundled assay example: a linear SGD classifier on scikit-learn's 8x8 digits.\n"
        "See experiment.yaml for the hypothesis and its success/failure criteria.\n", encoding="utf-8")
    (exp_dir / "runs").mkdir(exist_ok=True)


@dataclass(frozen=True)
class Demo:
    """What the demo made: its lab, the comparison of its configurations and the verdict on them."""

    root: Path
    experiment: str
    comparison: Comparison
    verdict: Verdict


def run_demo(path: Path, say: Callable[[str], None]) -> Demo:
    """Create (or reuse) a demo lab at `path` and run the variants, telling `say` each run's summary.
    The comparison and the verdict read the same value of each run (its last) and the same
    configurations, so they name the same best configuration with the same numbers."""
    from assay import api
    from assay.experiment import load_experiment
    from assay.runner.launch import summary_line

    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("The demo needs scikit-learn", "pip install 'assay[demo]'") from None
    if shutil.which("git") is None:
        say("note: git not found; runs will not record a commit")
    lab = api.find(api.init(path).root)
    exp_dir = lab.experiment_dir(EXAMPLE)
    if not (exp_dir / "experiment.yaml").exists():
        install_example(exp_dir)
    exp = load_experiment(lab, EXAMPLE)
    say(f"lab: {lab.root}")
    say(f"hypothesis: {exp.hypothesis}")
    say(f"decides it: {exp.metric} ({exp.goal}); success if {exp.success}; failure if {exp.failure}")
    for desc, overrides in VARIANTS:
        # The two sides of the hypothesis's comparison get three seeds each: the run-to-run noise
        # every judgement is measured against.
        repeat = 3 if desc in ("baseline", "logloss") else 1
        for res in api.run(EXAMPLE, desc, overrides=overrides, timeout="2m", repeat=repeat, lab=lab):
            say(summary_line(res, lab.root))
    api.note(EXAMPLE, "[TODO] repeat the two best settings with --repeat 3 before trusting a gap this small.", lab=lab)
    return Demo(lab.root, EXAMPLE, api.compare(EXAMPLE, by=["loss", "alpha"], lab=lab), api.verdict(EXAMPLE, lab=lab))
