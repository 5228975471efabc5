"""checkpoint: each through the MetricEval program: real checkpoints (tiny GPT-2s in Hugging Face
layout, listed in a source run's manifest) are loaded one by one, each gives one curve point, the
curve is published as curve.jsonl and summarised (latest, best) in the manifest and summary.json.
The perplexity function itself is the metrics library's (tested there); here a stand-in (conftest
fake_lm) reads the loaded weights, so the test shows which checkpoint each point was computed on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox_api.manifest import CheckpointEntry, FileEntry, Manifest, checkpoint_dir, read_manifest
from glassbox_api.store import LocalStore, sha256_file
from glassbox_workloads.metriceval.program import run
from glassbox_workloads.runtime import hfmodels
from glassbox_workloads.runtime.context import RunContext
from glassbox_workloads.runtime.spec import load_resource_doc


def publish_source(root: Path, steps: list[int]) -> LocalStore:
    """A completed PretrainRun folder whose checkpoint at step s is a GPT-2 with lm_head bias-free
    weights scaled by s (so a point can be traced to its checkpoint)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    run = LocalStore(root / "default" / "pretrainrun" / "src-0000abcd")
    tok = hfmodels.train_tokenizer(["def f(x): return x + 1"] * 8, "gpt2", 300)
    m = Manifest(kind="PretrainRun", name="src", namespace="default", uid="0000abcd")
    for step in steps:
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=64))
        with torch.no_grad():
            model.transformer.wte.weight.fill_(float(step))
        folder = hfmodels.save(model, tok, root / "staging" / str(step))
        path = checkpoint_dir(step)
        files = []
        for p in sorted(folder.iterdir()):
            run.put_file(f"{path}/{p.name}", p)
            files.append(FileEntry(path=p.name, sha256=sha256_file(p), size=p.stat().st_size))
        m = m.with_checkpoint(CheckpointEntry(step=step, tokens=step * 100, loss=10.0 / step, path=path, files=files))
    run.write_json("manifest.json", m.model_copy(update={"state": "completed"}).to_json())
    return run


@pytest.mark.slow
def test_each_checkpoint_is_one_point_of_the_published_curve(tmp_path: Path, fake_lm) -> None:
    root = tmp_path / "store"
    source = publish_source(root, [10, 20, 40])
    data = tmp_path / "ex.jsonl"
    data.write_text("".join(json.dumps({"id": f"c{i}", "prompt": "def f(x):", "completion": "return x + 1"}) + "\n"
                            for i in range(3)))
    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "MetricEval", "metadata": {"name": "curve"},
           "spec": {"task": "generation", "metrics": ["perplexity", "dist-1"], "data": {"uri": str(data)},
                    "fields": {"source": "prompt", "output": "completion", "references": "completion"},
                    "model": {"fromRun": {"kind": "PretrainRun", "name": "src", "checkpoint": "each"}},
                    "curve": {"pollSeconds": 1}}}
    resource = load_resource_doc(doc, "MetricEval", run_id="r1")
    res = run(resource, LocalStore(root), RunContext(kind="metriceval"))
    store = LocalStore(root).sub(resource.run_prefix)
    points = [json.loads(line) for line in store.get_bytes("curve.jsonl").decode().splitlines()]
    assert [(p["step"], p["perplexity"]) for p in points] == [(10, 10.0), (20, 5.0), (40, 2.5)]
    assert points[1]["uri"] == source.uri("checkpoints/00000020") and points[1]["sourceLoss"] == 0.5
    m = read_manifest(store)
    assert m.state == "completed" and m.final["curve"]["bestCheckpoint"] == "step-40"
    assert m.final["results"]["perplexity"] == 2.5 and res.curve["points"] == 3
    assert "perplexity" not in json.loads(store.get_bytes("scores.jsonl").decode().splitlines()[0])
    summary = json.loads(store.get_bytes("summary.json"))
    assert summary["curve"]["latest"] == 2.5 and "dist-1" in summary["results"]
