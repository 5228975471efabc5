"""The ScorerService model server: the scorer behind a batcher, the optional generator, the routes,
on serving.server (KServe's ModelServer). The weights load on a thread after the server listens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from ..runtime.context import RunContext
from ..runtime.spec import Resource
from ..serving.batching import Batcher
from ..serving.metrics import ServingMetrics
from ..serving.server import LOCAL_HOST, POD_HOST, ServeOptions, serve
from .generator import Generator
from .model import Scorer
from .service import ScorerState, make_model, router


def build_state(name: str, batch_size: int, score_transform: str, load_scorer: Callable[[], Scorer],
                load_generator: Callable[[], Optional[Generator]]) -> tuple[ScorerState, Callable[[], None]]:
    """The routes' shared state (not ready), and the loader that fills it in and marks it ready."""
    holder: dict[str, Any] = {}
    metrics = ServingMetrics(name, "pairs")

    def forward(pairs: list[tuple[str, str]]) -> list[float]:
        return holder["scorer"].score(pairs, batch_size)

    state = ScorerState(name, Batcher(forward, batch_size, on_batch=metrics.batch), score_transform, metrics)

    def load() -> None:
        holder["scorer"] = load_scorer()
        state.generator = load_generator()
        if state.generator is not None:
            state.gen_executor = ThreadPoolExecutor(1, thread_name_prefix="glassbox-generator")

    return state, load


def options_for(ctx: RunContext) -> ServeOptions:
    """Loopback for glassbox run; every address in a pod (the serve stage the operator starts)."""
    host = ctx.host or (POD_HOST if ctx.stage == "serve" else LOCAL_HOST)
    return ServeOptions(host=host, port=8080 if ctx.port is None else ctx.port)


def run_server(resource: Resource, ctx: RunContext, load_scorer: Callable[[], Scorer],
               load_generator: Callable[[], Optional[Generator]]) -> int:
    spec = resource.spec
    state, load = build_state(resource.name, spec.batch_size, spec.score_transform, load_scorer, load_generator)
    model = make_model(state)

    def ready() -> None:
        state.ready = model.ready = True

    return serve([model], load=load, ready=ready, routers=[router(state)], options=options_for(ctx))
