"""The DialogBot model server over real HTTP on 127.0.0.1, the real program
(`python -m glassbox_workloads dialogbot --spec F`, serving spec.model, a tiny GPT-2 saved by the
test): the OpenAI chat completions route and the v1 predict route carry the disclaimer in the text
and in a `disclaimer` field; empty,
over-long and malformed requests get a 400 naming the field and the server goes on; with
logPatientText false the captured logs (INFO level) hold sizes and timings, never the texts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from glassbox_api.kinds.common import ModelSpec
from glassbox_workloads.runtime import hfmodels

NAME = "bot"
DISCLAIMER = "Research system only, not medical advice: see a doctor."
SECRET = "zebra quokka"  # patient words that must not reach the logs
TINY = {"architecture": "gpt2", "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 1, "numHeads": 2,
                                           "maxPositionEmbeddings": 256}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body=None, timeout: float = 120.0) -> tuple[int, dict]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dialog-http")
    texts = ["i have a fever and a cough", "please rest and drink water", "the test is negative", SECRET] * 5
    loaded = hfmodels.load(ModelSpec.model_validate(TINY), __import__("transformers").AutoModelForCausalLM,
                           tokenizer_texts=texts, vocab_size=300, seed=0)
    hfmodels.save(loaded.model, loaded.tokenizer, tmp / "model")
    spec = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "DialogBot", "metadata": {"name": NAME},
            "spec": {"model": {"uri": str(tmp / "model")},
                     "decoding": {"numBeams": 2, "noRepeatNgramSize": 3, "minNewTokens": 6, "maxNewTokens": 10},
                     "serving": {"disclaimer": DISCLAIMER, "logPatientText": False}}}
    (tmp / "bot.yaml").write_text(yaml.safe_dump(spec))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "glassbox_workloads", "dialogbot", "--spec", str(tmp / "bot.yaml"),
                             "--store", str(tmp / "store"), "--port", str(port), "--log-level", "INFO"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not any(l.startswith("serving: ") for l in lines):
        time.sleep(0.2)
    assert any(l.startswith("serving: ") for l in lines), "".join(lines)[-3000:]
    yield {"base": f"http://127.0.0.1:{port}", "proc": proc, "lines": lines}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _chat(server, messages, **extra):
    return call(f"{server['base']}/openai/v1/chat/completions", {"model": NAME, "messages": messages, **extra})


def test_chat_completion_carries_the_disclaimer_in_text_and_field(server):
    code, out = _chat(server, [{"role": "system", "content": "be kind"}, {"role": "user", "content": f"i have a fever {SECRET}"}])
    assert code == 200, out
    assert out["object"] == "chat.completion" and out["disclaimer"] == DISCLAIMER
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant" and msg["content"].endswith(DISCLAIMER)


def test_predict_route_carries_the_disclaimer_on_every_reply(server):
    code, out = call(f"{server['base']}/v1/models/{NAME}:predict", {"instances": [
        {"history": ["i have a cough"]},
        {"history": ["Patient: fever", "Doctor: rest", "Patient: still fever"], "description": "fever"},
        {"history": [{"speaker": "patient", "text": "cough"}]}]})
    assert code == 200, out
    assert len(out["predictions"]) == 3
    for p in out["predictions"]:
        assert p["disclaimer"] == DISCLAIMER and p["response"].endswith(DISCLAIMER)


@pytest.mark.parametrize("body,field", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "x" * 20_001}]}, "messages[0].content"),
    ({"messages": [{"role": "nurse", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}, "messages"),
    ({"messages": "hello"}, "messages"),
    ({"model": "other", "messages": [{"role": "user", "content": "hi"}]}, None),
    (b"{not json", "body"),
])
def test_bad_chat_requests_are_refused_naming_the_field(server, body, field):
    code, out = call(f"{server['base']}/openai/v1/chat/completions", body)
    assert 400 <= code < 500, out
    if field is not None:
        assert out["error"].startswith(f"{field}:"), out
    assert _chat(server, [{"role": "user", "content": "fever"}])[0] == 200  # the server goes on


@pytest.mark.parametrize("body,field", [
    ({"instances": []}, "instances"),
    ({"instances": [{"history": []}]}, "instances[0].history"),
    ({"instances": [{"history": [""]}]}, "instances[0].history[0]"),
    ({"instances": [{"history": [{"speaker": "nurse", "text": "x"}]}]}, "instances[0].history[0].speaker"),
    ({"instances": [{"history": ["Patient: a", "Doctor: b"]}]}, "instances[0].history"),
    ({"instances": [{"history": [7]}]}, "instances[0].history[0]"),
])
def test_bad_predict_requests_are_refused_naming_the_field(server, body, field):
    code, out = call(f"{server['base']}/v1/models/{NAME}:predict", body)
    assert code == 400, out
    assert out["error"].startswith(f"{field}:"), out


def test_logs_hold_sizes_and_timings_but_no_patient_text(server):
    _chat(server, [{"role": "user", "content": f"my {SECRET} hurts"}])
    call(f"{server['base']}/v1/models/{NAME}:predict", {"instances": [{"history": [f"{SECRET} again"]}]})
    call(f"{server['base']}/openai/v1/chat/completions", {"messages": [{"role": "nurse", "content": SECRET}]})
    time.sleep(0.5)
    logs = "".join(server["lines"])
    assert "chat: 1 conversations" in logs and "chars in" in logs
    assert "zebra" not in logs and "quokka" not in logs


def test_sigterm_drains_and_exits_0(server):
    proc = server["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
