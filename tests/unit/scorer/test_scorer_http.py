"""The ScorerService model server over real HTTP on 127.0.0.1: every route, readiness after the
weights load, batching across concurrent requests with health staying responsive, /metrics, bad
requests answered 4xx naming the field while the server keeps serving, and a clean SIGTERM."""

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).parent
LOAD_DELAY = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body=None, timeout: float = 60.0) -> tuple[int, dict]:
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
def server():
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(HERE / "serve_tiny.py"), str(port), str(LOAD_DELAY)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    early = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(l.startswith("serving: ") for l in lines):
        try:
            early.append((call(f"{base}/v1/models/tiny", timeout=2)[0], call(f"{base}/", timeout=2)[0]))
        except OSError:
            pass  # not listening yet
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    served = [l for l in lines if l.startswith("serving: ")]
    assert served, "".join(lines)[-3000:]
    yield {"base": base, "url": served[0].split()[1], "proc": proc, "lines": lines, "early": early}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_ready_only_after_the_weights_load_while_liveness_answers_from_the_start(server):
    assert server["url"] == server["base"]
    # while loading: the server answered, live, and said the model is not ready (the pod's readiness probe)
    assert any(ready == 503 and live == 200 for ready, live in server["early"]), server["early"][:5]
    assert call(f"{server['base']}/v1/models/tiny") == (200, {"name": "tiny", "ready": True})
    assert call(f"{server['base']}/v2/models/tiny/ready")[0] == 200


def test_v1_predict(server):
    code, body = call(f"{server['base']}/v1/models/tiny:predict", {"instances": [
        {"instruction": "say apple", "response": "apple"}, {"instruction": "say apple", "response": "river"}]})
    assert code == 200 and len(body["predictions"]) == 2
    assert all(0.0 <= s <= 1.0 for s in body["predictions"])  # scoreTransform clip


def test_v2_infer_matches_v1(server):
    code, body = call(f"{server['base']}/v2/models/tiny/infer", {"inputs": [
        {"name": "instruction", "shape": [1], "datatype": "BYTES", "data": ["say river"]},
        {"name": "response", "shape": [1], "datatype": "BYTES", "data": ["river"]}]})
    assert code == 200 and body["outputs"][0]["name"] == "score"
    v1 = call(f"{server['base']}/v1/models/tiny:predict", {"instances": [{"instruction": "say river", "response": "river"}]})[1]
    assert body["outputs"][0]["data"][0] == pytest.approx(v1["predictions"][0], abs=1e-5)


def test_rank_orders_candidates_best_first_by_raw_score(server):
    cands = ["apple", "river", "stone", "the cat sat on the mat"]
    code, body = call(f"{server['base']}/v1/models/tiny:rank", {"instruction": "say stone", "candidates": cands})
    assert code == 200
    ranked = body["ranked"]
    assert sorted(r["index"] for r in ranked) == [0, 1, 2, 3]
    raw = [r["rawScore"] for r in ranked]
    assert raw == sorted(raw, reverse=True) and all(r["response"] == cands[r["index"]] for r in ranked)


def test_generate_returns_17_candidates_and_the_best_by_raw_score(server):
    code, body = call(f"{server['base']}/v1/models/tiny:generate", {"instruction": "say apple"})
    assert code == 200 and len(body["candidates"]) == 17
    raw = [c["rawScore"] for c in body["candidates"]]
    assert body["best"] == body["candidates"][raw.index(max(raw))]["text"]  # first of the maxima
    assert [c["strategy"] for c in body["candidates"]][:2] == ["beam4", "sampling"]


def test_openai_completions_returns_the_boosted_completion(server):
    best = call(f"{server['base']}/v1/models/tiny:generate", {"instruction": "say river"})[1]["best"]
    code, body = call(f"{server['base']}/openai/v1/completions", {"model": "tiny", "prompt": ["say river", "say apple"]})
    assert code == 200 and body["object"] == "text_completion" and body["model"] == "tiny"
    assert [c["index"] for c in body["choices"]] == [0, 1] and body["choices"][0]["text"] == best


@pytest.mark.parametrize("path,body,status,field", [
    ("/v1/models/tiny:predict", {"instances": [{"instruction": "x"}]}, 400, "instances[0].response"),
    ("/v1/models/tiny:predict", {"instances": [{"instruction": 3, "response": "r"}]}, 400, "instances[0].instruction"),
    ("/v1/models/tiny:predict", {"instances": "say"}, 400, "instances"),
    ("/v1/models/tiny:predict", {}, 400, "instances"),
    ("/v1/models/tiny:predict", {"instances": [{"instruction": "x" * 100_001, "response": "r"}]}, 400, "instances[0].instruction"),
    ("/v1/models/tiny:predict", {"instances": [{"instruction": "x", "response": "r"}] * 4097}, 400, "instances"),
    ("/v1/models/tiny:rank", {"instruction": "x", "candidates": []}, 400, "candidates"),
    ("/v1/models/tiny:rank", {"instruction": "x", "candidates": ["a", None]}, 400, "candidates[1]"),
    ("/v1/models/tiny:rank", {"candidates": ["a"]}, 400, "instruction"),
    ("/v1/models/tiny:rank", b"{not json", 400, "body"),
    ("/v1/models/tiny:generate", {"instruction": ""}, 400, "instruction"),
    ("/v2/models/tiny/infer", {"inputs": [{"name": "instruction", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}, 400, "inputs.response"),
    ("/openai/v1/completions", {"model": "tiny", "prompt": 7}, 400, "prompt"),
    ("/v1/models/nope:predict", {"instances": [{"instruction": "x", "response": "r"}]}, 404, "nope"),
    ("/v1/models/nope:rank", {"instruction": "x", "candidates": ["a"]}, 404, "nope"),
    ("/openai/v1/completions", {"model": "nope", "prompt": "x"}, 404, "nope"),
])
def test_a_bad_request_is_4xx_naming_the_field_and_the_server_keeps_serving(server, path, body, status, field):
    code, out = call(server["base"] + path, body)
    assert code == status, out
    message = json.dumps(out)
    assert field in message, message
    ok = call(f"{server['base']}/v1/models/tiny:predict", {"instances": [{"instruction": "say apple", "response": "apple"}]})
    assert ok[0] == 200


def test_concurrent_requests_share_batches_and_health_stays_responsive(server):
    base = server["base"]
    before = _metric(base, 'glassbox_serving_items_total{model="tiny",unit="pairs"}')
    batches_before = _metric(base, 'glassbox_serving_batch_size_count{model="tiny"}')
    body = {"instances": [{"instruction": f"say {w}", "response": w} for w in ("apple", "river", "stone")]}
    health: list[float] = []

    def probe():
        t0 = time.perf_counter()
        assert call(f"{base}/v2/health/live", timeout=10)[0] == 200
        health.append(time.perf_counter() - t0)

    with ThreadPoolExecutor(20) as pool:
        futs = [pool.submit(call, f"{base}/v1/models/tiny:predict", body) for _ in range(32)]
        for _ in range(4):
            probe()
        results = [f.result() for f in futs]
    assert all(code == 200 and len(b["predictions"]) == 3 for code, b in results)
    after = _metric(base, 'glassbox_serving_items_total{model="tiny",unit="pairs"}')
    batches = _metric(base, 'glassbox_serving_batch_size_count{model="tiny"}') - batches_before
    assert after - before == 96
    assert batches < 32, "32 requests of 3 pairs with batchSize 8 should share forward passes"
    assert max(health) < 2.0, health


def _metric(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text[:2000]}")


def test_sigterm_drains_and_exits_0(server):
    proc = server["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, "".join(server["lines"])[-2000:]
