"""`assay demo`: a lab from the bundled digits example, a baseline, variants, the comparison."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from assay.errors import ConfigError

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


def run_demo(path: Path, say: Callable[[str], None]) -> Path:
    """Create (or reuse) a demo lab at `path`, run the variants, print the comparison. Returns the lab root."""
    from assay.experiment import load_experiment
    from assay.journal import add_note
    from assay.lab import init_lab
    from assay.runner import RunSpec, run_experiment
    from assay.runner.launch import summary_line

    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("The demo needs scikit-learn", "pip install 'assay[demo]'") from None
    if shutil.which("git") is None:
        say("note: git not found; runs will not record a commit")
    lab, _ = init_lab(path)
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
        for res in run_experiment(lab, RunSpec(EXAMPLE, desc, overrides, timeout="2m", repeat=repeat)):
            say(summary_line(res, lab.root))
    add_note(exp.path, "[TODO] repeat the two best settings with --repeat 3 before trusting a gap this small.")
    from assay.cli.render import compare_table
    from assay.store.query import compare

    # The table and the verdict below read the same value of each run (its last) and the same
    # configurations, so they name the same best configuration with the same numbers.
    compare_table(compare(lab, EXAMPLE, ["loss", "alpha"]), EXAMPLE)
    from assay.report.verdict import verdict

    v = verdict(lab, EXAMPLE)
    say(f"\nverdict: {v.verdict.upper()}: {v.reason}")
    if v.hint:
        say(f"to decide it: {v.hint}")
    say(f"next: cd {path} && assay runs digits --sort val_f1 && assay verdict digits && assay ui")
    return lab.root
