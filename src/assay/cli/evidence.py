"""`assay plot | verdict | report | check | check-data | rerun`: evidence a reader can trust."""


from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from assay.cli.common import JsonOpt, ValueOpt, emit


def _where(items: list[str] | None) -> dict[str, Any] | None:
    from assay.config import parse_value
    from assay.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Cannot read --where '{item}'", "Write it as param=value, e.g. --where lr=0.01.")
        out[key.strip()] = parse_value(raw.strip())
    return out or None


def verdict(
    name: str,
    where: Annotated[Optional[list[str]], typer.Option(help="Only runs with this param=value (repeatable).")] = None,
    confidence: Annotated[float, typer.Option(help="Overall confidence (split over configurations).")] = 0.95,
    value: ValueOpt = "last",
    json_: JsonOpt = False,
) -> None:
    """Judge the hypothesis: supported / refuted / inconclusive, with the runs and numbers that decided it."""
    from assay import api

    emit(api.verdict(name, where=_where(where), confidence=confidence, value=value), json_, _print_verdict)


def _print_verdict(v: Any) -> None:
    print(f"{v.experiment}: {v.verdict.upper()}  ({v.reason})")
    print(f"  hypothesis: {v.hypothesis}")
    print(f"  success: {' and '.join(v.success) or '-'}   failure: {' and '.join(v.failure) or '-'}   "
          f"({v.value} value per run, {v.per_config_confidence:.1%} CI per {'configuration' if v.configurations else 'comparison'})")
    for i, c in enumerate(v.configurations):
        mark = "*" if i in v.decided_by else " "
        print(f"{mark} [{c.verdict}] {c.label}: {len(c.runs)} run(s)")
        for j in c.judged:
            print(f"      {j.kind} {j.criterion.text}: {j.outcome} ({j.why})")
        for rid in c.runs:
            print(f"      {rid}")
    for j in v.comparisons:
        print(f"  {j.kind} {j.criterion.text}: {j.outcome} ({j.why})")
        for rid in j.values:
            print(f"      {rid}")
    for e in v.excluded:
        print(f"  left out: {e['id']} ({e['status']}: {e['why']})")
    if v.hint:
        print(f"  next: {v.hint}")


def plot(
    target: Annotated[str, typer.Argument(metavar="RUN|NAME", help="A run, or an experiment with --compare.")],
    metric: Annotated[Optional[str], typer.Option(help="Metrics, comma-separated (run: default all; --compare: the primary).")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Compare an experiment's runs: intervals, curves, sweeps.")] = False,
    format_: Annotated[str, typer.Option("--format", help="png, svg, pdf or webp.")] = "png",
    value: ValueOpt = "last",
    json_: JsonOpt = False,
) -> None:
    """Plot logged metrics only; each figure gets a .json sidecar naming its source files and series."""
    from assay import api

    metrics = [m.strip() for m in (metric or "").split(",") if m.strip()]
    figures = api.plot(target, metrics=metrics, compare=compare, format=format_, value=value)
    emit(figures, json_, _print_figures)


def _print_figures(figures: Any) -> None:
    for f in figures:
        print(f"{f.path}  (data: {f.sidecar.name})")


def report(
    name: str,
    format_: Annotated[str, typer.Option("--format", help="Figure format: png, svg or webp.")] = "png",
    value: ValueOpt = "last",
    json_: JsonOpt = False,
) -> None:
    """Write REPORT.md and a self-contained REPORT.html; regenerates only the generated blocks."""
    from assay import api

    emit(api.report(name, format=format_, value=value), json_, _print_report)


def _print_report(res: Any) -> None:
    print(f"{'wrote' if res.created else 'updated'} {res.markdown} ({len(res.regenerated)} generated blocks, "
          f"{len(res.figures)} figures; your text outside the markers is kept)")
    print(f"wrote {res.html} (self-contained)")
    if res.missing:
        print(f"note: blocks removed by hand were not put back: {', '.join(res.missing)}")


def check(
    target: Annotated[str, typer.Argument(metavar="NAME|FILE", help="An experiment (its entry point) or a .py file.")],
    json_: JsonOpt = False,
) -> None:
    """Reproducibility and leakage from the code's syntax tree: seeds, pinned deps, paths, outputs, split leakage.
    Exit 1 on findings."""
    from assay import api

    res = api.check(target)
    emit(res, json_, _print_check)
    if res.findings:
        raise typer.Exit(1)


def rerun(
    run_ref: Annotated[str, typer.Argument(metavar="RUN")],
    value: ValueOpt = "last",
    confidence: Annotated[float, typer.Option(help="Confidence of the noise band.")] = 0.95,
    json_: JsonOpt = False,
) -> None:
    """Re-run from the recorded commit (+ patch), params and seed in a temporary worktree; compare to the original."""
    from assay import api

    emit(api.rerun(run_ref, value=value, confidence=confidence), json_, _print_rerun)


def _print_rerun(r: Any) -> None:
    from assay.cli.render import fmt

    verdict = {True: "within noise", False: "NOT within noise", None: "noise unknown"}[r.within_noise]
    print(f"{r.rerun}  ({r.status}, commit {r.commit[:10]}{' + patch' if r.patched else ''})")
    print(f"{r.metric}: original {fmt(r.original_value)}, rerun {fmt(r.new_value)}, difference {fmt(r.difference)}: {verdict}")
    print(f"  {r.explanation}; noise from {r.sigma_source}")
    for w in r.warnings:
        print(f"  warning: {w}")


def check_data(
    train: Path,
    val: Path,
    test: Annotated[Optional[Path], typer.Argument()] = None,
    key: Annotated[Optional[str], typer.Option(help="Entity id column (key overlap).")] = None,
    time: Annotated[Optional[str], typer.Option(help="Timestamp column (temporal order).")] = None,
    target: Annotated[Optional[str], typer.Option(help="Label column (single-feature predictors).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Leakage between csv/parquet splits: overlaps, time order, too-good features, drift. Exit 1 on findings."""
    from assay import api

    rep = api.check_data(train, val, test, key=key, time=time, target=target)
    emit(rep, json_, lambda r: _print_data_report(r, target))
    if rep.findings:
        raise typer.Exit(1)


def _print_check(res: Any) -> None:
    _print_findings(res.findings)
    print(f"{len(res.findings)} finding(s) in {', '.join(res.files)}")


def _print_findings(findings: Any) -> None:
    for f in findings:
        print(f"{f.where}: {f.code}: {f.message}\n    why: {f.why}\n    fix: {f.fix}")


def _print_data_report(rep: Any, target: str | None) -> None:
    from assay.cli.render import fmt, table

    _print_findings(rep.findings)
    if rep.drift:
        table(["split", "column", "test", "statistic", "p", "drift"],
              [[d["split"], d["column"], d["test"], fmt(d["statistic"]), fmt(d["p_value"]), "yes" if d["drifted"] else ""]
               for d in rep.drift], title="train vs other splits, per column")
    if rep.predictors:
        table(["column", "metric", "alone on val", "baseline"],
              [[p["column"], p["metric"], fmt(p["score"]), fmt(p["baseline"])] for p in rep.predictors[:10]],
              title=f"single-feature predictors of {target} (fit on train)")
    print(f"{len(rep.findings)} finding(s)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command("verdict")(verdict)
    app.command("plot")(plot)
    app.command("report")(report)
    app.command("check")(check)
    app.command("rerun")(rerun)
    app.command("check-data")(check_data)
