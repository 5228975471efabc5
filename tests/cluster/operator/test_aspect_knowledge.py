"""A ShardedFinetune with the aspect-summarization recipe fed by a KGHarvest, on the real control
plane with the real S3 store: the operator holds it Pending until the harvest's manifest lists
kg.jsonl, then records the harvest in status.lineage.knowledge (with the digest the manifest lists)
and hands the harvest's run folder to the workload in its spec ConfigMap."""

from __future__ import annotations

import io
import json

from glassbox_api.manifest import Manifest
from test_kinds import job_kind
from test_lifecycle import cond


def test_aspect_finetune_waits_for_the_kgharvest_then_shows_its_lineage(cluster, operator, namespace, s3):
    cluster.apply(job_kind("kgharvest-gpu.yaml", "caps", namespace, "h100"))
    d = job_kind("finetune-aspects-gpu.yaml", "aspects", namespace, None)
    d["spec"]["model"] = {"uri": "s3://glassbox/models/bart"}
    d["spec"]["recipe"]["aspectSummarization"]["knowledge"] = {"fromRun": {"kind": "KGHarvest", "name": "caps"}}
    cluster.apply(d)
    obj = cluster.wait_for(lambda: (o := cluster.get("shardedfinetune", "aspects", namespace)) and cond(o, "ModelResolved") and o,
                           what="aspects waiting for the harvest")
    assert cond(obj, "ModelResolved")["reason"] == "WaitingForCheckpoint" and obj["status"]["phase"] == "Pending"
    assert "KGHarvest/caps" in obj["status"]["message"] and cluster.get("job", "aspects-a0", namespace) is None
    run_uri = cluster.wait_for(lambda: cluster.get("kgharvest", "caps", namespace)["status"]["artifacts"]["runUri"],
                               what="harvest run uri")
    bucket, _, key = run_uri.removeprefix("s3://").partition("/")
    kg = {"path": "kg.jsonl", "sha256": "c0" * 32, "size": 42}
    body = json.dumps({**Manifest(kind="KGHarvest", name="caps", state="completed").to_json(), "kg": kg}).encode()
    s3.client().put_object(bucket, f"{key}/manifest.json", io.BytesIO(body), len(body))
    cluster.wait_for(lambda: cluster.get("job", "aspects-a0", namespace), what="the finetune's Job after resolution")
    obj = cluster.get("shardedfinetune", "aspects", namespace)
    assert obj["status"]["lineage"] == {"knowledge": {"source": "KGHarvest/caps", "uri": f"{run_uri}/kg.jsonl",
                                                      "sha256": "c0" * 32, "runUri": run_uri}}
    assert cond(obj, "ModelResolved")["status"] == "True"
    cm = cluster.get("configmap", "aspects-spec", namespace)
    knowledge = json.loads(cm["data"]["resource.yaml"])["spec"]["recipe"]["aspectSummarization"]["knowledge"]
    assert knowledge == {"fromRun": {"kind": "KGHarvest", "name": "caps", "runUri": run_uri}}
