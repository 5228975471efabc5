"""spec.aligner.train through the MetricEval program: a tiny D aligner trained on weak supervision
built from the examples' own documents is published as a checkpoint of the run (files with sha256,
its validation numbers), then the metrics score with exactly those weights. A rerun fetches the
published aligner instead of training again. (How well a tiny D aligner finds replaced words is the
library's planted test, tests/unit/metrics/test_ctc_d_training.py.)"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.metriceval.program import run
from glassbox_workloads.runtime.context import RunContext
from glassbox_workloads.runtime.spec import load_resource_doc

NOUNS = ["farmer", "doctor", "teacher", "pilot", "baker", "soldier", "painter", "sailor", "judge", "miner",
         "nurse", "writer", "singer", "hunter", "boat", "house", "bridge", "piano", "wagon", "church", "garden",
         "clock", "engine", "library", "ladder", "barn", "window", "statue", "river", "castle", "forest", "eagle"]


def planted(n: int, seed: int) -> list[dict]:
    """Documents of 3 sentences `the N and the N with the N .`; a summary copies one sentence, or
    copies it with two nouns swapped for nouns the document lacks."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        doc = [["the", rng.choice(NOUNS), "and", "the", rng.choice(NOUNS), "with", "the", rng.choice(NOUNS), "."]
               for _ in range(3)]
        words = {w for s in doc for w in s}
        summary = list(rng.choice(doc))
        if i % 2:
            fresh = [w for w in NOUNS if w not in words]
            for j in rng.sample([1, 4, 7], 2):
                summary[j] = rng.choice(fresh)
        rows.append({"id": f"{'bad' if i % 2 else 'copy'}-{i}", "document": " ".join(w for s in doc for w in s),
                     "summary": " ".join(summary)})
    return rows


@pytest.mark.slow
def test_trained_d_aligner_is_published_as_a_checkpoint_and_scores_with_those_weights(tmp_path: Path) -> None:
    rows = planted(60, seed=3)
    (tmp_path / "ex.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "MetricEval", "metadata": {"name": "dtrain"},
           "spec": {"task": "summarization", "metrics": ["consistency"], "chunkSize": 100,
                    "data": {"uri": str(tmp_path / "ex.jsonl")}, "fields": {"source": "document", "output": "summary"},
                    "aligner": {"type": "discriminative",
                                "model": {"architecture": "roberta", "config": {
                                    "hiddenSize": 64, "numLayers": 2, "numHeads": 4, "intermediateSize": 128,
                                    "maxPositionEmbeddings": 160}},
                                "train": {"examples": 200, "epochs": 1, "learningRate": 3e-3, "batchSize": 16}}}}
    resource = load_resource_doc(doc, "MetricEval", run_id="t1")
    root = LocalStore(tmp_path / "store")
    res = run(resource, root, RunContext(kind="metriceval"))
    store = root.sub(resource.run_prefix)
    m = read_manifest(store)
    (ckpt,) = m.checkpoints
    assert ckpt.path.startswith("checkpoints/") and {f.path for f in ckpt.files} >= {"config.json", "model.safetensors"}
    for f in ckpt.files:
        store.verify(f"{ckpt.path}/{f.path}", f.sha256, f.size)
    assert {"roc_auc", "f1", "loss"} <= set(ckpt.evals) and ckpt.evals["roc_auc"] > 0.5, ckpt.evals
    # The scores come from the published weights: the same aligner loaded from the store agrees.
    from glassbox_api.kinds.common import ModelSpec
    from glassbox_workloads.metrics.ctc import scorers
    from glassbox_workloads.metrics.ctc.load import load_aligner

    local = tmp_path / "published"
    for f in ckpt.files:
        store.get_file(f"{ckpt.path}/{f.path}", local / f.path, sha256=f.sha256)
    direct = scorers.consistency(load_aligner("discriminative", ModelSpec(uri=str(local))),
                                 [r["summary"] for r in rows[:4]], [r["document"] for r in rows[:4]]).per_example
    scores = [json.loads(line) for line in store.get_bytes("scores.jsonl").decode().splitlines()]
    assert [s["consistency"] for s in scores[:4]] == pytest.approx(direct, abs=1e-6)
    assert res.results["consistency"] == pytest.approx(sum(s["consistency"] for s in scores) / len(scores))
    # A rerun with a fresh manifest state (as after a crash before the end) reuses the published aligner.
    store.write_json("manifest.json", {**m.to_json(), "state": "running", "final": {**m.final, "chunks": []}})
    said: list[str] = []
    run(resource, root, RunContext(kind="metriceval"), said.append)
    assert any("already trained" in s for s in said)
