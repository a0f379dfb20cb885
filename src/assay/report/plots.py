"""Figures drawn only from logged data, each with a JSON sidecar naming its source files and series.

`<figure>.png` (or .svg, .pdf, .webp) sits next to `<figure>.json`: the files it was drawn from
(paths relative to the experiment folder), the exact series plotted, the runs left out and why. A
reader (or a test) can check every point against metrics.jsonl. matplotlib is imported here only,
with Agg.

Every comparison figure of an experiment shares one order of its configurations (sorted by the
params that vary) and one colour per configuration, so a configuration looks the same in each.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import ConfigError
from assay.experiment import Criterion, Experiment, load_experiment
from assay.lab import Lab
from assay.report.evidence import Config, RunView, check_value, group_configs, load_runs, rel, spread
from assay.store import records

if TYPE_CHECKING:  # matplotlib itself loads only when a plot is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

FORMATS = ("png", "svg", "pdf", "webp")
GREY = "#8c8c8c"


@dataclass(frozen=True)
class Figure:
    """One written figure: the image, its sidecar, what it shows."""

    path: Path
    sidecar: Path
    kind: str
    title: str

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "sidecar": str(self.sidecar), "kind": self.kind, "title": self.title}


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    """The figure format, lower case: one of `allowed` (webp only when Pillow can write it)."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in allowed:
        raise ConfigError(f"Unknown figure format '{fmt}' (known: {', '.join(allowed)})",
                          f"Pass --format {allowed[0]} or another of: {', '.join(allowed[1:])}.")
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


def require_matplotlib() -> None:
    """Import matplotlib (Agg, no display) before any drawing, or say which extra installs it."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("Plots and reports draw with matplotlib, which is not installed",
                          "pip install 'assay[plots]'") from None
    matplotlib.use("Agg")


def new_figure(width: float = 7.0, height: float = 4.2) -> tuple[MplFigure, Axes]:
    """A matplotlib Figure (Agg, no pyplot state) and its one Axes."""
    require_matplotlib()
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def legend_outside(ax: Any, entries: int, **kw: Any) -> None:
    """A legend beside the axes (right), or below them when it is long: never over the data."""
    if entries <= 12:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=7, title_fontsize=7, **kw)
    else:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3, fontsize=7, title_fontsize=7, **kw)


def _save(fig: Any, folder: Path, stem: str, fmt: str, meta: dict[str, Any], exp: Experiment) -> Figure:
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"{stem}.{fmt}"
    sidecar = folder / f"{stem}.json"
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, editable
        fig.savefig(image, format=fmt, metadata={"Date": None} if fmt in ("svg", "pdf") else None)
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


def _integer_steps(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


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
        fig, ax = new_figure()
        xs = [s for s, v in zip(c["steps"], c["values"]) if v is not None]
        ys = [v for v in c["values"] if v is not None]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, color="C0")
        ax.set_xlabel("step")
        _integer_steps(ax)
        ax.set_ylabel(_axis_label(exp, m))
        title = f"{m} per step: {run.id} ({run.status})"
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        figures.append(_save(fig, path / "plots", f"curve_{records.slug(m)}", fmt,
                             {"kind": "curve", "title": title, "x": "step", "y": m, "better": exp.goal_of(m),
                              "sources": [c["source"]], "series": [c], "excluded": []}, exp))
    return figures


@dataclass(frozen=True)
class Configs:
    """An experiment's configurations in the order every figure shows them, each with its colour,
    and the runs left out of them because their seed was run again (identity.dedupe_seeds)."""

    configs: list[Config]
    varying: list[str]
    colors: list[str]
    duplicates: dict[str, int]  # run id -> index of its configuration
    duplicate_runs: list[RunView]
    owner: dict[str, int]  # run id (counted or duplicate) -> index of its configuration

    def index(self, run_id: str) -> int | None:
        return self.owner.get(run_id)

    def label(self, i: int) -> str:
        return self.configs[i].label(self.varying)


def palette(n: int) -> list[str]:
    """n distinct colours (hex): tab10 up to 10 configurations, tab20 beyond (cycling past 20)."""
    require_matplotlib()
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [to_hex(cmap(i % cmap.N)) for i in range(n)]


def ordered_configs(ok: list[RunView]) -> Configs:
    """Configurations of the runs finished ok, sorted by the params that vary (numbers as numbers;
    entry point and code version in the order they first ran), with one colour each."""
    configs, varying = group_configs(ok)
    first_seen: dict[tuple[str, str], int] = {}
    for c in configs:
        for k in ("entry", "code"):
            first_seen.setdefault((k, c.pseudo(k)), len(first_seen))

    def key(c: Config) -> list[tuple[int, float, str]]:
        out = []
        for k in varying:
            v = first_seen[(k, c.pseudo(k))] if k in ("entry", "code") else c.params.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append((0, float(v), ""))
            else:
                out.append((1, 0.0, json.dumps(v, sort_keys=True, default=str)))
        return out

    configs = sorted(configs, key=key)
    index_of_key = {c.runs[0].config_key(): i for i, c in enumerate(configs)}
    kept = {r.id for c in configs for r in c.runs}
    duplicates = {r.id: index_of_key[r.config_key()] for r in ok if r.id not in kept and r.config_key() in index_of_key}
    owner = {r.id: i for i, c in enumerate(configs) for r in c.runs} | duplicates
    return Configs(configs, varying, palette(len(configs)), duplicates, [r for r in ok if r.id in duplicates], owner)


def plot_experiment(lab: Lab, name: str, metric: str | None = None, fmt: str = "png", value: str = "last") -> list[Figure]:
    """Comparison figures in the experiment's plots/: per configuration, the mean with its 95% CI
    over seeds and each run as a dot; the runs' curves per step (when a run logged more than one
    value); and, for each swept param, the metric against it.

    Ignored runs are left out (and listed in each sidecar); intervals and sweeps use runs finished
    ok, one per seed (a seed run again counts once, the later run, as in the verdict).
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
    cs = ordered_configs([r for r in shown if r.status == "ok"])
    left_out = excluded + _not_ok(shown) + _duplicates(shown, cs)
    figures = [_intervals(exp, cs, metric, value, left_out, folder, fmt)]
    curves = _compare_curves(exp, shown, cs, metric, excluded, folder, fmt)
    if curves is not None:
        figures.append(curves)
    for param in (k for k in cs.varying if k not in ("entry", "code")):  # param-vs-metric scatters: real params only
        figures.append(_sweep(exp, cs, param, metric, value, left_out, folder, fmt))
    return figures


def _not_ok(runs: list[RunView]) -> list[dict[str, str]]:
    return [{"run": r.id, "why": f"status {r.status}: {r.record.get('reason') or ''}".rstrip(": ")} for r in runs if r.status != "ok"]


def _duplicates(runs: list[RunView], cs: Configs) -> list[dict[str, str]]:
    return [{"run": r.id, "why": f"duplicate: seed {r.seed} of {cs.label(cs.duplicates[r.id])} was run again; "
                                 "the later run counts"} for r in runs if r.id in cs.duplicates]


def _values(runs: list[RunView], metric: str, value: str) -> dict[str, float]:
    return {r.id: v for r in runs if (v := r.value(metric, value)) is not None and math.isfinite(v)}


def _thresholds(exp: Experiment, metric: str) -> list[tuple[str, Criterion]]:
    """The verdict's success and failure criteria on `metric` that name a number."""
    return [(kind, c) for kind, cs in (("success", exp.success_criteria), ("failure", exp.failure_criteria))
            for c in cs if c.metric == metric and not c.comparative]


def _intervals(exp: Experiment, cs: Configs, metric: str, value: str, excluded: list[dict[str, str]],
               folder: Path, fmt: str) -> Figure:
    """A forest plot: one row per configuration, the mean with its 95% CI over seeds, each run a
    dot, repeated seeds as hollow rings; the axis spans the data, never forced to start at 0."""
    rows: list[dict[str, Any]] = []
    for i, cfg in enumerate(cs.configs):
        vals = _values(cfg.runs, metric, value)
        dups = _values([r for r in cs.duplicate_runs if cs.duplicates[r.id] == i], metric, value)
        if not vals:
            continue
        s = spread(list(vals.values()), 0.95)
        rows.append({"label": cs.label(i), "params": cfg.params, "code": cfg.code_label, "color": cs.colors[i],
                     "values": vals, "duplicates": dups, "n": s.n, "mean": s.mean, "std": s.std,
                     "ci95": [s.lo, s.hi] if s.lo is not None else None,
                     "sources": [rel(r.path / "run.json", exp.path) for r in cfg.runs if r.id in vals]})
    thresholds = _thresholds(exp, metric)
    fig, ax = new_figure(7.6, max(2.4, 0.36 * (len(rows) + 0.5 * len(thresholds)) + 1.7))
    digits = _decimals(rows)
    for y, row in enumerate(rows):
        pts = list(row["values"].values())
        ax.scatter(pts, [y + 0.24 + _jitter(j) for j in range(len(pts))], s=14, color=row["color"], alpha=0.55,
                   lw=0, zorder=2, label="run (one per seed)" if y == 0 else None)
        if row["duplicates"]:
            dv = list(row["duplicates"].values())
            ax.scatter(dv, [y + 0.24] * len(dv), s=26, facecolors="none", edgecolors=row["color"], lw=1, zorder=2,
                       label="_dup")
        if row["ci95"]:
            lo, hi = row["ci95"]
            ax.errorbar([row["mean"]], [y], xerr=[[row["mean"] - lo], [hi - row["mean"]]], fmt="none",
                        ecolor=row["color"], elinewidth=2.2, capsize=4, zorder=3)
        ax.scatter([row["mean"]], [y], s=48, marker="D", color=row["color"], edgecolors="k", lw=0.6, zorder=4,
                   label="mean, 95% CI over seeds" if y == 0 else None)
        ci = f" [{row['ci95'][0]:.{digits}f}, {row['ci95'][1]:.{digits}f}]" if row["ci95"] else " (no CI: 1 seed)"
        ax.annotate(f"{row['mean']:.{digits}f}{ci}  n={row['n']}", (1.01, y), xycoords=("axes fraction", "data"),
                    va="center", fontsize=7, annotation_clip=False)
    if not rows:
        ax.text(0.5, 0.5, f"no run finished ok with a value of {metric}", transform=ax.transAxes, ha="center",
                color="0.4")
    _group_separators(ax, cs, rows)
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=8)
    band = 0.5 * len(thresholds)  # a strip above the first row for the thresholds' labels
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5 - band)  # first configuration on top
    ax.margins(x=0.08)
    drawn = _draw_thresholds(ax, thresholds, rows)
    ax.set_xlabel(_axis_label(exp, metric) + f" ({value} value per run)")
    ax.grid(alpha=0.3, axis="x")
    handles, labels = ax.get_legend_handles_labels()
    if any(r["duplicates"] for r in rows):
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="0.3", ms=6))
        labels.append("seed run again (not in the mean)")
    keep = [(h, lab) for h, lab in zip(handles, labels) if lab != "_dup"]
    if keep:
        fig.legend(*zip(*keep), loc="outside lower center", ncols=min(4, len(keep)), fontsize=7, frameon=False)
    title = f"{exp.name}: {metric} per configuration (mean and 95% CI over seeds; dots: runs)"
    ax.set_title(title, fontsize=8)
    return _save(fig, folder, f"compare_intervals_{records.slug(metric)}", fmt,
                 {"kind": "intervals", "title": title, "x": metric, "y": "configuration", "value": value,
                  "better": exp.goal_of(metric), "varying": cs.varying, "value_axis": list(ax.get_xlim()),
                  "sources": [s for r in rows for s in r["sources"]], "configurations": rows,
                  "thresholds": drawn, "excluded": excluded}, exp)


def _jitter(j: int) -> float:
    """A fixed small vertical offset per dot, so runs with equal values stay visible (no randomness)."""
    return (-0.05, 0.0, 0.05)[j % 3]


def _decimals(rows: list[dict[str, Any]]) -> int:
    """Decimals that resolve the narrowest interval (or the spread of the means): one figure finer."""
    if not rows:
        return 4
    widths = [r["ci95"][1] - r["ci95"][0] for r in rows if r["ci95"] and r["ci95"][1] > r["ci95"][0]]
    means = [r["mean"] for r in rows]
    widths = widths or ([max(means) - min(means)] if len(means) > 1 and max(means) > min(means) else [abs(means[0]) or 1.0])
    return min(8, max(0, 1 - math.floor(math.log10(min(widths)))))


def _group_separators(ax: Any, cs: Configs, rows: list[dict[str, Any]]) -> None:
    """With two or more varying params, a rule between the groups of the first one."""
    if len(cs.varying) < 2:
        return
    outer = cs.varying[0]
    first = [r["label"].split(", ")[0] for r in rows if r["label"].startswith(f"{outer}=")]
    for y in range(1, len(first)):
        if first[y] != first[y - 1]:
            ax.axhline(y - 0.5, color="0.75", lw=0.8)


def _draw_thresholds(ax: Any, thresholds: list[tuple[str, Criterion]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each criterion as a labelled vertical line; one far off the data (more than the data's own
    span away) is named at the edge instead, so it does not squash the intervals."""
    xs = [v for r in rows for v in [*r["values"].values(), *r["duplicates"].values(), *(r["ci95"] or [])]]
    if not xs:
        return []
    lo, hi = min(xs), max(xs)
    span = max(hi - lo, abs(hi) * 1e-3, 1e-12)
    out = []
    for i, (kind, c) in enumerate(thresholds):
        color = "#2a9d3a" if kind == "success" else "#c0392b"
        text = f"{kind}: {c.text}"
        near = lo - span <= c.value <= hi + span
        side = "left" if c.value < lo else "right"
        if near:
            ax.axvline(c.value, color=color, ls="--", lw=1.2, zorder=1)
            ax.annotate(text, (c.value, -0.75 - 0.5 * i), xytext=(3, 0), textcoords="offset points", fontsize=7,
                        color=color, va="center")
        else:
            arrow = "\u2190" if side == "left" else "\u2192"
            ax.annotate(f"{arrow} {text} (off scale)" if side == "left" else f"{text} (off scale) {arrow}",
                        (0.0 if side == "left" else 1.0, -0.75 - 0.5 * i), xycoords=("axes fraction", "data"),
                        xytext=(4 if side == "left" else -4, 0), textcoords="offset points", fontsize=7, color=color,
                        ha=side, va="center")
        out.append({"kind": kind, "criterion": c.text, "value": c.value, "drawn": "line" if near else f"off scale ({side})"})
    return out


def _compare_curves(exp: Experiment, shown: list[RunView], cs: Configs, metric: str,
                    excluded: list[dict[str, str]], folder: Path, fmt: str) -> Figure | None:
    """Every run's curve, coloured by configuration; None when no run logged more than one value
    (a curve of single points shows nothing the intervals do not)."""
    curves = [(r, c) for r in shown if (c := _curve(r, metric, exp, "")) is not None]
    if not curves or max(len(c["steps"]) for _, c in curves) <= 1:
        return None
    fig, ax = new_figure(7.6, 4.2)
    series, labelled, counts = [], set(), _role_counts(shown, cs)
    for r, c in curves:
        i = cs.index(r.id)
        if r.status != "ok" or i is None:
            role, color, ls, label = r.status, GREY, "--", f"{r.status} ({counts[r.status]})"
        elif r.id in cs.duplicates:
            role, color, ls, label = "duplicate", cs.colors[i], ":", f"seed run again ({counts['duplicate']}, not counted)"
        else:
            role, color, ls, label = "config", cs.colors[i], "-", cs.label(i)
        c.update(label=label, role=role, color=color)
        series.append(c)
        xs = [s for s, v in zip(c["steps"], c["values"]) if v is not None]
        ys = [v for v in c["values"] if v is not None]
        ax.plot(xs, ys, color=color, ls=ls, alpha=0.85, lw=1.3, label=None if label in labelled else label)
        if role not in ("config", "duplicate") and xs:
            ax.plot(xs[-1:], ys[-1:], ls="", marker="x", color=color, ms=6)  # where it stopped
        labelled.add(label)
    ax.set_xlabel("step")
    _integer_steps(ax)
    ax.set_ylabel(_axis_label(exp, metric))
    title = f"{exp.name}: {metric} per step, {len(series)} runs (colour: configuration; lines: seeds)"
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    _legend_in_config_order(ax, cs)
    return _save(fig, folder, f"compare_curves_{records.slug(metric)}", fmt,
                 {"kind": "compare_curves", "title": title, "x": "step", "y": metric, "better": exp.goal_of(metric),
                  "colors": {cs.label(i): cs.colors[i] for i in range(len(cs.configs))},
                  "sources": [c["source"] for c in series], "series": series, "excluded": excluded}, exp)


def _role_counts(runs: list[RunView], cs: Configs) -> dict[str, int]:
    out: dict[str, int] = {"duplicate": sum(1 for r in runs if r.id in cs.duplicates)}
    for r in runs:
        if r.status != "ok":
            out[r.status] = out.get(r.status, 0) + 1
    return out


def _legend_in_config_order(ax: Any, cs: Configs) -> None:
    handles, labels = ax.get_legend_handles_labels()
    order = {cs.label(i): i for i in range(len(cs.configs))}
    pairs = sorted(zip(handles, labels), key=lambda p: order.get(p[1], len(order)))
    if pairs:
        legend_outside(ax, len(pairs), handles=[p[0] for p in pairs], labels=[p[1] for p in pairs],
                       title="configuration")


def _sweep(exp: Experiment, cs: Configs, param: str, metric: str, value: str,
           excluded: list[dict[str, str]], folder: Path, fmt: str) -> Figure:
    """The metric against one param: each run a dot in its configuration's colour; runs that share
    the values of the other varying params get one marker and a line through their means."""
    others = [k for k in cs.varying if k != param]
    points: list[dict[str, Any]] = []
    for i, cfg in enumerate(cs.configs):
        group = ", ".join(f"{k}={cfg.pseudo(k)}" for k in others) or "all"
        for rid, v in _values(cfg.runs, metric, value).items():
            r = next(r for r in cfg.runs if r.id == rid)
            points.append({"run": rid, "x": cfg.params.get(param), "y": v, "config": cs.label(i), "color": cs.colors[i],
                           "group": group, "source": rel(r.path / "run.json", exp.path)})
    fig, ax = new_figure(7.6, 4.2)
    numeric = all(isinstance(p["x"], (int, float)) and not isinstance(p["x"], bool) for p in points)
    log = False
    if numeric:
        pos = {json.dumps(p["x"]): float(p["x"]) for p in points}
        xs = [float(p["x"]) for p in points]
        if len(set(xs)) >= 3 and min(xs) > 0 and max(xs) / min(xs) >= 10:  # a grid over decades, as lr usually is
            ax.set_xscale("log")
            log = True
        if len(set(xs)) <= 8:  # few values tried: tick exactly those
            from matplotlib.ticker import NullLocator

            ax.set_xticks(sorted(set(xs)), [f"{v:g}" for v in sorted(set(xs))], fontsize=8)
            ax.xaxis.set_minor_locator(NullLocator())
    else:
        cats = [json.dumps(c.params.get(param), default=str) for c in cs.configs]
        cats = list(dict.fromkeys(cats))  # configuration order: sorted by the params
        pos = {c: float(i) for i, c in enumerate(cats)}
        ax.set_xticks(range(len(cats)), [json.loads(c) if c.startswith('"') else c for c in cats], fontsize=8)
    groups = list(dict.fromkeys(p["group"] for p in points))
    markers = "osD^vP*Xph"
    from matplotlib.lines import Line2D

    handles = []
    for g, group in enumerate(groups):
        mine = [p for p in points if p["group"] == group]
        marker = markers[g % len(markers)]
        at = _dodge(list(pos.values()), log, g, len(groups))
        ax.scatter([at(pos[json.dumps(p["x"], default=str)]) for p in mine], [p["y"] for p in mine], s=24, marker=marker,
                   c=[p["color"] for p in mine], alpha=0.8, edgecolors="none", zorder=3)
        means: dict[float, list[float]] = {}
        for p in mine:
            means.setdefault(at(pos[json.dumps(p["x"], default=str)]), []).append(p["y"])
        mx = sorted(means)
        ax.plot(mx, [sum(means[x]) / len(means[x]) for x in mx], color="0.35", lw=0.9, zorder=2,
                ls=["-", "--", ":", "-."][g % 4])
        handles.append(Line2D([], [], color="0.35", ls=["-", "--", ":", "-."][g % 4], marker=marker, mfc="0.35",
                              mec="none", label=group))
    ax.set_xlabel(param)
    ax.set_ylabel(_axis_label(exp, metric) + f" ({value} value)")
    held = "every other param held fixed" if not others else f"one marker and line per {', '.join(others)}"
    title = f"{exp.name}: {metric} vs {param}, {len(points)} runs ({held}; line: mean)"
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    if others:
        legend_outside(ax, len(handles), handles=handles, title=", ".join(others))
    return _save(fig, folder, f"sweep_{records.slug(param)}_{records.slug(metric)}", fmt,
                 {"kind": "sweep", "title": title, "x": param, "y": metric, "value": value, "better": exp.goal_of(metric),
                  "value_axis": list(ax.get_ylim()),
                  "held_fixed": not others, "mixed": others,
                  "sources": [p["source"] for p in points], "points": points, "excluded": excluded}, exp)


def _dodge(xs: list[float], log: bool, g: int, groups: int) -> Any:
    """x -> x shifted a little for group g of `groups`, so groups with equal values do not hide each other."""
    if groups <= 1 or not xs:
        return lambda x: x
    share = 0.012 * (g - (groups - 1) / 2)
    if log:
        factor = (max(xs) / min(xs)) ** share
        return lambda x: x * factor
    step = share * ((max(xs) - min(xs)) or 1.0)
    return lambda x: x + step
