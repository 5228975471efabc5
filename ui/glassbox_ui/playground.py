"""The playground: the UI's server forwards a request to the endpoint the user gives and returns its
answer (or a message saying why there is none).

Forwarding from the server (not from the browser) works where the endpoint is reachable from where
the UI runs (a cluster Service, a port-forward) and needs no CORS on the model server. Only http(s)
URLs are accepted; the endpoint is the user's choice, so run the UI where that is acceptable.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from glassbox_api.kinds.dialogbot import DEFAULT_DISCLAIMER

from .catalog import UiError

TIMEOUT_S = 60.0


def _base(endpoint: str) -> str:
    u = urlsplit(str(endpoint or "").strip())
    if u.scheme not in ("http", "https") or not u.netloc:
        raise UiError(f"endpoint {endpoint!r} is not an http(s) URL (e.g. http://127.0.0.1:8080)")
    if u.username or u.password:
        raise UiError("the endpoint must not carry credentials")
    return f"{u.scheme}://{u.netloc}{u.path.rstrip('/')}"


def post(url: str, body: dict[str, Any], timeout: float = TIMEOUT_S) -> Any:
    """POST JSON; the parsed answer, or a UiError with the endpoint's own message."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (scheme checked in _base)
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:2000]
        raise UiError(f"{url} answered {exc.code}: {detail or exc.reason}", 502) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UiError(f"cannot reach {url}: {reason}", 502) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise UiError(f"{url} did not answer JSON: {raw[:200]!r}", 502) from None


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    v = body.get(name)
    if not isinstance(v, kind) or (hasattr(v, "__len__") and not len(v)):
        raise UiError(f"{name} is required ({kind.__name__}, not empty)")
    return v


def rank(body: dict[str, Any]) -> dict[str, Any]:
    """Rank candidates with a ScorerService: POST <endpoint>/v1/models/<model>:rank."""
    base, model = _base(body.get("endpoint", "")), _field(body, "model", str)
    candidates = [c for c in _field(body, "candidates", list) if isinstance(c, str) and c.strip()]
    if not candidates:
        raise UiError("candidates: give at least one non-empty candidate")
    url = f"{base}/v1/models/{quote(model, safe='')}:rank"
    answer = post(url, {"instruction": _field(body, "instruction", str), "candidates": candidates})
    return {"url": url, "answer": answer}


def chat(body: dict[str, Any]) -> dict[str, Any]:
    """Chat with a DialogBot: its OpenAI-compatible POST <endpoint>/openai/v1/chat/completions.

    The disclaimer shown is the endpoint's own (a `disclaimer` field of the answer), else the one
    the run's spec sets, else the API's default."""
    base, model = _base(body.get("endpoint", "")), _field(body, "model", str)
    messages = _field(body, "messages", list)
    if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
        raise UiError("messages: each needs a role and a text content")
    url = f"{base}/openai/v1/chat/completions"
    answer = post(url, {"model": model, "messages": messages})
    try:
        reply = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise UiError(f"{url} answered without choices[0].message.content: {json.dumps(answer)[:300]}", 502) from None
    disclaimer = answer.get("disclaimer") or body.get("disclaimer") or DEFAULT_DISCLAIMER
    if isinstance(reply, str) and reply.rstrip().endswith(disclaimer):  # shown beside the chat, not twice
        reply = reply.rstrip()[: -len(disclaimer)].rstrip()
    return {"url": url, "reply": reply, "disclaimer": disclaimer, "answer": answer}
