"""ScorerService on the real control plane, program not run: the tiny example's adaptation Job
(KWOK completes its pod; the test publishes the adapted checkpoint's manifest to the real S3 server
as the workload would) and then its InferenceService, accepted by the real KServe CRD and pointing
at the adapted checkpoint, with Ready patched as KServe would report it."""

from __future__ import annotations

import io
import json

from glassbox_api.manifest import CheckpointEntry, Manifest
from test_lifecycle import NOW, cond, events, example, patch_status, wait_phase


def _tiny(namespace: str) -> dict:
    d = example("scorer-tiny.yaml")
    d["metadata"] = {"name": "ct", "namespace": namespace}
    d["spec"]["adaptation"]["resources"] = {"backend": "job", "cpu": "1", "memory": "1Gi"}
    d["spec"]["resources"] = {"backend": "kserve", "cpu": "1", "memory": "1Gi"}
    d["spec"]["replicas"] = 2
    return d


def test_tiny_scorer_adaptation_job_then_kserve_isvc_to_ready_with_patched_isvc_status(cluster, operator, namespace, s3):
    cluster.apply(_tiny(namespace))
    job = cluster.wait_for(lambda: cluster.get("job", "ct-adapt-a0", namespace), what="adaptation Job")
    cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[-2:] == ["--stage", "train"]
    run_uri = cluster.wait_for(lambda: ((cluster.get("scorerservice", "ct", namespace) or {}).get("status") or {})
                               .get("artifacts", {}).get("runUri"), what="run uri")
    bucket, _, key = run_uri.removeprefix("s3://").partition("/")
    m = Manifest(kind="ScorerService", name="ct", namespace=namespace, total_steps=4, state="completed",
                 checkpoints=[CheckpointEntry(step=4, tokens=64, loss=0.27, path="checkpoints/00000004",
                                              evals={"rougeL": 0.5, "rougeL_first": 0.9667}, resumable=False)])
    body = json.dumps(m.to_json()).encode()
    s3.client().put_object(bucket, f"{key}/manifest.json", io.BytesIO(body), len(body))
    adapted = f"{run_uri}/checkpoints/00000004"

    def isvc_on_adapted():
        isvc = cluster.get("inferenceservice", "ct", namespace)
        if not isvc:
            return None
        c = isvc["spec"]["predictor"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        return isvc if env.get("STORAGE_URI") == adapted else None

    isvc = cluster.wait_for(isvc_on_adapted, timeout=120, what="InferenceService on the adapted checkpoint")
    c = isvc["spec"]["predictor"]["containers"][0]
    assert c["name"] == "kserve-container" and c["command"][-2:] == ["--stage", "serve"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v1/models/ct"
    obj = cluster.get("scorerservice", "ct", namespace)
    assert cond(obj, "Trained")["status"] == "True" and obj["status"]["phase"] == "Pending"
    url = f"http://ct.{namespace}.example.com"
    patch_status(cluster, "inferenceservice", "ct", namespace,
                 {"url": url, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}]})
    wait_phase(cluster, "scorerservice", "ct", namespace, "Ready")
    obj = cluster.get("scorerservice", "ct", namespace)
    st = obj["status"]
    assert st["endpoint"] == url and st["readyReplicas"] == 2
    assert st["progress"]["adaptationStep"] == 4 and st["progress"]["done"] == "4/4"
    assert st["progress"]["adaptationEval"]["rougeL"] == 0.5 and st["progress"]["latestCheckpoint"] == adapted
    wide = cluster.kubectl("get", "scorerservice", "ct", "-n", namespace, "-o", "wide").stdout.splitlines()[1]
    assert "Ready" in wide and "4/4" in wide and url in wide
    assert ("Normal", "Trained") in events(cluster, namespace, "ct")
    # kubectl scale goes through the scale subresource to the predictor's replicas
    cluster.kubectl("scale", "scorerservice", "ct", "-n", namespace, "--replicas", "3")
    cluster.wait_for(lambda: cluster.get("inferenceservice", "ct", namespace)["spec"]["predictor"].get("minReplicas") == 3,
                     what="InferenceService scaled to 3")
