"""Questions asked of the index: runs tables, filters, sorting, comparisons, run lookup, reindex.

Filtering and sorting happen in SQL (params and metric summaries are indexed tables), and only
the rows shown are fetched in full, so tables stay fast over tens of thousands of runs.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, StoreError, UnknownRunError, did_you_mean
from assay.experiment import goal_lookup
from assay.lab import Lab
from assay.store import records
from assay.store.index import Index, param_value, shared_index

COLUMNS = {"status": "r.status", "duration": "r.duration", "seed": "r.seed", "exit_code": "r.exit_code",
           "experiment": "r.experiment", "desc": "r.desc", "peak_rss": "r.peak_rss", "started": "r.started",
           "commit": "r.git_commit", "group": "r.group_id", "id": "r.id", "code": "r.code_label", "entry": "r.entry"}
_NUMERIC_COLUMNS = {"duration", "seed", "exit_code", "peak_rss", "started"}
_CLAUSE = re.compile(r"^\s*([A-Za-z_][\w./\-]*)\s*(>=|<=|==|!=|=|>|<|~)\s*(.+?)\s*$")


@dataclass(frozen=True)
class Filter:
    sql: str
    args: tuple[Any, ...]


def _field_sql(name: str, known_metrics: Any, known_params: Any) -> tuple[str, str]:
    """Map a user field to (kind, key): column, metric last/best, param, tag."""
    if name.startswith("params."):
        return "param", name[7:]
    if name.startswith("tags.") or name.startswith("tag."):
        return "tag", name.split(".", 1)[1]
    if name.startswith("metrics."):
        return "metric", name[8:]
    if name in COLUMNS:
        return "column", name
    if name in known_metrics:
        return "metric", name
    if name.startswith("best_") and name[5:] in known_metrics:
        return "best", name[5:]
    if name in known_params:
        return "param", name
    metrics, params = set(known_metrics), set(known_params)
    known = sorted(set(COLUMNS) | metrics | params | {f"best_{m}" for m in metrics})
    raise ConfigError(f"Unknown field '{name}' (not a column, metric or param)." + did_you_mean(name, known),
                      "Fields: " + ", ".join(known[:30]))


def _value(text: str) -> Any:
    from assay.config import parse_value

    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return parse_value(text)


def parse_where(expr: str, known_metrics: Any, known_params: Any) -> list[Filter]:
    """`val_f1>0.8 and lr<=1e-3, status=ok` -> SQL filters on the runs table `r`."""
    out = []
    for part in re.split(r"\s+and\s+|\s*,\s*|\s*&&\s*", expr.strip()):
        if not part:
            continue
        m = _CLAUSE.match(part)
        if not m:
            raise ConfigError(f"Cannot read filter '{part}'", "Write filters as field op value, e.g. --where \"val_f1>0.8 and lr<1e-3\".")
        name, op, raw = m.groups()
        if raw[0] in "<>=!~":
            raise ConfigError(f"Cannot read filter '{part}': '{op}{raw[0]}' is not an operator",
                              "Operators: > >= < <= = != ~ (contains), e.g. --where \"lr>=1e-3\".")
        op = "=" if op == "==" else op
        value = _value(raw)
        kind, key = _field_sql(name, known_metrics, known_params)
        numeric = kind in ("metric", "best") or (kind == "column" and key in _NUMERIC_COLUMNS)
        if numeric and op != "~" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"Cannot read filter '{part}': {name} is a number, '{raw}' is not",
                              f"Compare it with a number, e.g. --where \"{name}>0.5\".")
        if op == "~":
            cmp, arg = "LIKE", f"%{raw}%"
        else:
            cmp, arg = op, value
        if kind == "column":
            out.append(Filter(f"{COLUMNS[key]} {cmp} ?", (arg,)))
        elif kind in ("metric", "best"):
            col = "last" if kind == "metric" else "best"
            out.append(Filter(f"EXISTS (SELECT 1 FROM metrics m WHERE m.run_id=r.id AND m.key=? AND m.{col} {cmp} ?)", (key, arg)))
        elif kind == "param":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and op != "~":
                out.append(Filter(f"EXISTS (SELECT 1 FROM params p WHERE p.run_id=r.id AND p.key=? AND p.num {cmp} ?)", (key, value)))
            else:
                sval = arg if op == "~" else json.dumps(value)
                out.append(Filter(f"EXISTS (SELECT 1 FROM params p WHERE p.run_id=r.id AND p.key=? AND p.value {cmp} ?)", (key, sval)))
        else:
            out.append(Filter(f"EXISTS (SELECT 1 FROM tags t WHERE t.run_id=r.id AND t.key=? AND t.value {cmp} ?)", (key, str(value) if op != "~" else arg)))
    return out


class _Keys:
    """Metric or param names of an experiment, looked up one at a time through the key index
    (a DISTINCT over every run's rows costs ~50 ms at 10,000 runs; membership is a B-tree probe)."""

    def __init__(self, index: Index, table: str, experiment: str | None) -> None:
        self.db, self.table, self.experiment = index.db, table, experiment
        self._cache: dict[str, bool] = {}

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key not in self._cache:
            if self.experiment:
                sql = (f"SELECT 1 FROM {self.table} t JOIN runs r ON r.id=t.run_id "
                       "WHERE t.key=? AND r.experiment=? LIMIT 1")
                args: tuple[str, ...] = (key, self.experiment)
            else:
                sql, args = f"SELECT 1 FROM {self.table} WHERE key=? LIMIT 1", (key,)
            self._cache[key] = self.db.execute(sql, args).fetchone() is not None
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:  # only for error messages: all names
        where, args = ("WHERE r.experiment=?", (self.experiment,)) if self.experiment else ("", ())
        sql = f"SELECT DISTINCT t.key FROM {self.table} t JOIN runs r ON r.id=t.run_id {where}"
        return iter(sorted(k for (k,) in self.db.execute(sql, args)))


def _known(index: Index, experiment: str | None) -> tuple[_Keys, _Keys]:
    return _Keys(index, "metrics", experiment), _Keys(index, "params", experiment)


def list_runs(
    lab: Lab,
    experiment: str | None = None,
    where: str | None = None,
    sort: str | None = None,
    limit: int | None = 20,
    include_ignored: bool = False,
    offset: int = 0,
    count: bool = True,
    search: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Runs matching `where`, sorted (default: newest first), at most `limit`; returns (rows, total).

    The total counts every match, which with a filter means visiting every run (~10 ms at 10,000
    runs, 90% of a filtered page); `count=False` skips it and returns None, for callers that page
    forward without showing "N more". `search` keeps runs whose description or id contains it.

    `sort` is a field; best-first by its goal for metrics, or `field:asc` / `field:desc`.
    Each row: id, experiment, status, started, duration, peak_rss, seed, params, metrics, ignored.
    """
    from assay.experiment import load_experiment

    with shared_index(lab.index_path, experiments_dir=lab.experiments_dir) as index:
        metrics_known, params_known = _known(index, experiment)
        clauses, args = [], []
        if experiment:
            clauses.append("r.experiment=?")
            args.append(experiment)
        if not include_ignored:
            clauses.append("r.ignored=0")
        if search:
            clauses.append("(r.desc LIKE ? ESCAPE '\\' OR r.id LIKE ? ESCAPE '\\')")
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args.extend([like, like])
        for f in parse_where(where, metrics_known, params_known) if where else []:
            clauses.append(f.sql)
            args.extend(f.args)
        join, order = "", "r.started DESC"
        if sort:
            name, _, direction = sort.partition(":")
            desc_flag = name.startswith("-")
            name = name.lstrip("-")
            kind, key = _field_sql(name, metrics_known, params_known)
            if kind in ("metric", "best"):
                goal = load_experiment(lab, experiment).goal_of(key) if experiment else "max"
                col = "last" if kind == "metric" else "best"
                join = "LEFT JOIN metrics s ON s.run_id=r.id AND s.key=?"
                args.insert(0, key)
                expr = f"s.{col}"
                default_desc = goal == "max"
            elif kind == "param":
                join = "LEFT JOIN params s ON s.run_id=r.id AND s.key=?"
                args.insert(0, key)
                expr, default_desc = "COALESCE(s.num, s.value)", False
            elif kind == "column":
                expr, default_desc = COLUMNS[key], key in ("started", "duration", "peak_rss")
            else:
                raise ConfigError(f"Cannot sort by tag '{name}'", "Sort by a metric, param or column.")
            if direction not in ("", "asc", "desc"):
                raise ConfigError(f"Cannot read --sort '{sort}': '{direction}' is not asc or desc",
                                  f"Write --sort {name} (its goal's order), --sort {name}:asc or --sort {name}:desc.")
            descending = {"asc": False, "desc": True}.get(direction, default_desc) ^ desc_flag
            order = f"{expr} IS NULL, {expr} {'DESC' if descending else 'ASC'}, r.started DESC"
        sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        total = index.db.execute(f"SELECT COUNT(*) FROM runs r {join} {sql_where}", args).fetchone()[0] if count else None
        sql = (f"SELECT r.id, r.experiment, r.status, r.started, r.duration, r.peak_rss, r.seed, r.ignored, "
               f"r.reason, r.primary_metric, r.desc, r.path, r.group_id, r.cpu_hours, r.gpu_hours, r.money "
               f"FROM runs r {join} {sql_where} ORDER BY {order}")
        if limit:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = [{**dict(zip(("id", "experiment", "status", "started", "duration", "peak_rss", "seed", "ignored",
                             "reason", "primary_metric", "desc", "path", "group"), row[:13])), "cost": _cost(row[13:])}
                for row in index.db.execute(sql, args)]
        _refresh_running(lab, index, rows)
        _attach_details(index, rows)
    return rows, total


def _cost(cells: tuple[Any, ...]) -> dict[str, Any] | None:
    """A row's ledger columns as the `cost` of listings (None for a run recorded before the ledger)."""
    if all(c is None for c in cells):
        return None
    return dict(zip(("cpu_hours", "gpu_hours", "money"), cells))


def _refresh_running(lab: Lab, index: Index, rows: list[dict[str, Any]]) -> None:
    """A listed 'running' run whose process is gone is shown (and recorded) as lost."""
    for r in rows:
        if r["status"] != "running":
            continue
        path = Path(r["path"])
        try:
            record = records.read_record(path)
        except StoreError:
            continue
        record = records.mark_lost_if_dead(path, record, goal_lookup(lab.root, r["experiment"]))
        if record["status"] != "running":
            if not index.readonly:  # a read-only lab: shown as lost, recorded by the next writable reader
                index.upsert(path, record)
            r["status"], r["reason"] = record["status"], record.get("reason")


def _attach_details(index: Index, rows: list[dict[str, Any]]) -> None:
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["params"], r["metrics"], r["ignored"] = {}, {}, bool(r["ignored"])
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for rid, key, value in index.db.execute(f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", chunk):
            by_id[rid]["params"][key] = param_value(value)
        for rid, key, last, best, best_step, count in index.db.execute(
                f"SELECT run_id, key, last, best, best_step, count FROM metrics WHERE run_id IN ({marks})", chunk):
            by_id[rid]["metrics"][key] = {"last": last, "best": best, "best_step": best_step, "count": count}


def find_run(lab: Lab, ref: str) -> Path:
    """A run folder from `exp/folder`, a folder name, a unique prefix/suffix of one, or a path;
    `last` is the newest run of the lab, `NAME:last` the newest of experiment NAME."""
    if ref == "last" or ref.endswith(":last"):
        return _newest_run(lab, ref[: -len(":last")] if ref != "last" else None)
    p = Path(ref)
    if (p / records.RECORD_FILE).is_file():
        return p.resolve()
    with lab.index() as index:
        exact = index.db.execute("SELECT path FROM runs WHERE id=? OR folder=?", (ref, ref)).fetchall()
        if len(exact) == 1:
            return Path(exact[0][0])
        like = index.db.execute("SELECT path, id FROM runs WHERE id LIKE ? OR folder LIKE ? OR folder LIKE ?",
                                (f"{ref}%", f"{ref}%", f"%{ref}")).fetchall()
    if len(like) == 1:
        return Path(like[0][0])
    if not like and not exact:
        raise UnknownRunError(f"No run matches '{ref}'", "List runs with `assay runs`; if a folder is missing from the index run `assay reindex`.")
    ids = sorted(i for _, i in like)
    raise UnknownRunError(f"'{ref}' matches {len(ids)} runs: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}",
                   "Give more of the run id (experiment/folder).")


def _newest_run(lab: Lab, experiment: str | None) -> Path:
    """The run started last (ignored runs count: `last` is what ran last, not what is shown)."""
    if experiment is not None:
        lab.experiment_dir(experiment)  # a malformed name is a usage error naming it
    with lab.index() as index:
        row = index.db.execute("SELECT path FROM runs WHERE (? IS NULL OR experiment=?) ORDER BY started DESC LIMIT 1",
                               (experiment, experiment)).fetchone()
    if row is None:
        where = f"experiment '{experiment}'" if experiment else "this lab"
        raise UnknownRunError(f"No runs in {where}, so '{experiment + ':' if experiment else ''}last' names none",
                              "List runs with `assay runs`; if a folder is missing from the index run `assay reindex`.")
    return Path(row[0])


def show_run(lab: Lab, ref: str) -> dict[str, Any]:
    """The full record of a run (refreshing a dead 'running' run to 'lost'), plus ignore state."""
    path = find_run(lab, ref)
    record = records.mark_lost_if_dead(path, records.read_record(path))
    record["path"] = str(path)
    record["ignored"] = _ignored_reason(path)
    return record


def _ignored_reason(path: Path) -> str | None:
    from assay.journal import ignored_runs

    return ignored_runs(path.parent.parent).get(path.name)


# ------------------------------------------------------------------ compare


def compare(lab: Lab, experiment: str, by: list[str] | None = None, metric: str | None = None,
            include_ignored: bool = False, *, value: str = "last", pool_code: bool = False) -> dict[str, Any]:
    """Group an experiment's finished runs into configurations and summarize the metric per group.

    A group is the `by` params' values, the entry point and the code version (`pool_code` merges
    code versions; the pseudo-param `code` in `by` shows it as a column); `by` defaults to the
    params that vary between runs. Each run counts once per seed within its configuration (a repeat
    of a seed measured the same draw), as in `assay verdict`. `value` picks each run's `last`
    (final) or `best` value of the metric, the same rule every view uses.

    Returns {"experiment", "metric", "goal", "value", "by", "pool_code", "rows": [{<by values>, code, entry,
    n, mean, std, best, best_step, runs, failed, vs_best}], "best": index of the best row}. `best`
    and `best_step` in a row are its best run's value and step (the step only with value=best).
    `vs_best` is {delta, ci, within_noise}: the row's mean minus the best row's, with the 95%
    interval of that difference (Welch with repeats on both sides, else the seed noise pooled over
    all rows); within_noise says the interval contains 0, i.e. the gap may be luck.
    """
    from assay.experiment import load_experiment
    from assay.identity import dedupe_seeds
    from assay.report.evidence import check_value

    check_value(value)
    exp = load_experiment(lab, experiment)
    metric = metric or exp.metric
    goal = exp.goal_of(metric)
    hidden = "" if include_ignored else " AND r.ignored=0"
    with lab.index() as index:
        _, params_known = _known(index, experiment)
        if by is None:  # the params whose values differ between runs (the seed aside)
            by = [k for (k,) in index.db.execute(
                "SELECT p.key FROM params p JOIN runs r ON r.id=p.run_id WHERE r.experiment=? AND p.key!='seed'"
                f"{hidden} GROUP BY p.key HAVING COUNT(DISTINCT p.value) > 1 OR COUNT(*) < "
                f"(SELECT COUNT(*) FROM runs r WHERE r.experiment=?{hidden}) ORDER BY p.key", (experiment, experiment))]
        for key in by:
            if key != "code" and key not in params_known:
                known = set(params_known) | {"code"}
                raise ConfigError(f"Unknown param '{key}' for --by (known: {', '.join(sorted(known))})."
                                  + did_you_mean(key, known), "Pass params that vary across runs, e.g. --by lr,batch.")
        keys = [k for k in by if k != "code"]
        # Only the columns the table needs: one param subquery per --by key and the one metric.
        cols = "".join(f", (SELECT value FROM params p WHERE p.run_id=r.id AND p.key=?) AS b{i}" for i in range(len(keys)))
        sql = (f"SELECT r.id, r.status, r.seed, r.entry, r.code, r.code_label, r.config, m.{value}, m.{value}_step{cols}, "
               "r.cpu_hours, r.gpu_hours, r.money "
               "FROM runs r LEFT JOIN metrics m ON m.run_id=r.id AND m.key=? WHERE r.experiment=?"
               f"{hidden} AND r.status!='running' ORDER BY r.started, r.id")
        found = index.db.execute(sql, (*keys, metric, experiment)).fetchall()
    ok = [row for row in found if row[1] == "ok" and row[7] is not None]
    ok = list(dedupe_seeds(ok, key=lambda row: row[6], seed=lambda row: row[2]))
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    end = 9 + len(keys)  # row[9:end]: the --by params' JSON text; row[end:]: the run's cost columns

    def group(row: tuple[Any, ...]) -> dict[str, Any]:
        gkey = (*row[9:end], row[3], None if pool_code else row[4])  # the params' JSON text, as the index holds it
        if gkey not in groups:
            vals = [json.loads(v) if v is not None else None for v in row[9:end]]
            groups[gkey] = {**dict(zip(keys, vals)), "code": "pooled" if pool_code else row[5], "entry": row[3],
                            "values": [], "steps": [], "runs": [], "failed": 0,
                            "cost": {"cpu_hours": 0.0, "gpu_hours": 0.0, "money": None}}
        return groups[gkey]

    for row in ok:
        g = group(row)
        _add_cost(g["cost"], row[end:])
        g["values"].append(row[7])
        g["steps"].append(row[8])
        g["runs"].append(row[0])
    for row in found:
        if row[1] != "ok" or row[7] is None:
            if row[4] is None:  # died before its code version was recorded: count it where its params ran
                head = tuple(row[9:end])
                same = next((g for k, g in groups.items() if k[:len(keys)] == head and k[len(keys)] == row[3]), None)
                if same is not None:
                    same["failed"] += 1
                    _add_cost(same["cost"], row[end:])
                    continue
            group(row)["failed"] += 1
            _add_cost(group(row)["cost"], row[end:])  # a failed run cost as much as any
    out_rows = []
    values: dict[int, list[float]] = {}  # id(row) -> the values behind its mean
    for g in groups.values():
        vals = g.pop("values")
        steps = g.pop("steps")
        row = dict(g)
        values[id(row)] = vals
        row["n"] = len(vals)
        row["mean"] = statistics.fmean(vals) if vals else None
        row["std"] = statistics.stdev(vals) if len(vals) > 1 else None
        if vals:
            i = max(range(len(vals)), key=lambda j: vals[j] if goal == "max" else -vals[j])
            row["best"], row["best_step"] = vals[i], steps[i] if value == "best" else None
        else:
            row["best"] = row["best_step"] = None
        out_rows.append(row)
    scored = [r for r in out_rows if r["mean"] is not None and math.isfinite(r["mean"])]
    best = (max if goal == "max" else min)(scored, key=lambda r: r["mean"]) if scored else None
    try:
        out_rows.sort(key=lambda r: tuple((0, v) if isinstance(v, (int, float)) else (1, str(v))
                                          for v in [*(r[k] for k in keys), r["entry"] or "", r["code"] or ""]))
    except TypeError:
        pass
    best_i = next((i for i, r in enumerate(out_rows) if r is best), None)
    _versus_best(out_rows, best, values)
    return {"experiment": experiment, "metric": metric, "goal": goal, "value": value, "by": by, "pool_code": pool_code,
            "rows": out_rows, "best": best_i}


def _add_cost(total: dict[str, Any], cells: tuple[Any, ...]) -> None:
    cpu, gpu, money = (c if isinstance(c, (int, float)) else None for c in cells)
    total["cpu_hours"] += cpu or 0.0
    total["gpu_hours"] += gpu or 0.0
    if money is not None:
        total["money"] = (total["money"] or 0.0) + money


def comparison_columns(res: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The columns a `compare` result's rows are told apart by: its `by` params, then `entry` and
    `code` when asked for or when they differ between rows (the rule every table of it follows)."""
    keys = [k for k in res["by"] if k != "code"]
    extra = [k for k in ("entry", "code") if k in res["by"] or len({r[k] for r in res["rows"]}) > 1]
    return keys, extra


def _versus_best(rows: list[dict[str, Any]], best: dict[str, Any] | None, values: dict[int, list[float]]) -> None:
    """Each row's gap to the best row, with the 95% interval of the gap (the noise a reader must see)."""
    from assay.stats import difference_interval, pooled_sigma

    pooled = pooled_sigma(list(values.values()))
    for r in rows:
        r["vs_best"] = None
        if best is None or r is best or r["mean"] is None or not math.isfinite(r["mean"]):
            continue
        interval = difference_interval(values[id(r)], values[id(best)], 0.95, pooled)
        if interval is None:
            r["vs_best"] = {"delta": r["mean"] - best["mean"], "ci": None, "within_noise": None}
            continue
        delta, lo, hi, _ = interval
        r["vs_best"] = {"delta": delta, "ci": [lo, hi], "within_noise": lo <= 0 <= hi}


# ------------------------------------------------------------------ status / reindex


def running_and_lost(lab: Lab) -> dict[str, list[dict[str, Any]]]:
    """Runs recorded as running: still alive, or 'lost' (their process is gone; now recorded so)."""

    out: dict[str, list[dict[str, Any]]] = {"running": [], "lost": []}
    with lab.index() as index:
        rows = index.db.execute("SELECT id, path, experiment FROM runs WHERE status='running'").fetchall()
        for rid, path, exp in rows:
            p = Path(path)
            try:
                record = records.read_record(p)
            except StoreError:
                continue
            goal_of = goal_lookup(lab.root, exp)  # tolerates an unreadable experiment file
            record = records.mark_lost_if_dead(p, record, goal_of)
            if not index.readonly:
                index.upsert(p, record)
            item = {"id": rid, "path": path, "started": record.get("started"), "status": record["status"],
                    "reason": record.get("reason")}
            if record["status"] == "running":
                summary = records.summarize(p, goal_of)["metrics"]
                item["metrics"] = {k: v["last"] for k, v in summary.items()}
                item.update(_progress(record, summary))
                out["running"].append(item)
            elif record["status"] == "lost":
                out["lost"].append(item)
        recent_lost = index.db.execute("SELECT id, path, started, reason FROM runs WHERE status='lost' ORDER BY started DESC LIMIT 20").fetchall()
    seen = {i["id"] for i in out["lost"]}
    out["lost"] += [{"id": r[0], "path": r[1], "started": r[2], "status": "lost", "reason": r[3]} for r in recent_lost if r[0] not in seen]
    return out


def _progress(record: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """How far a running run is: its primary metric's last value and step (else the latest step of any
    metric), and the seconds since it started."""
    primary = record.get("primary_metric")
    own = (summary.get(primary) if primary else None) or {}
    steps = [s["last_step"] for s in summary.values() if s.get("last_step") is not None]
    started = record.get("started")
    return {"primary_metric": primary, "last": own.get("last"),
            "last_step": own.get("last_step") if own.get("last_step") is not None else max(steps, default=None),
            "elapsed": None if started is None else round(time.time() - float(started), 1)}


def reindex(lab: Lab, force: bool = False) -> dict[str, Any]:
    """Rebuild the index from the run folders. Returns counts and unreadable folders (with why).

    With `force`, a corrupt or newer-version index file is moved aside (to index.db.broken) first.
    """
    from assay.experiment import list_experiments
    from assay.journal import ignored_runs

    moved_aside = None
    if force and lab.index_path.exists():
        try:
            with lab.index() as index:  # a corrupt page deep in the file does not show at open: check them all
                broken = index.damaged() is not None
        except StoreError:
            broken = True
        if broken:
            for suffix in ("", "-wal", "-shm"):
                f = Path(str(lab.index_path) + suffix)
                if f.exists():
                    f.replace(Path(str(f) + ".broken"))
            moved_aside = str(lab.index_path) + ".broken"
    rows: list[tuple[Path, dict[str, Any], bool]] = []
    problems: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    lost = cleaned = 0
    for name in list_experiments(lab):
        exp_dir = lab.experiment_dir(name)
        goal_of = goal_lookup(lab.root, name)  # a broken experiment file still gets its runs listed
        ignored = ignored_runs(exp_dir)
        runs_dir = exp_dir / "runs"
        if not runs_dir.is_dir():
            continue
        cleaned += len(records.remove_stale_staging(runs_dir))
        for path in records.run_folders(runs_dir):
            try:
                record = records.read_record(path)
            except StoreError as exc:
                problems.append({"path": str(path), "error": exc.message})
                continue
            torn = records.torn_tail(path)
            if torn:  # a killed writer or a truncated copy: the runs' readers skip it; say so
                warnings.append({"path": str(path), "warning": f"{records.METRICS_FILE} ends in a torn line "
                                 f"({torn} bytes not read); the complete lines before it are indexed"})
            before = record.get("status")
            record = records.mark_lost_if_dead(path, record, goal_of)
            lost += before != record.get("status")
            if record.get("status") in records.FINISHED and "metrics" not in record:
                record["metrics"] = records.summarize(path, goal_of)["metrics"]
            record.setdefault("id", records.run_id(path))
            rows.append((path, record, path.name in ignored))
    with lab.index() as index:
        skipped = index.rebuild(rows)
    for path, why in skipped:
        problems.append({"path": str(path), "error": f"left out of the index: its run.json holds a value the "
                         f"index cannot store ({why}); the folder is untouched"})
    if cleaned:
        warnings.append({"path": str(lab.root), "warning": f"removed {cleaned} unfinished run folder(s) "
                         f"({records.STAGING_PREFIX}*) left by launches killed before their script started"})
    return {"runs": len(rows) - len(skipped), "newly_lost": lost, "problems": problems, "warnings": warnings,
            "moved_aside": moved_aside}
