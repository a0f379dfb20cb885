"""The dashboard's ASGI app: a read-only JSON API over the lab and the static front end.

    GET /                                 the single-page front end (static/index.html)
    GET /api/health                       {"ok": true, "lab": ...}
    GET /api/experiments                  experiments with run counts, best metric, verdict
    GET /api/experiments/{name}           experiment file, README, metric and param names
    GET /api/experiments/{name}/runs      a page of the runs table (?where ?q ?sort ?offset ?limit ?all)
    GET /api/experiments/{name}/loop      results.tsv rows
    GET /api/experiments/{name}/journal   JOURNAL.md entries, IGNORED_RUNS.md
    GET /api/experiments/{name}/report    REPORT.md text
    GET /api/run/{experiment}/{folder}    one run: record, log tail, diff, environment, plots
    GET /api/experiments/{name}/compare   configurations: compare + verdict tables, mean curves with 95% bands
    GET /api/experiments/{name}/sweeps    the experiment's sweeps (id, status, trials, best)
    GET /api/experiments/{name}/sweeps/{id}  one sweep: trials, best so far, space, param importance
    GET /api/diff                         ?a=RUN&b=RUN: params, metrics, code (git diff + patches), environment
    GET /api/series                       ?runs=a,b&keys=k&points=N&x=step|epoch|time: metric series, LTTB-downsampled
    GET /api/file                         ?path=...: a file under experiments/ (images, text)

Only GET and HEAD are served: nothing in the dashboard changes the lab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.errors import AssayError, ConfigError
from assay.lab import Lab
from assay.web import data
from assay.web.guard import Guard
from assay.web.series import SeriesCache

STATIC = Path(__file__).parent / "static"
MAX_POINTS = 10_000
MAX_RUNS = 20  # runs overlaid in one chart request
MAX_PAGE = 500


def _int(request: Any, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"Query parameter {name}={raw!r} is not a whole number", f"Pass {name}={default}.") from None
    if not lo <= value <= hi:
        raise ConfigError(f"Query parameter {name}={value} is out of range", f"Pass {lo} <= {name} <= {hi}.")
    return value


def create_app(lab: Lab, token: str | None = None, allowed_hosts: list[str] | None = None) -> Any:
    """The Starlette app for `lab`.

    Args:
        lab: the lab to show.
        token: when set, every request must carry it (Authorization: Bearer, the assay_token_PORT cookie,
            or ?token= once, which sets the cookie).
        allowed_hosts: Host header names accepted (None: any). Serving on loopback passes the
            loopback names, so a web page elsewhere cannot reach the API by DNS rebinding.

    Returns:
        An ASGI application.
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    cache = SeriesCache(size=256)  # a compare view of 20 configurations x 5 seeds stays parsed

    def ok(content: Any) -> JSONResponse:
        return JSONResponse(data.json_safe(content), headers={"Cache-Control": "no-store"})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    def health(request: Request) -> JSONResponse:
        return ok({"ok": True, "lab": lab.root.name, "read_only": True})

    def experiments(request: Request) -> JSONResponse:
        return ok({"experiments": data.experiments(lab)})

    def experiment(request: Request) -> JSONResponse:
        return ok(data.experiment_detail(lab, request.path_params["name"]))

    def runs(request: Request) -> JSONResponse:
        q = request.query_params
        return ok(data.runs_page(lab, request.path_params["name"], q.get("where") or None, q.get("sort") or None,
                                 _int(request, "offset", 0, 0, 10**9), _int(request, "limit", 50, 1, MAX_PAGE),
                                 q.get("all", "") in ("1", "true", "yes"), q.get("q") or None))

    def loop(request: Request) -> JSONResponse:
        return ok(data.loop_results(lab, request.path_params["name"]))

    def journal(request: Request) -> JSONResponse:
        return ok(data.journal(lab, request.path_params["name"]))

    def report(request: Request) -> JSONResponse:
        return ok(data.report(lab, request.path_params["name"]))

    def run(request: Request) -> JSONResponse:
        rid = f"{request.path_params['experiment']}/{request.path_params['folder']}"
        record = data.run(lab, rid)
        record["metric_keys"] = cache.keys(data.run_dir(lab, rid))
        return ok(record)

    def series(request: Request) -> JSONResponse:
        ids = [r for r in request.query_params.get("runs", "").split(",") if r]
        if not ids:
            raise ConfigError("No runs given", "Pass ?runs=EXPERIMENT/FOLDER[,...]")
        if len(ids) > MAX_RUNS:
            raise ConfigError(f"{len(ids)} runs asked for; at most {MAX_RUNS} per chart", "Select fewer runs.")
        keys = [k for k in request.query_params.get("keys", "").split(",") if k] or None
        points = _int(request, "points", 1000, 2, MAX_POINTS)
        x = request.query_params.get("x") or "step"
        return ok({"points": points, "x": x,
                   "runs": {rid: cache.series(data.run_dir(lab, rid), keys, points, x) for rid in ids}})

    def compare(request: Request) -> JSONResponse:
        from assay.web.compare import GRID, compare_view

        q = request.query_params
        by = [k for k in (q.get("by") or "").split(",") if k] or None
        picked = [r for r in (q.get("runs") or "").split(",") if r] or None
        return ok(compare_view(lab, request.path_params["name"], cache, value=q.get("value") or "last", by=by,
                               curve=q.get("curve") or None, x=q.get("x") or "step",
                               points=_int(request, "points", GRID, 2, MAX_POINTS),
                               pool_code=q.get("pool_code", "") in ("1", "true", "yes"), runs=picked))

    def sweep_list(request: Request) -> JSONResponse:
        from assay.web.sweeps import sweeps

        return ok(sweeps(lab, request.path_params["name"]))

    def sweep_one(request: Request) -> JSONResponse:
        from assay.web.sweeps import sweep

        return ok(sweep(lab, request.path_params["name"], request.path_params["sweep"]))

    def diff(request: Request) -> JSONResponse:
        from assay.web.rundiff import run_diff

        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            raise ConfigError("A run diff needs two runs", "Pass ?a=EXPERIMENT/FOLDER&b=EXPERIMENT/FOLDER.")
        return ok(run_diff(lab, a, b))

    def file(request: Request) -> Response:
        path = data.lab_file(lab, request.query_params.get("path", ""))
        kind = data.IMAGE_TYPES.get(path.suffix.lower())
        # Anything not a known image goes out as plain text, so an .html or .js file in a run
        # folder is shown, never executed; the sandbox CSP covers SVG images opened directly.
        headers = {"Content-Security-Policy": "sandbox", "Cache-Control": "no-store"}
        if kind:
            return FileResponse(path, media_type=kind, headers=headers)
        return Response(data._text(path), media_type="text/plain; charset=utf-8", headers=headers)

    async def assay_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AssayError)
        status = 404 if isinstance(exc, LookupError) else 400
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=status)

    name = "{name:str}"
    routes = [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/api/health", health),
        Route("/api/experiments", experiments),
        Route(f"/api/experiments/{name}", experiment),
        Route(f"/api/experiments/{name}/runs", runs),
        Route(f"/api/experiments/{name}/loop", loop),
        Route(f"/api/experiments/{name}/compare", compare),
        Route(f"/api/experiments/{name}/journal", journal),
        Route(f"/api/experiments/{name}/sweeps", sweep_list),
        Route(f"/api/experiments/{name}/sweeps/{{sweep:str}}", sweep_one),
        Route("/api/diff", diff),
        Route(f"/api/experiments/{name}/report", report),
        Route("/api/run/{experiment:str}/{folder:str}", run),
        Route("/api/series", series),
        Route("/api/file", file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token, allowed_hosts=allowed_hosts)],
                     exception_handlers={AssayError: assay_error})
