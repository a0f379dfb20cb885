"""Output for people (Rich tables on a terminal, plain columns otherwise) and agents (--json)."""


import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def is_tty() -> bool:
    return sys.stdout.isatty()


def emit_json(data: Any) -> None:
    from assay.api import json_safe

    sys.stdout.write(json.dumps(json_safe(data), indent=1, default=str, allow_nan=False) + "\n")


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def varying_params(rows: list[dict[str, Any]], limit: int = 6) -> list[str]:
    """The param keys whose shown value differs between rows (a key some rows lack counts as '-'),
    sorted, at most `limit`, seed left out. One pass over the rows: comparing every row with every
    other took 113 s for 10,000 runs."""
    values: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    for r in rows:
        for k, v in r["params"].items():
            values.setdefault(k, set()).add(fmt(v))
            present[k] = present.get(k, 0) + 1
    for k, n in present.items():
        if n < len(rows):
            values[k].add(fmt(None))
    return sorted(k for k, shown in values.items() if len(shown) > 1 and k != "seed")[:limit]


def versus_best(row: dict[str, Any], is_best: bool) -> str:
    """A compare row's gap to the best row: `-0.012 ± 0.008`, flagged when the noise covers it."""
    if is_best:
        return "best"
    vs = row.get("vs_best")
    if not vs:
        return "-"
    if vs["ci"] is None:
        return f"{vs['delta']:+.3g} (noise unknown)"
    half = (vs["ci"][1] - vs["ci"][0]) / 2
    return f"{vs['delta']:+.3g} ± {half:.2g}" + (" (within noise)" if vs["within_noise"] else "")


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M") if ts else "-"


def table(headers: list[str], rows: list[list[str]], highlight: int | None = None, title: str | None = None) -> None:
    """Print a table: Rich on a TTY (best row bold green), aligned text with a '*' marker otherwise."""
    if is_tty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
        for h in headers:
            t.add_column(h, overflow="fold")
        for i, row in enumerate(rows):
            t.add_row(*row, style="bold green" if i == highlight else None)
        Console().print(t)
        return
    if title:
        print(title)
    mark = highlight is not None
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print(("  " if mark else "") + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for i, row in enumerate(rows):
        prefix = ("* " if i == highlight else "  ") if mark else ""
        print(prefix + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def compare_table(cmp: Any, name: str, cost: bool = False) -> None:
    """The comparison table (an api.Comparison): a `code` column when code versions differ, `best_<metric>` under --value best."""
    keys, extra = cmp.columns()
    res = cmp.to_dict()
    rows = res["rows"]
    m = res["metric"] if res["value"] == "last" else f"best_{res['metric']}"
    step = ["best_step" if not any("epoch" in str(k) for k in keys) else "best_epoch"] if res["value"] == "best" else []
    headers = [*keys, *extra, f"{m} (mean ± std)", *step, "n", "vs best (95% CI)"]
    body = []
    for i, r in enumerate(rows):
        val = fmt(r["mean"]) + (f" ± {fmt(r['std'])}" if r["std"] is not None else "")
        body.append([*(fmt(r[k]) for k in keys), *(str(r[k]) for k in extra), val, *([fmt(r["best_step"])] if step else []),
                     str(r["n"]) + (f" (+{r['failed']} failed)" if r["failed"] else ""), versus_best(r, i == res["best"])])
    if cost:
        headers, body = with_cost(headers, body, [r.get("cost") for r in rows])
    table(headers, body, highlight=res["best"], title=f"{name}: {m} ({res['goal']} is better)")


def with_cost(headers: list[str], body: list[list[str]], costs: list[dict[str, Any] | None]) -> tuple[list[str], list[list[str]]]:
    """The table with the cost ledger's columns added (`--cost`): GPU-hours, CPU-hours, and money
    when any row has a price ('-': a run recorded before the ledger)."""
    priced = any(c and c.get("money") is not None for c in costs)
    extra = ["gpu_h", "cpu_h", *(["money"] if priced else [])]
    rows = []
    for row, c in zip(body, costs):
        cells = ["-"] * len(extra) if not c else [f"{c.get('gpu_hours') or 0:.3g}", f"{c.get('cpu_hours') or 0:.3g}",
                                                  *([fmt(c.get("money"))] if priced else [])]
        rows.append([*row, *cells])
    return [*headers, *extra], rows


def cost_line(cost: dict[str, Any]) -> str:
    """`cost: 0.512 gpu-h, 0.0431 cpu-h, 1.28 USD (12 runs)` from the ledger's totals."""
    money = f", {cost['money']:.2f} {cost['currency']}" if cost.get("money") is not None else ""
    return f"cost: {cost['gpu_hours']:.3g} gpu-h, {cost['cpu_hours']:.3g} cpu-h{money} ({cost['runs']} runs)"


def ask_on_tty() -> Any:
    """typer.confirm when a person can answer (stdin and stdout are terminals), else None."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    import typer

    return lambda question: typer.confirm(question, default=False)


def runs_table(res: Any, name: str | None, where: str | None, value: str, cost: bool = False) -> None:
    """`assay runs`: one row per run, the params that vary, up to three metric columns."""
    from assay.config import format_bytes, format_duration

    rows, total = res.runs, res.total
    if not rows:
        print("no runs" + (f" match '{where}'" if where else "") + (f" in {name}" if name else ""))
        return
    varying = varying_params(rows)
    metric_keys = list(dict.fromkeys(r["primary_metric"] for r in rows if r["primary_metric"]))[:3]
    headers = ["run", "status", *(m if value == "last" else f"best_{m}" for m in metric_keys), *varying, "time", "mem", "started"]
    body = []
    for r in rows:
        rid = r["id"] if not name else r["id"].split("/", 1)[1]
        body.append([rid + (" (ignored)" if r["ignored"] else ""), r["status"],
                     *(fmt((r["metrics"].get(m) or {}).get(value)) for m in metric_keys),
                     *(fmt(r["params"].get(k)) for k in varying),
                     format_duration(r["duration"]), format_bytes(r["peak_rss"]), when(r["started"])])
    if cost:
        headers, body = with_cost(headers, body, [r.get("cost") for r in rows])
    table(headers, body)
    if total > len(rows):
        print(f"({total - len(rows)} more; --limit 0 shows all)")


def run_details(res: Any) -> None:
    """`assay show`: a run's record in a few lines."""
    from assay.config import flatten, format_bytes, format_duration

    rec = res.to_dict()
    print(f"{rec['id']}  {rec['status']}" + (f"  ({rec['reason']})" if rec.get("reason") else ""))
    if rec.get("ignored"):
        print(f"ignored: {rec['ignored']}")
    print(f"started {when(rec.get('started'))}  duration {format_duration(rec.get('duration'))}  "
          f"peak {format_bytes(rec.get('peak_rss'))}" + (f"  gpu {format_bytes(rec['peak_gpu_mem'])}" if rec.get("peak_gpu_mem") else "")
          + f"  exit {fmt(rec.get('exit_code'))}")
    print("params: " + ", ".join(f"{k}={fmt(v)}" for k, v in flatten(rec.get("params") or {}).items()))
    for k, s in (rec.get("metrics") or {}).items():
        print(f"  {k}: last {fmt(s.get('last'))} @ {s.get('last_step')}, best {fmt(s.get('best'))} @ {s.get('best_step')} ({s.get('count')} points)")
    git = rec.get("git") or {}
    if git:
        print(f"git: {(git.get('commit') or '-')[:10]} on {git.get('branch')}" + (f", dirty ({len(git['dirty'])} files, patch {git.get('patch')})" if git.get("dirty") else ""))
    for w in rec.get("warnings", []):
        print(f"warning: {w}")
    print(f"log: {Path(rec['path']) / 'logs' / 'output.log'}")


def running_and_lost(res: Any) -> None:
    """`assay status`: the runs in progress with their latest metrics, then the lost ones."""
    for r in res.running:
        last = ", ".join(f"{k}={fmt(v)}" for k, v in list(r.get("metrics", {}).items())[:4])
        step = f"  step {r['last_step']}" if r.get("last_step") is not None else ""
        print(f"running  {r['id']}  since {when(r['started'])}{step}  {last}")
    for r in res.lost:
        print(f"lost     {r['id']}  started {when(r['started'])}")
    if not res.running and not res.lost:
        print("nothing running, nothing lost")
