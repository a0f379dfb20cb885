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

KEPT, DISCARDED, CRASHED = "#2ca02c", "#a0a0a0", "#d62728"


def _short(text: str, width: int = 36) -> str:
    """A description that fits a label; the middle goes, since the changed value usually ends it."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width // 2 - 1] + "\u2026" + text[-(width // 2):]


def progress_plot(lab: Lab, st: LoopState) -> Path:
    """Write experiments/NAME/plots/loop-TAG.png and a .json sidecar naming its source and points.

    Every try of the loop is drawn at its place in results.tsv: kept and discarded ones at their
    value, crashes (no value) as crosses along the bottom; the legend counts each kind.
    """
    from matplotlib.transforms import blended_transform_factory

    from assay.report.plots import new_figure

    exp = load_experiment(lab, st.experiment)
    source = exp.path / "results.tsv"
    ignored = set(ignored_runs(exp.path))
    every = [r for r in results.read(source) if r.tag == st.tag]
    every = [r for r in every if not r.runs or not all(rid.split("/", 1)[-1] in ignored for rid in r.runs.split())]
    if not any(r.value is not None for r in every):
        raise ConfigError(f"No finished tries in {source} for loop {st.tag}", "Run the baseline and some tries first.")
    kept = [i for i, r in enumerate(every) if r.status == Decision.KEEP and r.value is not None]
    crashed = [i for i, r in enumerate(every) if r.value is None]
    discarded = [i for i, r in enumerate(every) if r.value is not None and i not in kept]
    best, line = None, []
    for r in every:
        if r.status == Decision.KEEP and r.value is not None:
            best = r.value
        line.append(best)
    fig, ax = new_figure(10, 4.8)
    ys = [r.value if r.value is not None else float("nan") for r in every]  # only tries with a value are drawn
    ax.scatter(discarded, [ys[i] for i in discarded], c=DISCARDED, s=18, label=f"discarded ({len(discarded)})", zorder=2)
    ax.scatter(kept, [ys[i] for i in kept], c=KEPT, s=36, label=f"kept ({len(kept)})", zorder=3)
    ax.step(range(len(every)), [b if b is not None else float("nan") for b in line], where="post", c=KEPT, lw=1.5,
            label="running best")
    if crashed:  # no value: a cross on the bottom edge, at its place in the sequence
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(crashed, [0.03] * len(crashed), marker="x", c=CRASHED, s=30, transform=bottom,
                   label=f"crashed ({len(crashed)})", zorder=3, clip_on=False)
    for n, i in enumerate(kept):
        ax.annotate(_short(every[i].description), (i, ys[i]), textcoords="offset points", fontsize=7,
                    xytext=(4, 7 if n % 2 == 0 else -11), color="#1b5e20")
    better = "lower" if exp.goal == "min" else "higher"
    ax.set_xlabel("try (row of results.tsv)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{exp.metric} ({better} is better)")
    ax.set_title(f"Loop {st.tag}: {len(every)} tries: {len(kept)} kept, {len(discarded)} discarded, {len(crashed)} crashed",
                 fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)
    ax.grid(alpha=0.3)
    out = exp.path / "plots" / f"loop-{st.tag}.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out)
    out.with_suffix(".json").write_text(json.dumps({
        "source": str(source.relative_to(lab.root)), "metric": exp.metric, "goal": exp.goal,
        "counts": {"tries": len(every), "kept": len(kept), "discarded": len(discarded), "crashed": len(crashed)},
        "points": [{"try": i, "iteration": r.iteration, "commit": r.commit, "value": r.value, "status": str(r.status),
                    "description": r.description} for i, r in enumerate(every) if r.value is not None],
        "crashes": [{"try": i, "iteration": every[i].iteration, "commit": every[i].commit,
                     "description": every[i].description} for i in crashed],
        "running_best": [b for b in line if b is not None]}, indent=1))
    return out
