"""The ScorerService's routes on the model server.

- KServe v1 `POST /v1/models/NAME:predict` `{"instances": [{"instruction", "response"}]}` ->
  `{"predictions": [score, ...]}` and v2 `POST /v2/models/NAME/infer` with BYTES inputs
  `instruction` and `response` -> FP32 output `score` (scores shown through scoreTransform);
- `POST /v1/models/NAME:rank` `{"instruction", "candidates": [...]}` -> candidates best first by raw score;
- with a generator: `POST /v1/models/NAME:generate` `{"instruction"}` -> the candidates and the best,
  and `POST /openai/v1/completions` (OpenAI's completions shape) answering with the boosted completion.

Pairs from concurrent requests share forward passes (serving.batching); generation runs on its own
thread. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

from fastapi import APIRouter, Request  # module level: FastAPI reads the routes' annotations from here

from ..serving.batching import Batcher
from ..serving.metrics import ServingMetrics
from ..serving.requests import Limits, invalid, items, obj, parse_json, text
from .boost import pick
from .generator import Generator
from .select import rank_order, transform


@dataclass
class ScorerState:
    """What the routes share: the batcher over the scorer, the generator, settings and metrics."""

    name: str
    batcher: Batcher
    transform: str
    metrics: ServingMetrics
    limits: Limits = Limits()
    generator: Optional[Generator] = None
    gen_executor: Optional[ThreadPoolExecutor] = None
    ready: bool = False

    async def raw_scores(self, pairs: list[tuple[str, str]]) -> list[float]:
        return await self.batcher.submit(pairs)

    def shown(self, raw: float) -> float:
        return transform(raw, self.transform)


def _pairs(instances: Any, limits: Limits) -> list[tuple[str, str]]:
    out = []
    for i, inst in enumerate(items(instances, "instances", limits)):
        o = obj(inst, f"instances[{i}]")
        out.append((text(o.get("instruction"), f"instances[{i}].instruction", limits),
                    text(o.get("response"), f"instances[{i}].response", limits)))
    return out


def _v2_pairs(request: Any, limits: Limits) -> list[tuple[str, str]]:
    cols: dict[str, list[str]] = {}
    for inp in request.inputs:
        if inp.name in ("instruction", "response"):
            data = inp.data if inp.data is not None else []
            cols[inp.name] = [d.decode() if isinstance(d, (bytes, bytearray)) else d for d in data]
    for name in ("instruction", "response"):
        if name not in cols:
            raise invalid(f"inputs.{name}", "is required (a BYTES tensor of texts)")
    n = len(cols["instruction"])
    if n != len(cols["response"]):
        raise invalid("inputs.response", f"has {len(cols['response'])} texts for {n} instructions")
    items(cols["instruction"], "inputs.instruction", limits)
    return [(text(a, f"inputs.instruction[{i}]", limits), text(b, f"inputs.response[{i}]", limits))
            for i, (a, b) in enumerate(zip(cols["instruction"], cols["response"]))]


def make_model(state: ScorerState) -> Any:
    """The kserve.Model of the v1 and v2 routes."""
    import kserve
    from kserve.errors import ModelNotReady
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    class ScorerModel(kserve.Model):
        def load(self) -> bool:  # weights load on the server's thread (serving.server); never here, on the loop
            return self.ready

        async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            if not state.ready:
                raise ModelNotReady(self.name)
            t0 = time.perf_counter()
            if isinstance(payload, InferRequest):
                scores = [state.shown(s) for s in await state.raw_scores(_v2_pairs(payload, state.limits))]
                out = InferOutput("score", [len(scores)], "FP32", scores)
                state.metrics.request("v2", time.perf_counter() - t0)
                return InferResponse(payload.id or str(uuid.uuid4()), self.name, [out])
            body = obj(parse_json(payload) if isinstance(payload, (bytes, bytearray, str)) else payload, "body")
            scores = await state.raw_scores(_pairs(body.get("instances"), state.limits))
            state.metrics.request("predict", time.perf_counter() - t0)
            return {"predictions": [state.shown(s) for s in scores]}

    return ScorerModel(state.name)


async def _rank(state: ScorerState, body: dict[str, Any]) -> dict[str, Any]:
    lim = state.limits
    inst = text(body.get("instruction"), "instruction", lim)
    cands = [text(c, f"candidates[{i}]", lim) for i, c in enumerate(items(body.get("candidates"), "candidates", lim))]
    raw = await state.raw_scores([(inst, c) for c in cands])
    return {"ranked": [{"index": i, "response": cands[i], "score": state.shown(raw[i]), "rawScore": raw[i]}
                       for i in rank_order(raw)]}


async def _boost(state: ScorerState, prompts: list[str]) -> list[Any]:
    if state.generator is None:
        raise invalid("generator", "this ScorerService has no generator: set spec.generator to boost an LLM")
    loop = asyncio.get_running_loop()
    cands = await loop.run_in_executor(state.gen_executor, state.generator.generate, prompts)
    if any(not cs for cs in cands):
        raise RuntimeError("the generator returned no candidates for a prompt")
    flat = [(prompts[i], c.text) for i, cs in enumerate(cands) for c in cs]
    raw = await state.raw_scores(flat)
    return pick(prompts, cands, lambda pairs: raw)  # pick scores the same pairs, in the same order


def router(state: ScorerState) -> APIRouter:
    """The rank, generate and OpenAI completions routes."""
    from kserve.errors import ModelNotFound, ModelNotReady

    r = APIRouter()

    def check(name: str) -> None:
        if name != state.name:
            raise ModelNotFound(name)
        if not state.ready:
            raise ModelNotReady(name)

    @r.post("/v1/models/{model_name}:rank")
    async def rank(model_name: str, request: Request) -> dict[str, Any]:
        check(model_name)
        t0 = time.perf_counter()
        out = await _rank(state, obj(parse_json(await request.body()), "body"))
        state.metrics.request("rank", time.perf_counter() - t0)
        return out

    @r.post("/v1/models/{model_name}:generate")
    async def generate(model_name: str, request: Request) -> dict[str, Any]:
        check(model_name)
        t0 = time.perf_counter()
        body = obj(parse_json(await request.body()), "body")
        b = (await _boost(state, [text(body.get("instruction"), "instruction", state.limits, allow_empty=False)]))[0]
        state.metrics.request("generate", time.perf_counter() - t0)
        return {"best": b.text, "candidates": [{"text": c.text, "strategy": c.strategy, "score": state.shown(s),
                                                "rawScore": s} for c, s in zip(b.candidates, b.scores)]}

    @r.post("/openai/v1/completions")
    async def completions(request: Request) -> dict[str, Any]:
        body = obj(parse_json(await request.body()), "body")
        name = text(body.get("model", state.name), "model", state.limits)
        check(name)
        t0 = time.perf_counter()
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else items(prompt, "prompt", state.limits)
        prompts = [text(p, "prompt" if isinstance(prompt, str) else f"prompt[{i}]", state.limits, allow_empty=False)
                   for i, p in enumerate(prompts)]
        boosted = await _boost(state, prompts)
        state.metrics.request("completions", time.perf_counter() - t0)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": state.name,
                "choices": [{"index": i, "text": b.text, "logprobs": None, "finish_reason": "stop"}
                            for i, b in enumerate(boosted)],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    return r
