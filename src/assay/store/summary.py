"""Questions asked of the index about whole experiments: run counts, what derived views depend on,
the metric and param names in use, and every finished run in a few queries (for the dashboard and
the verdict over thousands of runs). Runs tables and comparisons live in query.py.
"""

from __future__ import annotations

from typing import Any

from assay.store.index import Index, param_value


def finished_stamp(index: Index, experiment: str) -> tuple[int, float | None, int | None, int | None]:
    """(finished runs, newest end, ignored among them, ok among them) of `experiment`: what changes
    when a run finishes or is ignored. Counts exclude running runs."""
    count, ended, ignored, ok = index.db.execute(
        "SELECT COUNT(*), MAX(ended), SUM(ignored), SUM(status='ok') FROM runs WHERE experiment=? AND status!='running'",
        (experiment,)).fetchone()
    return count, ended, ignored, ok


def experiment_counts(index: Index) -> dict[str, tuple[int, int, float | None]]:
    """{experiment: (shown runs, running among them, newest start)}, ignored runs left out."""
    return {e: (n, running or 0, last) for e, n, running, last in index.db.execute(
        "SELECT experiment, COUNT(*), SUM(status='running'), MAX(started) FROM runs WHERE ignored=0 GROUP BY experiment")}


def key_names(index: Index, experiment: str, limit: int = 200) -> tuple[list[str], list[str]]:
    """(metric names, param names) the runs of `experiment` use, at most `limit` of each."""
    metrics = [k for (k,) in index.db.execute(
        "SELECT DISTINCT m.key FROM metrics m JOIN runs r ON r.id=m.run_id WHERE r.experiment=? LIMIT ?",
        (experiment, limit))]
    params = [k for (k,) in index.db.execute(
        "SELECT DISTINCT p.key FROM params p JOIN runs r ON r.id=p.run_id WHERE r.experiment=? LIMIT ?",
        (experiment, limit))]
    return metrics, params


def finished_runs(index: Index, experiment: str, metrics: list[str]) -> list[dict[str, Any]]:
    """The finished runs of `experiment` as the index holds them, in three queries whatever their number.

    Each: id, status, seed, started, path, reason, ignored (bool), entry, code ({fingerprint, label}
    or None), params (flat keys such as `optim.lr`, values decoded) and metrics ({key: {last, best}}
    for the `metrics` asked for). Running runs are left out.
    """
    runs: dict[str, dict[str, Any]] = {}
    for rid, status, seed, started, path, reason, ignored, entry, code, label in index.db.execute(
            "SELECT id, status, seed, started, path, reason, ignored, entry, code, code_label FROM runs "
            "WHERE experiment=? AND status!='running'", (experiment,)):
        runs[rid] = {"id": rid, "status": status, "seed": seed, "started": started, "path": path, "reason": reason,
                     "ignored": bool(ignored), "entry": entry,
                     "code": {"fingerprint": code, "label": label} if code else None, "params": {}, "metrics": {}}
    for rid, key, value in index.db.execute(
            "SELECT p.run_id, p.key, p.value FROM params p JOIN runs r ON r.id=p.run_id "
            "WHERE r.experiment=? AND r.status!='running'", (experiment,)):
        if rid in runs:
            runs[rid]["params"][key] = param_value(value)
    marks = ",".join("?" * len(metrics))
    for rid, key, last, best in index.db.execute(
            f"SELECT m.run_id, m.key, m.last, m.best FROM metrics m JOIN runs r ON r.id=m.run_id "
            f"WHERE r.experiment=? AND r.status!='running' AND m.key IN ({marks})", (experiment, *metrics)):
        if rid in runs:
            runs[rid]["metrics"][key] = {"last": last, "best": best}
    return list(runs.values())
