"""Serve kserve.Models with KServe's ModelServer: the same program locally and in an InferenceService.

What it adds to `ModelServer().start()` (kserve 0.21): the host it binds (KServe hard-codes 0.0.0.0;
`glassbox run` and the tests stay on 127.0.0.1), `--port 0` for a free port, gRPC off, extra FastAPI
routers, and weights loaded on a thread after the server listens, so health, liveness and /metrics
answer from the start and readiness turns true only once the weights are in. It prints
`serving: http://HOST:PORT` when ready and returns 0 after SIGTERM/SIGINT, once in-flight requests
are done.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

log = logging.getLogger("glassbox.serving")

DEFAULT_PORT = 8080
POD_HOST = "0.0.0.0"
LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServeOptions:
    """Where and how the server listens."""

    host: str = LOCAL_HOST
    port: int = DEFAULT_PORT
    """0 picks a free port."""
    grace_seconds: int = 30
    """How long requests in flight may take to finish after SIGTERM."""
    announce: Callable[[str], None] = lambda line: print(line, flush=True)
    """Where the `serving: URL` line goes once ready."""
    access_log: bool = False
    """A log line per request (uvicorn's access log and KServe's timing lines); off by default, since
    per-request logging costs throughput and /metrics already counts and times every request."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: the kernel picks); uvicorn serves on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = LOCAL_HOST if host in ("0.0.0.0", "") else host
    return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}"


def _rest_server(models: Sequence[Any], routers: Sequence[Any], port: int, grace: int, access_log: bool) -> Any:
    """KServe's REST server with the models registered (not yet ready) and the extra routers."""
    import kserve
    from kserve import model_server as ms
    from kserve.protocol.rest.server import RESTServer

    server = kserve.ModelServer(http_port=port, enable_grpc=False, grace_period=grace, enable_latency_logging=access_log)
    if not access_log:
        for name in ("kserve.trace", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for m in models:
        server.register_model(m)  # registered while loading: v1/v2 readiness says false until then
    for r in routers:
        ms.app.include_router(r)
    rest = RESTServer(ms.FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port,
                      grace_period=grace)
    rest.create_application()
    return rest


async def _serve(rest: Any, sock: socket.socket, load: Callable[[], None], ready: Callable[[], None],
                 options: ServeOptions) -> None:
    uv = rest._server  # the uvicorn.Server KServe configured (its app, middlewares, exception handlers)
    serving = asyncio.create_task(uv.serve(sockets=[sock]))
    try:
        await asyncio.get_running_loop().run_in_executor(None, load)
    except BaseException:
        uv.should_exit = True
        await serving
        raise
    ready()
    while not uv.started and not serving.done():
        await asyncio.sleep(0.01)
    if not serving.done():
        options.announce(f"serving: {url_of(sock, options.host)}")
    await serving


def _drained(sig: int, frame: Any) -> None:
    log.info("signal %d after the server drained", sig)


def serve(models: Sequence[Any], *, load: Callable[[], None], ready: Callable[[], None],
          routers: Sequence[Any] = (), options: Optional[ServeOptions] = None) -> int:
    """Listen, load the weights (load, on a thread), mark the models ready, serve until a signal."""
    options = options or ServeOptions()
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    rest = _rest_server(models, routers, port, options.grace_seconds, options.access_log)
    rest.config.host = options.host
    # uvicorn handles SIGTERM/SIGINT while it serves (drain, shut down) and raises the signal again
    # afterwards for the handler it found installed: make that one a no-op, so a drained server
    # exits 0 (Kubernetes, `glassbox run`) instead of dying by the signal.
    previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(_serve(rest, sock, load, ready, options))
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("model server on port %d stopped", port)
    sys.stdout.flush()
    return 0
