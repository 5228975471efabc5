"""The operator on the real control plane: children accepted by the real CRD schemas, pods placed
by the real scheduler, child outcomes (KWOK for Jobs; status patched as KubeRay/JobSet/KServe
would) reflected in phase, conditions, events and printer columns; retries, suspend, cascade, fromRun."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import yaml

from glassbox_api.manifest import CheckpointEntry, Manifest

ROOT = Path(__file__).resolve().parents[3]
NOW = "2026-01-01T00:00:00Z"


def example(name: str) -> dict:
    return yaml.safe_load((ROOT / "examples" / name).read_text())


def pretrain(name: str, ns: str, backend: str, workers: int, accel: str | None, retries: int = 1) -> dict:
    d = example("pretrain-gpu.yaml")
    d["metadata"] = {"name": name, "namespace": ns}
    d["spec"]["resources"] = {"backend": backend, "workers": workers, **({"accelerator": accel} if accel else {}),
                              "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    d["spec"]["failurePolicy"] = {"maxRetries": retries, "backoffSeconds": 1}
    return d


def tpu_finetune(name: str, ns: str, workers: int = 8) -> dict:
    """A ShardedFinetune on the TPU pool (jobset backend, tpu-v5e-16 slices) from a model URI."""
    d = example("finetune-tpu.yaml")
    d["metadata"] = {"name": name, "namespace": ns}
    d["spec"]["model"] = {"uri": "s3://glassbox/models/base"}
    d["spec"]["resources"] = {"backend": "jobset", "workers": workers, "accelerator": "tpu-v5e-16", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    return d


def phase(cluster, kind, name, ns):
    obj = cluster.get(kind, name, ns)
    return (obj or {}).get("status", {}).get("phase")


def cond(obj, ctype):
    return next((c for c in obj["status"].get("conditions", []) if c["type"] == ctype), None)


def events(cluster, ns, name):
    items = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    return [(e["type"], e["reason"]) for e in items]


def wait_phase(cluster, kind, name, ns, want, timeout=60):
    return cluster.wait_for(lambda: phase(cluster, kind, name, ns) == want, timeout=timeout, what=f"{kind}/{name} {want}")


def patch_status(cluster, kind, name, ns, status):
    cluster.kubectl("patch", kind, name, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))


def test_job_backend_runs_on_the_gpu_pool_and_succeeds(cluster, operator, namespace):
    cluster.apply(pretrain("pj", namespace, "job", 1, "h100"))
    wait_phase(cluster, "pretrainrun", "pj", namespace, "Succeeded")
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=pj-a0")["items"]
    assert pods and all(p["spec"]["nodeName"].startswith("h100") for p in pods)
    obj = cluster.get("pretrainrun", "pj", namespace)
    assert cond(obj, "Succeeded")["status"] == "True" and obj["status"]["observedGeneration"] == 1
    assert obj["status"]["artifacts"]["runUri"].startswith("s3://glassbox/runs/")
    assert {("Normal", "Created"), ("Normal", "Succeeded")} <= set(events(cluster, namespace, "pj"))
    table = cluster.kubectl("get", "pretrainrun", "pj", "-n", namespace).stdout
    assert "Succeeded" in table.splitlines()[1]
    # delete cascades to the children (ownerReferences, garbage collector)
    cluster.delete("pretrainrun", "pj", namespace=namespace)
    cluster.wait_for(lambda: cluster.get("job", "pj-a0", namespace) is None and cluster.get("configmap", "pj-spec", namespace) is None,
                     timeout=60, what="children garbage-collected")


def test_cpu_job_lands_on_the_cpu_pool(cluster, operator, namespace):
    cluster.apply(pretrain("pc", namespace, "job", 1, None))
    wait_phase(cluster, "pretrainrun", "pc", namespace, "Succeeded")
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=pc-a0")["items"]
    assert pods and all(p["spec"]["nodeName"].startswith("cpu") for p in pods)


def test_rayjob_success_as_kuberay_reports_it(cluster, operator, namespace):
    cluster.apply(pretrain("pr", namespace, "ray", 2, "h100"))
    rj = cluster.wait_for(lambda: cluster.get("rayjob", "pr-a0", namespace), what="RayJob")
    assert rj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] == 2
    patch_status(cluster, "rayjob", "pr-a0", namespace, {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"})
    wait_phase(cluster, "pretrainrun", "pr", namespace, "Running")
    patch_status(cluster, "rayjob", "pr-a0", namespace, {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete", "endTime": NOW})
    wait_phase(cluster, "pretrainrun", "pr", namespace, "Succeeded")
    assert ("Normal", "Started") in events(cluster, namespace, "pr")


def test_jobset_failure_is_retried_then_fails_with_a_reason(cluster, operator, namespace):
    d = tpu_finetune("ft", namespace)
    d["spec"]["failurePolicy"] = {"maxRetries": 1, "backoffSeconds": 1}
    cluster.apply(d)
    js = cluster.wait_for(lambda: cluster.get("jobset", "ft-a0", namespace), what="JobSet a0")
    assert js["spec"]["replicatedJobs"][0]["replicas"] == 2
    failed = {"conditions": [{"type": "Failed", "status": "True", "reason": "FailedJobs", "message": "slice 1 failed", "lastTransitionTime": NOW}]}
    patch_status(cluster, "jobset", "ft-a0", namespace, failed)
    cluster.wait_for(lambda: cluster.get("jobset", "ft-a1", namespace), what="JobSet a1 (retry)")
    cluster.wait_for(lambda: cluster.get("jobset", "ft-a0", namespace) is None, what="failed attempt removed")
    assert ("Warning", "Retrying") in events(cluster, namespace, "ft")
    patch_status(cluster, "jobset", "ft-a1", namespace, failed)
    wait_phase(cluster, "shardedfinetune", "ft", namespace, "Failed")
    obj = cluster.get("shardedfinetune", "ft", namespace)
    c = cond(obj, "Failed")
    assert c["reason"] == "RetriesExhausted" and "FailedJobs" in c["message"]
    assert obj["status"]["retries"] == 1
    assert ("Warning", "RetriesExhausted") in events(cluster, namespace, "ft")


def test_scorerservice_ready_suspend_resume_on_patched_isvc_not_the_program(cluster, operator, namespace):
    """The operator's service lifecycle for a ScorerService, whose program does not exist yet: the
    InferenceService's Ready is patched as KServe would (no scorer serves), then suspend and resume."""
    d = example("scorer-gpu.yaml")
    d["metadata"] = {"name": "sc", "namespace": namespace}
    d["spec"]["resources"].pop("priorityClassName", None)
    d["spec"]["replicas"] = 2
    cluster.apply(d)
    cluster.wait_for(lambda: cluster.get("inferenceservice", "sc", namespace), what="InferenceService")
    sa = cluster.get("serviceaccount", "sc-serving", namespace)
    assert sa["secrets"] == [{"name": d["spec"]["storage"]["secretRef"]["name"]}]
    url = f"http://sc.{namespace}.example.com"
    patch_status(cluster, "inferenceservice", "sc", namespace, {"url": url, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}]})
    wait_phase(cluster, "scorerservice", "sc", namespace, "Ready")
    obj = cluster.get("scorerservice", "sc", namespace)
    assert obj["status"]["endpoint"] == url and obj["status"]["readyReplicas"] == 2
    row = cluster.kubectl("get", "scorerservice", "sc", "-n", namespace).stdout.splitlines()[1]
    assert "Ready" in row and url in row
    cluster.kubectl("patch", "scorerservice", "sc", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_phase(cluster, "scorerservice", "sc", namespace, "Suspended")
    cluster.wait_for(lambda: cluster.get("inferenceservice", "sc", namespace) is None, what="InferenceService removed")
    cluster.kubectl("patch", "scorerservice", "sc", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    cluster.wait_for(lambda: cluster.get("inferenceservice", "sc", namespace), what="InferenceService back")
    assert ("Normal", "Resumed") in events(cluster, namespace, "sc")


def test_from_run_waits_for_a_checkpoint_then_resolves(cluster, operator, namespace, s3):
    src = pretrain("src", namespace, "ray", 1, None)
    cluster.apply(src)
    d = example("finetune-tpu.yaml")
    d["metadata"] = {"name": "child", "namespace": namespace}
    d["spec"]["model"] = {"fromRun": {"kind": "PretrainRun", "name": "src", "checkpoint": "step-20"}}
    d["spec"]["resources"] = {"backend": "job", "workers": 1, "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    cluster.apply(d)
    obj = cluster.wait_for(lambda: (o := cluster.get("shardedfinetune", "child", namespace)) and cond(o, "ModelResolved") and o, what="waiting")
    assert cond(obj, "ModelResolved")["reason"] == "WaitingForCheckpoint" and obj["status"]["phase"] == "Pending"
    assert cond(obj, "Reconciling")["reason"] == "WaitingForCheckpoint" and cond(obj, "Stalled")["status"] == "False"
    assert cluster.get("job", "child-a0", namespace) is None
    # Waiting is normal: no ERROR line from Kopf's retry of the waiting pass, no Error event.
    time.sleep(3)
    log = (operator.workdir / f"operator-{operator.starts}.log").read_text(errors="replace")
    assert [line for line in log.splitlines() if "ERROR" in line and "failed temporarily" in line] == []
    assert not [e for e in events(cluster, namespace, "child") if e[0] == "Error"]
    run_uri = cluster.wait_for(lambda: cluster.get("pretrainrun", "src", namespace)["status"]["artifacts"]["runUri"], what="source run uri")
    bucket, _, key = run_uri.removeprefix("s3://").partition("/")
    m = Manifest(checkpoints=[CheckpointEntry(step=20, tokens=100, path="checkpoints/00000020")])
    body = json.dumps(m.to_json()).encode()
    s3.client().put_object(bucket, f"{key}/manifest.json", io.BytesIO(body), len(body))
    cluster.wait_for(lambda: cluster.get("job", "child-a0", namespace), what="child Job after resolution")
    obj = cluster.get("shardedfinetune", "child", namespace)
    assert obj["status"]["lineage"] == {"source": "PretrainRun/src@step-20", "uri": f"{run_uri}/checkpoints/00000020", "step": 20}
    cm = cluster.get("configmap", "child-spec", namespace)
    assert json.loads(cm["data"]["resource.yaml"])["spec"]["model"] == {"uri": f"{run_uri}/checkpoints/00000020"}


def test_unknown_pool_is_refused_with_a_warning(cluster, operator, namespace):
    cluster.apply(pretrain("bad", namespace, "job", 1, "a100"))
    wait_phase(cluster, "pretrainrun", "bad", namespace, "Failed")
    assert cond(cluster.get("pretrainrun", "bad", namespace), "Failed")["reason"] == "UnknownNodePool"
    assert ("Warning", "UnknownNodePool") in events(cluster, namespace, "bad")
