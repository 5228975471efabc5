"""The PretrainRun workload end to end on a real S3 server: `python -m glassbox_workloads` killed
mid-run (like a pod) resumes from the latest published checkpoint, loses nothing published, and
ends bit-for-bit where an uninterrupted run ends."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore, S3Settings, S3Store
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from glassbox_workloads.runtime.spec import load_resource

DOC = {
    "apiVersion": "glassbox.dev/v1alpha1",
    "kind": "PretrainRun",
    "metadata": {"name": "e2e-tiny", "namespace": "research"},
    "spec": {
        "model": {"architecture": "llama", "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 2,
                                                      "numHeads": 4, "maxPositionEmbeddings": 64}},
        "data": {"sources": [{"name": "json", "uri": "stdlib://json"}], "seqLength": 32, "chunks": 3,
                 "holdOut": 4, "tokenizer": {"train": {"vocabSize": 300}}},
        "training": {"microBatchSize": 4, "gradientAccumulationSteps": 2, "maxSteps": 12, "warmupSteps": 3,
                     "precision": "fp32", "deterministic": True},
        "checkpoint": {"everySteps": 4},
        "analysis": {"perplexity": True},
    },
}


def workload(spec: Path, store: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassbox_workloads", "pretrainrun", "--spec", str(spec),
                           "--store", store, "--run-id", "e2e00001"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_killed_workload_resumes_from_s3_and_matches_an_uninterrupted_run(s3, tmp_path: Path) -> None:
    bucket = f"gb-{uuid.uuid4().hex[:12]}"
    s3.client().make_bucket(bucket)
    spec = tmp_path / "ptr.yaml"
    spec.write_text(yaml.safe_dump(DOC))
    env = {**s3.env(), "GLASSBOX_STAGING_DIR": str(tmp_path)}

    killed = workload(spec, f"s3://{bucket}/glassbox", {**env, "GLASSBOX_KILL_AT_STEP": "6"})
    assert killed.returncode == 137, killed.stderr[-2000:]
    res = load_resource(spec, "PretrainRun", run_id="e2e00001")
    assert res.run_prefix == "research/pretrainrun/e2e-tiny-e2e00001"
    run = S3Store(bucket, f"glassbox/{res.run_prefix}", settings=S3Settings.from_env(s3.env()))
    first = read_manifest(run)
    assert [c.step for c in first.checkpoints] == [4]

    done = workload(spec, f"s3://{bucket}/glassbox", env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from checkpoint step 4" in done.stdout
    assert "completed 12 steps" in done.stdout and f"s3://{bucket}/glassbox/{res.run_prefix}" in done.stdout
    m = read_manifest(run)
    assert [c.step for c in m.checkpoints] == [4, 8, 12] and m.state == "completed"
    assert m.get(4) == first.get(4)  # what was published before the kill is untouched

    # The uninterrupted run, in-process on a local store: the same final weights, bit for bit.
    straight = run_pretrain(res, LocalStore(tmp_path / "local"), hooks=TrainHooks(quiet=True))
    local_run = LocalStore(tmp_path / "local").sub(res.run_prefix)
    want = load(local_run.get_bytes(f"{straight.manifest.latest.path}/model.safetensors"))
    got = load(run.get_bytes(f"{m.latest.path}/model.safetensors", sha256=m.latest.file("model.safetensors").sha256))
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    assert [c.loss for c in straight.manifest.checkpoints] == [c.loss for c in m.checkpoints]
