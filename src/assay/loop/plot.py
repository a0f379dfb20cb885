"""The loop's progress plot, drawn only from results.tsv (and the run records it names)."""

from __future__ import annotations

import json
from pathlib import Path

from assay.errors import ConfigError
from assay.experiment import load_experiment
from assay.journal import ignored_runs
from assay.lab import Lab
from assay.loop import results
from assay.loop.decisions import Decision
from assay.loop.state import LoopState


def progress_plot(lab: Lab, st: LoopState) -> Path:
    """Write experiments/NAME/plots/loop-TAG.png and a .json sidecar naming its source and points."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("Plots need matplotlib", "pip install 'assay[plots]'") from None
    exp = load_experiment(lab, st.experiment)
    source = exp.path / "results.tsv"
    ignored = set(ignored_runs(exp.path))
    every = [r for r in results.read(source) if r.tag == st.tag]
    every = [r for r in every if not r.runs or not all(rid.split("/", 1)[-1] in ignored for rid in r.runs.split())]
    crashes = [r for r in every if r.status == Decision.CRASH]  # no value to draw: counted in the title
    rows = [r for r in every if r.value is not None]
    if not rows:
        raise ConfigError(f"No finished tries in {source} for loop {st.tag}", "Run the baseline and some tries first.")
    xs = list(range(len(rows)))
    ys = [r.value for r in rows]
    kept = [i for i, r in enumerate(rows) if r.status == Decision.KEEP]
    best, line = None, []
    for r in rows:
        if r.status == Decision.KEEP:
            best = r.value
        line.append(best)
    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    ax.scatter([x for x in xs if x not in kept], [y for i, y in enumerate(ys) if i not in kept], c="#b0b0b0", s=18, label="discarded")
    ax.scatter([xs[i] for i in kept], [ys[i] for i in kept], c="#2ca02c", s=36, label="kept", zorder=3)
    ax.step(xs, line, where="post", c="#2ca02c", lw=1.5, label="running best")
    for i in kept:
        ax.annotate(rows[i].description[:30], (xs[i], ys[i]), textcoords="offset points", xytext=(4, 6), fontsize=7)
    better = "lower" if exp.goal == "min" else "higher"
    ax.set_xlabel("try (results.tsv row)")
    ax.set_ylabel(f"{exp.metric} ({better} is better)")
    ax.set_title(f"Loop {st.tag}: {len(rows)} tries, {len(kept)} kept" + (f", {len(crashes)} crashed" if crashes else ""))
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    out = exp.path / "plots" / f"loop-{st.tag}.png"
    out.parent.mkdir(exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    out.with_suffix(".json").write_text(json.dumps({
        "source": str(source.relative_to(lab.root)), "metric": exp.metric, "goal": exp.goal,
        "points": [{"iteration": r.iteration, "commit": r.commit, "value": r.value, "status": str(r.status),
                    "description": r.description} for r in rows],
        "crashes": [{"iteration": r.iteration, "commit": r.commit, "description": r.description} for r in crashes],
        "running_best": line}, indent=1))
    return out
