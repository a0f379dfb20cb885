"""The generated blocks of REPORT.md, filled from run files only; every number names its source file.

Paths are relative to the experiment folder (where REPORT.md lives), so they are also links.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assay.experiment import Experiment
from assay.report.evidence import RunView, group_configs, rel, spread
from assay.report.plots import Figure
from assay.report.verdict import Verdict
from assay.store import records

# Import name -> distribution name, for the few common packages where they differ.
_DIST = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python", "skimage": "scikit-image"}


def link(path: str) -> str:
    return f"[`{path}`]({path})"


def num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: Iterable[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def abstract_facts(exp: Experiment, runs: list[RunView], v: Verdict) -> str:
    ok = [r for r in runs if r.ignored is None and r.status == "ok"]
    configs, _ = group_configs(ok)
    return (f"Data: {len(ok)} finished run(s) in {len(configs)} configuration(s) under {link('runs/')}; "
            f"{len(runs) - len(ok)} run(s) left out (see Discussion). "
            f"Verdict on the hypothesis: **{v.verdict}** (see Conclusion).")


def introduction(exp: Experiment) -> str:
    hyp = exp.hypothesis.strip() or "(no hypothesis written in experiment.yaml)"
    lines = [f"**Hypothesis** (from {link('experiment.yaml')}):", "", *(f"> {x}" for x in hyp.splitlines()), "",
             f"Primary metric: `{exp.metric}` ({'higher' if exp.goal == 'max' else 'lower'} is better).", ""]
    lines.append(f"- Success criterion: `{exp.success}`" if exp.success else "- Success criterion: none declared")
    lines.append(f"- Failure criterion: `{exp.failure}`" if exp.failure else "- Failure criterion: none declared")
    return "\n".join(lines)


def methods(exp: Experiment, runs: list[RunView]) -> str:
    ok = [r for r in runs if r.ignored is None and r.status == "ok"]
    out = [f"- Entry point: `{exp.entry}` ({link(exp.entry)})" if (exp.path / exp.entry).exists() else f"- Entry point: `{exp.entry}`"]
    defaults = exp.default_params()
    if defaults:
        out += ["- Default parameters (" + link("config.yaml") + "): "
                + ", ".join(f"`{k}={json.dumps(v, default=str)}`" for k, v in defaults.items())]
    commits: dict[tuple[str, bool], list[RunView]] = {}
    for r in ok:
        git = r.record.get("git") or {}
        commits.setdefault((str(git.get("commit") or "no git"), bool(git.get("dirty"))), []).append(r)
    if commits:
        out += ["", "Code version of the finished runs (from each run's `run.json`, patch in `git.patch`):", ""]
        out.append(table(["commit", "uncommitted changes", "runs", "source"],
                         [[c[:12], "yes (patch recorded)" if d else "no", len(rs), link(rel(rs[0].path / "run.json", exp.path))]
                          for (c, d), rs in commits.items()]))
    out += ["", *_environment(exp, ok), "", *_data_fingerprint(exp, ok), "", "Seeds and repeats per configuration:", ""]
    configs, varying = group_configs(ok)
    out.append(table(["configuration", "repeats", "seeds"],
                     [[c.label(varying), len(c.runs), ", ".join(num(r.seed) for r in c.runs)] for c in configs]))
    return "\n".join(out)


def _imports(exp: Experiment) -> set[str]:
    from assay.checks.repro import imported_modules

    try:
        return imported_modules(exp.path / exp.entry)
    except (OSError, SyntaxError, ValueError):
        return set()


def _environment(exp: Experiment, ok: list[RunView]) -> list[str]:
    envs = {json.dumps(r.record.get("env") or {}, sort_keys=True): r for r in ok}
    if not envs:
        return ["Environment: no finished run recorded one."]
    out = ["Environment (from `run.json` and `env.json`):", ""]
    rows = []
    mods = _imports(exp)
    for r in envs.values():
        env = r.record.get("env") or {}
        pkgs = {}
        env_file = r.path / "env.json"
        if env_file.is_file():
            try:
                installed = {k.lower(): (k, v) for k, v in json.loads(env_file.read_text()).get("packages", {}).items()}
            except ValueError:
                installed = {}
            for m in sorted(mods):
                hit = installed.get(_DIST.get(m, m).lower())
                if hit:
                    pkgs[hit[0]] = hit[1]
        rows.append([env.get("python_version") or "-", env.get("platform") or "-", env.get("hostname") or "-",
                     ", ".join(f"{k}=={v}" for k, v in pkgs.items()) or "-",
                     link(rel(env_file if env_file.is_file() else r.path / "run.json", exp.path))])
    out.append(table(["python", "platform", "host", "imported packages", "source"], rows))
    return out


def _data_fingerprint(exp: Experiment, ok: list[RunView]) -> list[str]:
    """The data files' sha256 as each run recorded it when it started, against the files today."""
    from assay.provenance import fingerprint

    versions: dict[str, dict[str, list[RunView]]] = {}  # file -> sha256 -> runs that read that version
    first: dict[str, dict[str, Any]] = {}
    for r in ok:
        for name, fp in (r.record.get("data") or {}).items():
            versions.setdefault(name, {}).setdefault(str(fp.get("sha256")), []).append(r)
            first.setdefault(name, fp)
    if not versions:
        return _data_hashed_now(exp, ok)  # runs from before assay recorded their data
    rows, notes = [], []
    for name, by_hash in versions.items():
        fp = first[name]
        try:
            now = fingerprint(exp.path / name, full=fp.get("hashed") == "full")["sha256"]
        except OSError:
            now = None
        state = "missing now" if now is None else "unchanged" if set(by_hash) == {now} else f"**changed** (now {now})"
        recorded = ", ".join(f"{h} ({len(rs)} run{'s' * (len(rs) > 1)})" for h, rs in by_hash.items())
        runs = [r for rs in by_hash.values() for r in rs]
        rows.append([f"`{name}`", fp.get("bytes"), recorded, state, fp.get("named_by", ""),
                     link(rel(runs[0].path / "run.json", exp.path))])
        if len(by_hash) > 1:
            notes.append(f"- `{name}`: the runs read {len(by_hash)} different versions; their results may not be comparable.")
        if any((r.record.get("data") or {}).get(name, {}).get("changed_during_run") for r in runs):
            notes.append(f"- `{name}` changed while a run was running (the run wrote it, or something else did).")
    out = ["Data fingerprint (sha256 of each data file as the runs started; `head+tail` for files past 256 MiB):", "",
           table(["file", "bytes", "sha256 at run time", "today", "named by", "source"], rows)]
    return out + ([""] + notes if notes else [])


def _data_hashed_now(exp: Experiment, ok: list[RunView]) -> list[str]:
    """For runs that recorded no data: the files they would have (provenance.data_files), hashed now."""
    from assay.provenance import data_files, fingerprint

    files: dict[Path, str] = {}
    for r in ok:
        for p, source in data_files(exp.path, r.record.get("params") or {}, declared=exp.data).items():
            named = (f"param `{source.removeprefix('param ')}` of {link(rel(r.path / 'run.json', exp.path))}"
                     if source.startswith("param ") else link(rel(p, exp.path)))
            files.setdefault(p, named)
    if not files:
        return ["Data fingerprint: no data file found (no param names an existing file; no `data/` folder)."]
    rows = []
    for p, source in files.items():
        fp = fingerprint(p)
        rows.append([f"`{rel(p, exp.path)}`", fp["bytes"], fp["sha256"], source])
    return ["Data fingerprint (hashed now; the files may have changed since the runs):", "",
            table(["file", "bytes", "sha256 (16)", "named by"], rows)]


def results(exp: Experiment, runs: list[RunView], figures: list[Figure], value: str) -> str:
    ok = [r for r in runs if r.ignored is None and r.status == "ok"]
    m = exp.metric
    configs, varying = group_configs(ok)
    out = [f"`{m}` per configuration ({value} value of each run; 95% CI of the mean over seeds, Student t):", ""]
    rows = []
    for c in configs:
        vals = [v for r in c.runs if (v := r.value(m, value)) is not None and math.isfinite(v)]
        s = spread(vals, 0.95) if vals else None
        rows.append([c.label(varying), s.n if s else 0, num(s.mean) if s else "-",
                     num(s.std) if s else "-", f"[{num(s.lo)}, {num(s.hi)}]" if s and s.lo is not None else "-",
                     ", ".join(link(rel(r.path / "run.json", exp.path)) for r in c.runs)])
    out.append(table(["configuration", "n", "mean", "std", "95% CI", "source"], rows))
    for i, f in enumerate(figures, 1):
        image, data = rel(f.path, exp.path), rel(f.sidecar, exp.path)
        out += ["", f"![{f.title}]({image})", "", f"*Figure {i}: {f.title}. Plotted data and source files: {link(data)}.*"]
    out += ["", "Every run (including those left out of the table above):", ""]
    run_rows = []
    for r in runs:
        ms = (r.record.get("metrics") or {}).get(m) or {}
        run_rows.append([r.id.split("/", 1)[-1], r.status + (" (ignored)" if r.ignored is not None else ""), num(r.seed),
                         num(ms.get("last")), f"{num(ms.get('best'))} @ {num(ms.get('best_step'))}",
                         link(rel(r.path / records.METRICS_FILE, exp.path))])
    out.append(table(["run", "status", "seed", f"{m} last", f"{m} best @ step", "source"], run_rows))
    return "\n".join(out)


def discussion(exp: Experiment, runs: list[RunView]) -> str:
    from assay.journal import read_journal

    journal = exp.path / "JOURNAL.md"
    src = link("JOURNAL.md") if journal.exists() else "JOURNAL.md (absent)"
    out = [f"Journal entries tagged WEIRD, HUNCH or RESOLVED, quoted from {src}:", ""]
    lines = journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []
    entries = [e for e in read_journal(exp.path) if e.tag in ("WEIRD", "HUNCH", "RESOLVED")]
    for e in entries:
        line = next((i + 1 for i, x in enumerate(lines) if f"**{e.when}** [{e.tag}]" in x), None)
        out.append(f"- {e.when} [{e.tag}] \"{e.text}\"" + (f" (run `{e.run}`)" if e.run else "")
                   + (f" ({link('JOURNAL.md')}:{line})" if line else ""))
    if not entries:
        out.append("- (none)")
    out += ["", "Runs left out, with the recorded reason:", ""]
    left = [r for r in runs if r.ignored is not None or r.status != "ok"]
    for r in left:
        if r.ignored is not None:
            out.append(f"- `{r.id}` ({r.status}): ignored: {r.ignored} ({link('IGNORED_RUNS.md')})")
        else:
            log = r.path / records.LOG_FILE
            out.append(f"- `{r.id}`: **{r.status}**: {r.record.get('reason') or 'no reason recorded'} "
                       f"({link(rel(log if log.exists() else r.path / 'run.json', exp.path))})")
    if not left:
        out.append("- (none: every run finished ok and none is ignored)")
    return "\n".join(out)


def conclusion(exp: Experiment, v: Verdict) -> str:
    out = [f"Verdict: **{v.verdict.upper()}** (`assay verdict {exp.name}`; {v.value} value per run, "
           f"{v.per_config_confidence:.1%} confidence interval per configuration, {v.confidence:.0%} overall).", "",
           f"Reason: {v.reason}"]
    for i in v.decided_by:
        c = v.configurations[i]
        out += ["", f"Decided by configuration `{c.label}`:", ""]
        out.append(table(["criterion", "outcome", "n", "mean", "CI", "runs"],
                         [[f"{j.kind}: `{j.criterion.text}`", j.outcome, j.stats.get("n"), num(j.stats.get("mean")),
                           "[" + ", ".join(num(x) for x in j.stats["ci"]) + "]" if j.stats.get("ci") else "-",
                           ", ".join(link(s) for s in c.sources)] for j in c.judged]))
    if v.comparisons:
        out += ["", "Comparisons (confidence interval of the difference of the two sides' means):", ""]
        out.append(table(["criterion", "outcome", "n", "difference", "CI", "runs"],
                         [[f"{j.kind}: `{j.criterion.text}`", j.outcome, " vs ".join(map(str, j.stats.get("n") or [])) or 0,
                           num(j.stats.get("difference")),
                           "[" + ", ".join(num(x) for x in j.stats["ci"]) + "]" if j.stats.get("ci") else "-",
                           ", ".join(link(s) for s in j.stats.get("sources", []))] for j in v.comparisons]))
    if v.hint:
        out += ["", f"Next step to decide it: {v.hint}"]
    return "\n".join(out)
