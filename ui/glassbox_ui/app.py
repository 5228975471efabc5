"""The web app: JSON endpoints over the catalog and the page that draws them (Starlette, uvicorn).

    GET  /                                    the page (static/index.html; views by URL hash)
    GET  /api/runs?kind=&q=                   every run: kind, name, namespace, state, progress, updated
    GET  /api/runs/NS/KIND/LEAF               a run's record, checkpoints, lineage and kind facts
    GET  /api/runs/NS/KIND/LEAF/charts        its curves (chart specs; `updated` to poll on)
    GET  /api/runs/NS/KIND/LEAF/table/NAME    a page of tuples | prompts | scores | curve
         ?offset=0&limit=1000&sort=COL&desc=1&q=TEXT&relation=NAME
    POST /api/playground/rank | chat          forwarded to the endpoint the user gave

Every error is JSON {"error": message} with a status (404 missing, 502 store or endpoint, 400 bad
request); the page shows the message. Nothing answers a stack trace.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from glassbox_api.manifest import Manifest
from glassbox_api.store import ArtifactStore, StoreError

from . import playground, views
from .catalog import Catalog, UiError, list_runs, run_detail, version
from .files import FileCache, Table, TableCache, page

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("glassbox.ui")


def _prefix(request: Request) -> str:
    p = request.path_params
    return f"{p['ns']}/{p['kind']}/{p['leaf']}"


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        raise UiError(f"{name} must be an integer, got {raw!r}") from None


def guarded(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """A sync endpoint whose errors become {"error": message} (run in Starlette's thread pool)."""

    def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(fn(request))
        except UiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except StoreError as exc:
            return JSONResponse({"error": f"store error: {exc}"}, status_code=502)
        except Exception as exc:  # noqa: BLE001 - the page gets a message, the log gets the trace
            log.exception("ui endpoint %s failed", request.url.path)
            return JSONResponse({"error": f"internal error ({type(exc).__name__}): {exc}"}, status_code=500)

    endpoint.__name__ = fn.__name__
    return endpoint


class Api:
    """The JSON endpoints over one store."""

    def __init__(self, store: ArtifactStore):
        self.cat = Catalog(store)
        self.cache = FileCache()
        self.tables = TableCache()

    def runs(self, request: Request) -> dict[str, Any]:
        kind, q = request.query_params.get("kind", "").lower(), request.query_params.get("q", "").lower()
        rows = [r for r in list_runs(self.cat) if (not kind or r["kind"].lower() == kind)
                and (not q or q in f"{r['kind']} {r['namespace']} {r['name']} {r['state']}".lower())]
        return {"store": self.cat.store.uri(), "runs": rows}

    def run(self, request: Request) -> dict[str, Any]:
        prefix = _prefix(request)
        detail = run_detail(self.cat, prefix)
        m = self.cat.manifest(prefix) or Manifest()
        if views.relations(m):
            detail["relations"] = [{k: v for k, v in e.items() if k != "files"} for e in views.relations(m)]
        if detail["kind"] == "MetricEval" and m.final:
            try:
                detail["summary"] = views.summary(self.cat, self.cache, prefix, m)
            except UiError as exc:
                detail["summaryError"] = exc.message
        return detail

    def charts(self, request: Request) -> dict[str, Any]:
        return views.charts(self.cat, self.cache, _prefix(request))

    def _table(self, prefix: str, name: str, m: Manifest, relation: Optional[str]) -> Table:
        """A table, read from the files the manifest lists."""
        if name == "tuples":
            return views.tuples(self.cat, self.cache, prefix, m, relation)
        if name == "prompts":
            if not relation:
                raise UiError("prompts need ?relation=NAME")
            return Table(views.prompts(self.cat, self.cache, prefix, m, relation))
        if name == "scores":
            spec = (self.cat.record(prefix) or {}).get("spec") or {}
            return Table(*views.scores_with_texts(self.cat, self.cache, prefix, m, spec))
        if name == "curve":
            return Table(views.curve_points(self.cat, self.cache, prefix, m))
        raise UiError(f"no table {name!r} (tuples, prompts, scores, curve)", 404)

    def table(self, request: Request) -> dict[str, Any]:
        prefix, name = _prefix(request), request.path_params["table"]
        qp = request.query_params
        m = self.cat.manifest(prefix)
        if m is None:
            raise UiError(f"{self.cat.run(prefix).uri()} has no manifest yet: nothing published", 404)
        relation = qp.get("relation") or None
        key = (prefix, name, relation or "", version(m))
        table = self.tables.get(key, lambda: self._table(prefix, name, m, relation))
        out = page(table, offset=_int(request, "offset", 0), limit=_int(request, "limit", 1000),
                   sort=qp.get("sort") or None, desc=qp.get("desc") in ("1", "true"), q=qp.get("q", ""))
        return {**out, "note": table.note, "version": key[-1]}


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise UiError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise UiError("the request body must be a JSON object")
    return body


def _playground(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            return JSONResponse(await run_in_threadpool(fn, await _json_body(request)))
        except UiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)

    return endpoint


def create_app(store: ArtifactStore) -> Starlette:
    """The app over one store (tests pass a store; `glassbox ui` opens one from --store)."""
    api = Api(store)
    run_path = "/api/runs/{ns}/{kind}/{leaf}"
    routes = [
        Route("/", lambda request: FileResponse(STATIC / "index.html")),
        Route("/api/runs", guarded(api.runs)),
        Route(run_path, guarded(api.run)),
        Route(run_path + "/charts", guarded(api.charts)),
        Route(run_path + "/table/{table}", guarded(api.table)),
        Route("/api/playground/rank", _playground(playground.rank), methods=["POST"]),
        Route("/api/playground/chat", _playground(playground.chat), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def serve(store_uri: str, host: str = "127.0.0.1", port: int = 8265) -> None:
    """Open the store and serve until Ctrl-C; port 0 picks a free port (the line printed says which)."""
    import socket

    import uvicorn

    from glassbox_api.store import open_store

    app = create_app(open_store(store_uri))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections queue from now on, so the URL printed next already answers
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"glassbox ui: http://{shown}:{sock.getsockname()[1]}  (store {store_uri})", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
