"""Figures drawn only from logged data, each with a JSON sidecar naming its source files and series.

`<figure>.png` (or .webp) sits next to `<figure>.json`: the files it was drawn from (paths relative
to the experiment folder), the exact series plotted, the runs left out and why. A reader (or a
test) can check every point against metrics.jsonl. matplotlib is imported here only, with Agg.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assay.errors import ConfigError
from assay.experiment import Experiment, load_experiment
from assay.lab import Lab
from assay.report.evidence import RunView, check_value, group_configs, load_runs, rel, spread
from assay.store import records

FORMATS = ("png", "webp")


@dataclass(frozen=True)
class Figure:
    """One written figure: the image, its sidecar, what it shows."""

    path: Path
    sidecar: Path
    kind: str
    title: str

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "sidecar": str(self.sidecar), "kind": self.kind, "title": self.title}


def check_format(fmt: str) -> str:
    """'png', or 'webp' when Pillow can write it."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown figure format '{fmt}' (known: png, webp)", "Pass --format png or --format webp.")
    if fmt == "webp":
        try:
            from PIL import features
        except ImportError:
            raise ConfigError("WebP figures need Pillow, which is not installed", "pip install pillow, or use --format png.") from None
        if not features.check("webp"):
            raise ConfigError("This Pillow was built without WebP support", "Use --format png, or install a Pillow with libwebp.")
    return fmt


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _axis_label(exp: Experiment, metric: str) -> str:
    units = exp.units(metric)
    arrow = "higher is better \u2191" if exp.goal_of(metric) == "max" else "lower is better \u2193"
    return f"{metric}" + (f" [{units}]" if units else "") + f"  ({arrow})"


def _new_figure(width: float = 7.0, height: float = 4.2):  # noqa: ANN202 - matplotlib types stay lazy
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("Plots and reports draw with matplotlib, which is not installed",
                          "pip install 'assay[plots]'") from None
    matplotlib.use("Agg")
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig: Any, folder: Path, stem: str, fmt: str, meta: dict[str, Any], exp: Experiment) -> Figure:
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"{stem}.{fmt}"
    sidecar = folder / f"{stem}.json"
    fig.savefig(image, format=fmt)
    meta = {"figure": rel(image, exp.path), "generated": datetime.now().isoformat(timespec="seconds"), **meta}
    from assay.config import write_atomic

    write_atomic(sidecar, json.dumps(meta, indent=1) + "\n")
    return Figure(image, sidecar, meta["kind"], meta["title"])


def _curve(run: RunView, metric: str, exp: Experiment, label: str) -> dict[str, Any] | None:
    series = records.metric_series(run.path, {metric}).get(metric)
    if not series:
        return None
    return {"label": label, "run": run.id, "status": run.status, "metric": metric,
            "source": rel(run.path / records.METRICS_FILE, exp.path),
            "steps": [s for s, _, _ in series], "values": [_finite(v) for _, v, _ in series]}


def plot_run(lab: Lab, ref: str, metrics: list[str] | None = None, fmt: str = "png") -> list[Figure]:
    """Curves per step of a run's metrics (default: all it logged), one figure each, in the run's plots/.

    Raises:
        RunError: unknown run. ConfigError: a requested metric the run never logged, bad format.
    """
    from assay.errors import did_you_mean
    from assay.store.query import find_run

    fmt = check_format(fmt)
    path = find_run(lab, ref)
    run = RunView(path, records.read_record(path))
    exp = load_experiment(lab, str(run.record.get("experiment") or path.parent.parent.name))
    logged = records.metric_series(path)
    wanted = metrics or sorted(logged)
    if not wanted:
        raise ConfigError(f"Run {run.id} logged no metrics ({rel(path / records.METRICS_FILE, exp.path)} is empty)",
                          "Only logged data is plotted: log with assay.log() or print `metric: value` lines.")
    figures = []
    for m in wanted:
        if m not in logged:
            raise ConfigError(f"Run {run.id} never logged '{m}' (logged: {', '.join(sorted(logged)) or 'nothing'})."
                              + did_you_mean(m, logged), "Pass --metric with logged names, e.g. --metric " + ",".join(sorted(logged)[:2]))
        c = _curve(run, m, exp, run.id)
        assert c is not None
        fig, ax = _new_figure()
        xs = [s for s, v in zip(c["steps"], c["values"]) if v is not None]
        ys = [v for v in c["values"] if v is not None]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=f"{m} ({run.status})")
        ax.set_xlabel("step")
        ax.set_ylabel(_axis_label(exp, m))
        title = f"{m} per step: {run.id}"
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        figures.append(_save(fig, path / "plots", f"curve_{records.slug(m)}", fmt,
                             {"kind": "curve", "title": title, "x": "step", "y": m, "better": exp.goal_of(m),
                              "sources": [c["source"]], "series": [c], "excluded": []}, exp))
    return figures


def plot_experiment(lab: Lab, name: str, metric: str | None = None, fmt: str = "png", value: str = "last") -> list[Figure]:
    """Comparison figures in the experiment's plots/: overlaid curves, bars per configuration (mean,
    95% CI of the mean over seeds, each run as a dot) and, for each swept param, metric vs param.

    Ignored runs are left out (and listed in each sidecar); bars and sweeps use runs finished ok.
    """
    fmt = check_format(fmt)
    check_value(value)
    exp = load_experiment(lab, name)
    metric = metric or exp.metric
    runs = load_runs(exp)
    excluded = [{"run": r.id, "why": f"ignored: {r.ignored}"} for r in runs if r.ignored is not None]
    shown = [r for r in runs if r.ignored is None and r.status != "running"]
    if not any(metric in (r.record.get("metrics") or {}) for r in shown):
        raise ConfigError(f"No run of '{name}' logged '{metric}'" + (f" ({len(excluded)} ignored)" if excluded else ""),
                          f"Run it first (assay run {name} DESC), or pick a logged metric with --metric.")
    folder = exp.path / "plots"
    ok = [r for r in shown if r.status == "ok"]
    configs, varying = group_configs(ok)
    figures = [_compare_curves(exp, shown, configs, varying, metric, excluded, folder, fmt)]
    figures.append(_bars(exp, configs, varying, metric, value, excluded + _not_ok(shown), folder, fmt))
    for param in (k for k in varying if k not in ("entry", "code")):  # param-vs-metric scatters: real params only
        figures.append(_sweep(exp, ok, param, metric, value, excluded + _not_ok(shown), folder, fmt))
    return figures


def _not_ok(runs: list[RunView]) -> list[dict[str, str]]:
    return [{"run": r.id, "why": f"status {r.status}: {r.record.get('reason') or ''}".rstrip(": ")} for r in runs if r.status != "ok"]


def _compare_curves(exp: Experiment, shown: list[RunView], configs: list[Any], varying: list[str], metric: str,
                    excluded: list[dict[str, str]], folder: Path, fmt: str) -> Figure:
    fig, ax = _new_figure()
    colors = [f"C{i % 10}" for i in range(len(configs))]
    color_of = {r.id: (colors[i], cfg.label(varying)) for i, cfg in enumerate(configs) for r in cfg.runs}
    series, labelled = [], set()
    for r in shown:
        color, label = color_of.get(r.id, ("0.5", f"not ok ({r.status})"))
        c = _curve(r, metric, exp, label)
        if c is None:
            continue
        series.append(c)
        xs = [s for s, v in zip(c["steps"], c["values"]) if v is not None]
        ys = [v for v in c["values"] if v is not None]
        ax.plot(xs, ys, color=color, ls="-" if r.status == "ok" else "--", alpha=0.8, lw=1.3,
                label=None if label in labelled else label)
        labelled.add(label)
    ax.set_xlabel("step")
    ax.set_ylabel(_axis_label(exp, metric))
    title = f"{exp.name}: {metric} per step, {len(series)} runs"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if labelled:
        ax.legend(fontsize=7, title="configuration (lines: seeds)", title_fontsize=7)
    return _save(fig, folder, f"compare_curves_{records.slug(metric)}", fmt,
                 {"kind": "compare_curves", "title": title, "x": "step", "y": metric, "better": exp.goal_of(metric),
                  "sources": [c["source"] for c in series], "series": series, "excluded": excluded}, exp)


def _bars(exp: Experiment, configs: list[Any], varying: list[str], metric: str, value: str,
          excluded: list[dict[str, str]], folder: Path, fmt: str) -> Figure:
    fig, ax = _new_figure(max(5.0, 1.1 * len(configs) + 2))
    bars = []
    for cfg in configs:
        vals = {r.id: v for r in cfg.runs if (v := r.value(metric, value)) is not None and math.isfinite(v)}
        if not vals:
            continue
        s = spread(list(vals.values()), 0.95)
        bars.append({"label": cfg.label(varying), "params": cfg.params, "values": vals, "n": s.n, "mean": s.mean,
                     "std": s.std, "ci95": [s.lo, s.hi] if s.lo is not None else None,
                     "sources": [rel(r.path / "run.json", exp.path) for r in cfg.runs if r.id in vals]})
    xs = list(range(len(bars)))
    ax.bar(xs, [b["mean"] for b in bars], color=[f"C{i % 10}" for i in xs], alpha=0.55)
    for x, b in zip(xs, bars):
        if b["ci95"]:
            ax.errorbar([x], [b["mean"]], yerr=[[b["mean"] - b["ci95"][0]], [b["ci95"][1] - b["mean"]]], color="k", capsize=5)
        ax.scatter([x] * b["n"], list(b["values"].values()), color="k", s=12, zorder=3)
        std = f" \u00b1 {b['std']:.3g}" if b["std"] is not None else ""
        top = max([b["mean"], *b["values"].values(), *(b["ci95"] or [])])  # above the whisker, not on it
        ax.annotate(f"{b['mean']:.4g}{std}\nn={b['n']}", (x, top), ha="center", va="bottom", fontsize=7,
                    xytext=(0, 4), textcoords="offset points")
    ax.set_xticks(xs, [b["label"] for b in bars], rotation=20 if len(bars) > 3 else 0, ha="right" if len(bars) > 3 else "center", fontsize=8)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.15 * (hi - lo))  # room for the labels above the tallest bar
    ax.set_ylabel(_axis_label(exp, metric) + f" ({value} value)")
    title = f"{exp.name}: {metric} per configuration (bar: mean, whisker: 95% CI over seeds, dot: run)"
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    sources = [s for b in bars for s in b["sources"]]
    return _save(fig, folder, f"compare_bars_{records.slug(metric)}", fmt,
                 {"kind": "bars", "title": title, "x": "configuration", "y": metric, "value": value,
                  "better": exp.goal_of(metric), "sources": sources, "bars": bars, "excluded": excluded}, exp)


def _sweep(exp: Experiment, ok: list[RunView], param: str, metric: str, value: str,
           excluded: list[dict[str, str]], folder: Path, fmt: str) -> Figure:
    points = []
    for r in ok:
        v = r.value(metric, value)
        if v is None or not math.isfinite(v):
            continue
        points.append({"run": r.id, "x": (r.record.get("params") or {}).get(param), "y": v,
                       "source": rel(r.path / "run.json", exp.path)})
    fig, ax = _new_figure()
    numeric = all(isinstance(p["x"], (int, float)) and not isinstance(p["x"], bool) for p in points)
    if numeric:
        xs = [float(p["x"]) for p in points]
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 100:
            ax.set_xscale("log")
    else:
        cats = sorted({json.dumps(p["x"], default=str) for p in points})
        xs = [float(cats.index(json.dumps(p["x"], default=str))) for p in points]
        ax.set_xticks(range(len(cats)), [json.loads(c) if c.startswith('"') else c for c in cats], fontsize=8)
    ax.scatter(xs, [p["y"] for p in points], s=18)
    ax.set_xlabel(param)
    ax.set_ylabel(_axis_label(exp, metric) + f" ({value} value)")
    title = f"{exp.name}: {metric} vs {param} ({len(points)} runs)"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, folder, f"sweep_{records.slug(param)}_{records.slug(metric)}", fmt,
                 {"kind": "sweep", "title": title, "x": param, "y": metric, "value": value, "better": exp.goal_of(metric),
                  "sources": [p["source"] for p in points], "points": points, "excluded": excluded}, exp)
