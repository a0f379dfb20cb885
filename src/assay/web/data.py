"""What the dashboard shows, read from the lab: plain dicts, no web framework.

Every name that arrives in a URL (experiment, run id, file path) is checked here before it
touches the filesystem, so nothing outside the lab's experiments folder can be read.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, RunError, StoreError
from assay.experiment import Experiment, goal_lookup, list_experiments, load_experiment
from assay.lab import Lab
from assay.store import records
from assay.store.index import Index
from assay.store.summary import experiment_counts, finished_stamp, key_names

_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")  # experiment and run-folder names (as records.slug makes them)
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml", ".webp": "image/webp"}
MAX_TEXT = 256_000  # bytes of a patch or text file sent to the browser; the rest is cut with a note


def _json_safe(v: Any) -> Any:
    """NaN/inf -> None, recursively: browsers' JSON.parse rejects them."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


json_safe = _json_safe


class UnknownExperiment(ConfigError, LookupError):
    """An experiment named in a URL that the lab does not hold (HTTP 404)."""


class UnknownRun(RunError, LookupError):
    """A run id in a URL that names no run folder of the lab (HTTP 404)."""


class FileRefused(StoreError, LookupError):
    """A file path outside the experiments folder, or no such file (HTTP 404: existence is not revealed)."""


def experiment(lab: Lab, name: str) -> Experiment:
    """Load an experiment named in a URL; refuses names that could leave the experiments folder."""
    if not _NAME.match(name) or name not in list_experiments(lab):
        known = list_experiments(lab)
        raise UnknownExperiment(f"Unknown experiment '{name}' (known: {', '.join(known) or 'none'})",
                          "Pick one from the experiments page.")
    return load_experiment(lab, name)


def run_dir(lab: Lab, run_id: str) -> Path:
    """The folder of run `<experiment>/<folder>`, only if it is a run folder inside the lab."""
    exp_name, _, folder = run_id.partition("/")
    if not (_NAME.match(exp_name) and _NAME.match(folder)) or exp_name not in list_experiments(lab):
        raise UnknownRun(f"No run '{run_id}' in this lab", "Run ids look like EXPERIMENT/FOLDER; open one from a runs table.")
    path = lab.experiment_dir(exp_name) / "runs" / folder
    if not (path / records.RECORD_FILE).is_file():
        raise UnknownRun(f"No run '{run_id}' in this lab", "Open runs from a runs table; `assay reindex` if a folder is missing.")
    return path


# ------------------------------------------------------------------ experiments


_VERDICTS: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any]]] = {}


def _stamp(index: Index, exp: Experiment) -> tuple[Any, ...] | None:
    """What the experiment's derived views depend on: its finished runs (count, newest end, ignored,
    ok), experiment.yaml and IGNORED_RUNS.md; None before any run finished. A cached verdict or
    comparison is reused while this is unchanged, so polling stays cheap at 10,000 runs."""
    from assay.journal import IGNORED_FILE

    stamp = finished_stamp(index, exp.name)
    if not stamp[0]:
        return None
    return stamp + tuple(f.stat().st_mtime_ns if f.exists() else None for f in (exp.file, exp.path / IGNORED_FILE))


def _verdict(lab: Lab, index: Index, exp: Experiment) -> dict[str, Any]:
    """`assay verdict`'s judgement (confidence intervals over seeds, Bonferroni over configurations)
    from the index's copy of the runs; recomputed only when a run finishes or is ignored, or the
    experiment's criteria change, so polling the page stays cheap at 10,000 runs."""
    from assay.report.evidence import runs_from_index
    from assay.report.verdict import verdict

    stamp = _stamp(index, exp)
    if stamp is None:
        return {"verdict": "no runs", "reason": "no finished run yet"}
    try:
        criteria = [*exp.success_criteria, *exp.failure_criteria]
    except ConfigError as exc:
        return {"verdict": "bad criteria", "reason": exc.message}
    if not criteria:
        return {"verdict": "no criteria", "reason": "the experiment declares no success or failure criteria"}
    key = (str(exp.path), exp.name)
    cached = _VERDICTS.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    v = verdict(lab, exp.name, runs=runs_from_index(index, exp, sorted({c.metric for c in criteria})))
    out = {"verdict": v.verdict, "reason": v.reason}
    _VERDICTS[key] = (stamp, out)
    return out


_CONFIGS: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any]]] = {}


def configurations(lab: Lab, index: Index, exp: Experiment) -> dict[str, Any] | None:
    """`assay compare --json` for the experiment (configurations by params, entry point and code
    version, each run's last value): the same numbers the CLI and the verdict show. Cached until
    a run finishes or is ignored; None before any run finished."""
    from assay.store.query import compare

    stamp = _stamp(index, exp)
    if stamp is None:
        return None
    key = (str(exp.path), exp.name)
    cached = _CONFIGS.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    out = compare(lab, exp.name)
    _CONFIGS[key] = (stamp, out)
    return out


def experiments(lab: Lab) -> list[dict[str, Any]]:
    """One row per experiment: hypothesis, metric, run counts, best primary value, verdict."""
    names = list_experiments(lab)
    out = []
    with lab.index() as index:
        counts = experiment_counts(index)
        for name in names:
            row: dict[str, Any] = {"name": name}
            try:
                exp = load_experiment(lab, name)
            except ConfigError as exc:
                out.append({**row, "error": exc.message, "runs": counts.get(name, (0, 0, None))[0]})
                continue
            cmp = configurations(lab, index, exp)
            top = cmp["rows"][cmp["best"]] if cmp and cmp["best"] is not None else None
            n, running, last = counts.get(name, (0, 0, None))
            judged = _verdict(lab, index, exp)
            folder = exp.path
            out.append({**row, "hypothesis": exp.hypothesis, "metric": exp.metric, "goal": exp.goal,
                        "success": exp.success, "failure": exp.failure, "runs": n, "running": running or 0,
                        "last_started": last, "value": "last",  # best: the best configuration's mean of last values
                        "best": top["mean"] if top else None, "best_n": top["n"] if top else 0,
                        "best_config": _config_label(cmp, top) if cmp and top else None, "best_run": top["runs"][-1] if top else None,
                        "verdict": judged["verdict"], "verdict_reason": judged["reason"],
                        "has_loop": (folder / "results.tsv").is_file(), "has_report": (folder / "REPORT.md").is_file(),
                        "has_journal": (folder / "JOURNAL.md").is_file()})
    return out


def _config_label(cmp: dict[str, Any], row: dict[str, Any]) -> str:
    from assay.store.query import comparison_columns

    keys, extra = comparison_columns(cmp)
    return ", ".join(f"{k}={row[k]}" for k in [*keys, *extra]) or "all runs"


def experiment_detail(lab: Lab, name: str) -> dict[str, Any]:
    """The experiment file's fields, its README and the metric/param names its runs use."""
    exp = experiment(lab, name)
    with lab.index() as index:
        metrics, params = key_names(index, name)
        judged = _verdict(lab, index, exp)
        cmp = configurations(lab, index, exp)
    readme = exp.path / "README.md"
    return {"name": name, "hypothesis": exp.hypothesis, "metric": exp.metric, "goal": exp.goal,
            "success": exp.success, "failure": exp.failure, "entry": exp.entry, "secondary": exp.secondary,
            "verdict": judged["verdict"], "verdict_reason": judged["reason"], "configurations": cmp,
            "readme": _text(readme) if readme.is_file() else None,
            "metrics": sorted(set(metrics) | {exp.metric}, key=lambda k: (k != exp.metric, k)), "params": sorted(params),
            "units": _units(exp, [*metrics, exp.metric]),
            "has_loop": (exp.path / "results.tsv").is_file(), "has_report": (exp.path / "REPORT.md").is_file(),
            "has_journal": (exp.path / "JOURNAL.md").is_file()}


def _units(exp: Experiment, metrics: list[str]) -> dict[str, str]:
    """{metric: unit} from experiment.yaml's `units:`, for axis titles."""
    return {m: u for m in metrics if (u := exp.units(m))}


def runs_page(lab: Lab, name: str, where: str | None, sort: str | None, offset: int, limit: int,
              include_ignored: bool, search: str | None = None) -> dict[str, Any]:
    """One page of an experiment's runs table, filtered, searched (description or id), sorted and
    paged in SQL by store.query."""
    from assay.store.query import list_runs

    experiment(lab, name)
    rows, total = list_runs(lab, name, where, sort, limit, include_ignored, offset=offset, search=search)
    for r in rows:
        r.pop("path", None)
    return {"rows": rows, "total": total, "offset": offset, "limit": limit}


# ------------------------------------------------------------------ runs


def _text(path: Path, limit: int = MAX_TEXT) -> str:
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    text = data[:limit].decode("utf-8", "replace")
    return text + (f"\n... (cut at {limit // 1000} kB; the whole file is {path})" if len(data) > limit else "")


def run(lab: Lab, run_id: str) -> dict[str, Any]:
    """A run's record (a dead 'running' run becomes 'lost'), log tail, diff, environment and plots."""
    from assay.journal import ignored_runs

    path = run_dir(lab, run_id)
    record = records.read_record(path)
    if record.get("status") == "running":
        record = records.mark_lost_if_dead(path, record, goal_lookup(lab.root, record.get("experiment")))
        if record.get("status") == "running":  # live: the record's metrics come at the end
            summary = records.summarize(path, goal_lookup(lab.root, record.get("experiment")))
            record["metrics"] = summary["metrics"]
    record["log_tail"] = records.log_tail(path, lines=80)
    record["ignored"] = ignored_runs(path.parent.parent).get(path.name)
    patch = path / records.PATCH_FILE
    record["patch"] = _text(patch) if patch.is_file() else None
    env = path / "env.json"
    try:
        record["environment"] = json.loads(env.read_text(encoding="utf-8")) if env.is_file() else None
    except ValueError:
        record["environment"] = None
    rel = path.relative_to(lab.root)
    plots = path / "plots"
    record["plots"] = sorted(str(rel / "plots" / p.name) for p in plots.iterdir()
                             if p.suffix.lower() in IMAGE_TYPES) if plots.is_dir() else []
    record["folder"] = str(rel)
    try:
        exp = load_experiment(lab, path.parent.parent.name)
        record["units"] = _units(exp, [*record.get("metrics", {}), exp.metric])
    except ConfigError:
        record["units"] = {}
    for private in ("owner_pid", "owner_started", "child_pid"):
        record.pop(private, None)
    return record


# ------------------------------------------------------------------ loop, journal, report, files


def loop_results(lab: Lab, name: str) -> dict[str, Any]:
    """results.tsv as {columns, rows}, read by the loop's own reader; each row also carries `value`,
    the commit's one number that `try`, `loop log` and `loop status` show (None for a crash).
    Empty when the experiment has no loop (a torn last line is skipped)."""
    from assay.loop import results

    exp = experiment(lab, name)
    file = exp.path / "results.tsv"
    rows = results.read(file)
    if not rows:
        return {"columns": [], "rows": [], "metric": exp.metric, "goal": exp.goal}
    with file.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    return {"columns": [c for c in header if c in results.COLUMNS], "rows": [r.to_dict() for r in rows],
            "metric": exp.metric, "goal": exp.goal}


def journal(lab: Lab, name: str) -> dict[str, Any]:
    """Parsed journal entries and ignored runs; the raw text too, for hand-written lines."""
    from assay.journal import ignored_runs, read_journal

    exp = experiment(lab, name)
    file = exp.path / "JOURNAL.md"
    return {"entries": [e.to_dict() for e in read_journal(exp.path)],
            "text": _text(file) if file.is_file() else None,
            "ignored": ignored_runs(exp.path)}


def report(lab: Lab, name: str) -> dict[str, Any]:
    """REPORT.md's Markdown and its HTML, rendered as REPORT.html is (raw HTML off, no markers),
    with images inside the experiment folder served by /api/file; None for both before a report."""
    from urllib.parse import quote, unquote, urlsplit

    from assay.report.report import render_markdown

    exp = experiment(lab, name)
    file = exp.path / "REPORT.md"
    base = str(exp.path.relative_to(lab.root))
    if not file.is_file():
        return {"markdown": None, "html": None, "base": base}
    root = exp.path.resolve()

    def image(token: Any) -> None:
        src = str(token.attrGet("src") or "")
        if urlsplit(src).scheme or src.startswith("//"):
            token.attrSet("src", "")  # the dashboard shows only the lab's own files
            return
        path = (root / unquote(src)).resolve()
        rel = path.relative_to(lab.root.resolve()) if path.is_relative_to(root) else None
        token.attrSet("src", f"/api/file?path={quote(str(rel))}" if rel else "")

    text = _text(file)
    return {"markdown": text, "html": render_markdown(text, image=image), "base": base}


def lab_file(lab: Lab, rel: str) -> Path:
    """A file under the lab's experiments folder named by a lab-relative path; nothing else.

    Symlinks are resolved first, so a link pointing out of the lab is refused too.
    """
    base = lab.experiments_dir.resolve()
    if not rel or "\x00" in rel or Path(rel).is_absolute():
        raise FileRefused(f"Refusing file path '{rel}'", "Give a path relative to the lab, inside experiments/.")
    target = (lab.root / rel).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise FileRefused(f"No file '{rel}' inside {base.relative_to(lab.root.resolve())}/",
                         "Only files under the experiments folder can be viewed.")
    return target
