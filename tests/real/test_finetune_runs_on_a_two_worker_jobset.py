"""ShardedFinetune for real on a JobSet of two workers: the tiny example (data uploaded to the real S3
server, as a user with a cluster would), applied with kubectl, runs as two JAX processes in real
containers of the jax image on the real node (jax.distributed through the JobSet's headless Service
and cluster DNS) to Succeeded, publishing its checkpoint and manifest to S3."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import bins, realchart
from tests.support.node import RealCluster
from tests.support.realchart import Release

pytestmark = pytest.mark.slow

EXAMPLE = bins.REPO / "examples" / "finetune-tiny.yaml"
DATA = bins.REPO / "examples" / "data"


def upload(real: RealCluster, files: list[str]) -> str:
    """Put example data files under a fresh prefix of the bucket; returns s3://bucket/prefix."""
    prefix = f"data/{uuid.uuid4().hex[:8]}"
    client = real.s3.client()
    for name in files:
        body = (DATA / name).read_bytes()
        client.put_object(realchart.BUCKET, f"{prefix}/{name}", io.BytesIO(body), len(body))
    return f"s3://{realchart.BUCKET}/{prefix}"


def finetune_example(name: str, data_uri: str) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    spec = doc["spec"]
    spec["data"]["train"]["uri"] = f"{data_uri}/instructions-train.jsonl"
    spec["data"]["eval"]["uri"] = f"{data_uri}/instructions-eval.jsonl"
    spec["training"]["epochs"] = 1
    spec["resources"] = {"backend": "jobset", "workers": 2, "accelerator": "real", "cpu": "500m", "memory": "3Gi"}
    spec["failurePolicy"] = {"maxRetries": 0, "backoffSeconds": 1}
    return doc


def test_the_tiny_finetune_runs_as_two_jax_processes_on_a_jobset(
        real_cluster: RealCluster, real_release: Release, tmp_path: Path) -> None:
    c, ns, name = real_cluster.cluster, real_release.workloads, "finetune-two"
    doc = finetune_example(name, upload(real_cluster, ["instructions-train.jsonl", "instructions-eval.jsonl"]))
    st = realchart.run_to_end(real_cluster, real_release, "shardedfinetune", doc, tmp_path)["status"]
    pods = [p for p in c.kubectl_json("get", "pods", "-n", ns)["items"] if p["metadata"]["name"].startswith(name)]
    assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} == {real_cluster.node_name}
    assert all(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0 for p in pods)
    manifest = realchart.read_manifest(real_cluster, st["artifacts"]["runUri"])
    assert manifest.state == "completed" and manifest.checkpoints
    keys = realchart.object_keys(real_cluster, st["artifacts"]["runUri"])
    latest = manifest.latest
    assert latest is not None and all(f"{latest.path.rstrip('/')}/{f.path}" in keys for f in latest.files)
