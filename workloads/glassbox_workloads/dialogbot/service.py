"""DialogBot's routes on the model server (serving.server, KServe's ModelServer).

- OpenAI-compatible `POST /openai/v1/chat/completions` `{"messages": [{"role", "content"}...]}`
  (user = patient, assistant = doctor, system ignored; the last message is the patient's) ->
  a `chat.completion` whose message text ends with the disclaimer, plus a top-level `disclaimer`;
- KServe v1 `POST /v1/models/NAME:predict` `{"instances": [{"history": [...], "description"?}]}`
  (history: `"Patient: ..."` / `"Doctor: ..."` strings, `{"speaker", "text"}` objects, or plain
  strings alternating and ending with the patient) -> `{"predictions": [{"response", "disclaimer"}]}`.

Every reply carries the disclaimer. A refused request is a 400 naming the field, and its message
never quotes the conversation. With logPatientText false the log lines carry sizes and timings only.
Generation runs on the batcher's worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request  # module level: FastAPI reads the routes' annotations from here

from ..serving.batching import Batcher
from ..serving.metrics import ServingMetrics
from ..serving.requests import Limits, invalid, items, obj, parse_json, text
from .data import DOCTOR, PATIENT, Turn, clean

log = logging.getLogger("glassbox.dialogbot.serving")

ROLES = {"user": PATIENT, "assistant": DOCTOR}
Conversation = tuple[tuple[Turn, ...], str]
"""A history (ending with the patient's turn) and the description."""


@dataclass
class DialogState:
    """What the routes share."""

    name: str
    batcher: Batcher
    disclaimer: str
    log_text: bool
    metrics: ServingMetrics
    limits: Limits = Limits(max_items=64, max_chars=20_000)
    ready: bool = False

    def with_disclaimer(self, reply: str) -> str:
        return f"{reply}\n\n{self.disclaimer}" if reply else self.disclaimer

    def logged(self, route: str, convs: list[Conversation], replies: list[str], seconds: float) -> None:
        turns = sum(len(h) for h, _ in convs)
        chars = sum(len(t.text) for h, _ in convs for t in h)
        if self.log_text:
            log.info("%s: %d conversations, %d turns, %d chars in, %.3f s; history %r; replies %r", route, len(convs),
                     turns, chars, seconds, [[t.text for t in h] for h, _ in convs], replies)
        else:
            log.info("%s: %d conversations, %d turns, %d chars in, %d chars out, %.3f s", route, len(convs), turns,
                     chars, sum(len(r) for r in replies), seconds)


def _ends_with_patient(turns: list[Turn], field: str) -> tuple[Turn, ...]:
    if not turns:
        raise invalid(field, "must not be empty")
    if turns[-1].speaker != PATIENT:
        raise invalid(field, "must end with the patient's turn (role user): the bot answers the patient")
    return tuple(turns)


def messages(body: dict[str, Any], limits: Limits) -> Conversation:
    """The conversation of an OpenAI chat request."""
    turns = []
    for i, m in enumerate(items(body.get("messages"), "messages", limits)):
        o = obj(m, f"messages[{i}]")
        role = o.get("role")
        if role not in ("system", "user", "assistant"):
            raise invalid(f"messages[{i}].role", "must be system, user or assistant")
        content = text(o.get("content"), f"messages[{i}].content", limits, allow_empty=False)
        if role != "system":
            turns.append(Turn(ROLES[role], clean(content)))
    desc = body.get("description", "")
    return _ends_with_patient(turns, "messages"), clean(text(desc, "description", limits))


def _history_turn(h: Any, field: str, limits: Limits) -> tuple[str, str]:
    if isinstance(h, dict):
        who = h.get("speaker")
        if who not in (PATIENT, DOCTOR):
            raise invalid(f"{field}.speaker", "must be patient or doctor")
        return who, text(h.get("text"), f"{field}.text", limits, allow_empty=False)
    body = text(h, field, limits, allow_empty=False)
    head, sep, rest = body.partition(":")
    if sep and head.strip().lower() in (PATIENT, DOCTOR):
        return head.strip().lower(), rest
    return "", body


def instance(inst: Any, field: str, limits: Limits) -> Conversation:
    """The conversation of one v1 instance."""
    o = obj(inst, field)
    raw = [_history_turn(h, f"{field}.history[{j}]", limits)
           for j, h in enumerate(items(o.get("history"), f"{field}.history", limits))]
    n = len(raw)
    turns = [Turn(who or (PATIENT if (n - 1 - j) % 2 == 0 else DOCTOR), clean(t)) for j, (who, t) in enumerate(raw)]
    for j, t in enumerate(turns):
        if not t.text:
            raise invalid(f"{field}.history[{j}]", "must not be empty")
    desc = o.get("description", "")
    return _ends_with_patient(turns, f"{field}.history"), clean(text(desc, f"{field}.description", limits))


def make_model(state: DialogState) -> Any:
    """The kserve.Model of the v1 route."""
    import kserve
    from kserve.errors import ModelNotReady

    class DialogModelServer(kserve.Model):
        def load(self) -> bool:  # weights load on the server's thread (serving.server)
            return self.ready

        async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            if not state.ready:
                raise ModelNotReady(self.name)
            t0 = time.perf_counter()
            body = obj(parse_json(payload) if isinstance(payload, (bytes, bytearray, str)) else payload, "body")
            convs = [instance(x, f"instances[{i}]", state.limits)
                     for i, x in enumerate(items(body.get("instances"), "instances", state.limits))]
            replies = await state.batcher.submit(convs)
            seconds = time.perf_counter() - t0
            state.metrics.request("predict", seconds)
            state.logged("predict", convs, replies, seconds)
            return {"predictions": [{"response": state.with_disclaimer(r), "reply": r, "disclaimer": state.disclaimer}
                                    for r in replies]}

    return DialogModelServer(state.name)


def router(state: DialogState) -> APIRouter:
    """The OpenAI chat completions route."""
    from kserve.errors import ModelNotFound, ModelNotReady

    r = APIRouter()

    @r.post("/openai/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = obj(parse_json(await request.body()), "body")
        name = text(body.get("model", state.name), "model", state.limits)
        if name != state.name:
            raise ModelNotFound(name)
        if not state.ready:
            raise ModelNotReady(name)
        t0 = time.perf_counter()
        conv = messages(body, state.limits)
        reply = (await state.batcher.submit([conv]))[0]
        seconds = time.perf_counter() - t0
        state.metrics.request("chat", seconds)
        state.logged("chat", [conv], [reply], seconds)
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": state.name, "disclaimer": state.disclaimer,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": state.with_disclaimer(reply)}}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    return r
