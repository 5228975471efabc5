"""KGHarvest and MetricEval for real, as a user runs them: glassbox `helm install`ed (the operator a
pod on the real node), the tiny examples edited for the real pool (backend job) and `kubectl apply`d,
each runs in a real container of the torch image built from images/ -- uid 65532 under the
restricted profile the operator renders -- to Succeeded, publishing to the real S3 server on the
node's bridge address; the manifests list every file with its sha256 and the results are the ones
`glassbox run` gives on a laptop (the relation harvested, faithful summaries ranked higher)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import bins, realchart
from tests.support.node import RealCluster
from tests.support.realchart import Release

pytestmark = [pytest.mark.real, pytest.mark.slow]

EXAMPLES = bins.REPO / "examples"


def upload(real: RealCluster, release: Release, local: Path) -> str:
    """A data file of examples/ on the S3 server: a pod has no checkout of the repository."""
    data, key = local.read_bytes(), f"data/{release.workloads}/{local.name}"
    real.s3.client().put_object(realchart.BUCKET, key, io.BytesIO(data), len(data))
    return f"s3://{realchart.BUCKET}/{key}"


def on_real_pool(doc: dict[str, Any], name: str) -> dict[str, Any]:
    doc["metadata"] = {"name": name}
    doc["spec"]["resources"] = {"backend": "job", "accelerator": "real", "cpu": "500m", "memory": "3Gi"}
    return doc


def assert_ran_in_the_torch_image_on_the_real_node_as_65532(real: RealCluster, release: Release, name: str) -> None:
    pods = [p for p in real.cluster.kubectl_json("get", "pods", "-n", release.workloads)["items"]
            if p["metadata"].get("labels", {}).get("job-name", "").startswith(name)]
    assert pods, f"no Job pod of {name} in {release.workloads}"
    for p in pods:
        assert p["spec"]["nodeName"] == real.node_name
        assert p["spec"]["securityContext"]["runAsUser"] == 65532
        assert p["spec"]["containers"][0]["image"] == real.image("torch")


def test_kgharvest_tiny_example_runs_in_a_real_container_to_succeeded(real_cluster: RealCluster, real_release: Release,
                                                                        tmp_path: Path) -> None:
    doc = on_real_pool(yaml.safe_load((EXAMPLES / "kgharvest-tiny.yaml").read_text()), "capitals")
    doc["spec"]["pretrain"]["corpus"]["uri"] = upload(real_cluster, real_release, EXAMPLES / "data/capitals.txt")
    obj = realchart.run_to_end(real_cluster, real_release, "kgharvest", doc, tmp_path, timeout=1200)

    assert_ran_in_the_torch_image_on_the_real_node_as_65532(real_cluster, real_release, "capitals")
    run_uri = obj["status"]["artifacts"]["runUri"]
    m = realchart.read_manifest(real_cluster, run_uri)
    assert m.state == "completed"
    relations = m.model_extra["relations"]
    assert [r["name"] for r in relations] == ["capital_of"]
    keys = realchart.object_keys(real_cluster, run_uri)
    for f in relations[0]["files"]:
        assert f["path"] in keys
        assert _sha256(realchart.read_object(real_cluster, run_uri, f["path"])) == f["sha256"]
    lines = realchart.read_object(real_cluster, run_uri, "relations/capital_of/tuples.jsonl").decode().splitlines()
    tuples = [json.loads(t)["entities"] for t in lines]
    assert len(tuples) == m.final["tuples"] and m.final["relationsDone"] == 1
    # The harvest of a model pretrained in the pod on forty capitals finds the seed pairs again.
    assert ["france", "paris"] in tuples and ["japan", "tokyo"] in tuples


def test_metriceval_tiny_example_runs_in_a_real_container_to_succeeded(real_cluster: RealCluster, real_release: Release,
                                                                         tmp_path: Path) -> None:
    doc = on_real_pool(yaml.safe_load((EXAMPLES / "metriceval-tiny.yaml").read_text()), "summaries")
    doc["spec"]["data"]["uri"] = upload(real_cluster, real_release, EXAMPLES / "data/summaries-judged.jsonl")
    obj = realchart.run_to_end(real_cluster, real_release, "metriceval", doc, tmp_path, timeout=900)

    assert_ran_in_the_torch_image_on_the_real_node_as_65532(real_cluster, real_release, "summaries")
    run_uri = obj["status"]["artifacts"]["runUri"]
    m = realchart.read_manifest(real_cluster, run_uri)
    assert m.state == "completed" and m.final["examplesScored"] == m.final["examplesTotal"] == 6
    for name in ("scores", "summary"):
        e = m.final["outputs"][name]
        assert _sha256(realchart.read_object(real_cluster, run_uri, e["path"])) == e["sha256"]
    rows = [json.loads(x) for x in realchart.read_object(real_cluster, run_uri, "scores.jsonl").decode().splitlines()]
    by = {r["id"]: r for r in rows}
    # The real MiniLM weights the image carries: faithful summaries above their unfaithful twins.
    assert by["s1"]["consistency"] > by["s1-wrong"]["consistency"]
    assert by["s3"]["consistency"] > by["s3-wrong"]["consistency"]


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
