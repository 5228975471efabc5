"""The serving kinds for real, as a user runs them: `helm install` glassbox (the operator a pod on the
real node), `kubectl apply` the tiny ScorerService and DialogBot examples edited for the real pool.
Their training Job runs in a real container and publishes the checkpoint to the real S3 server;
KServe's controller (RawDeployment, hack/engines.sh) turns the InferenceService into a Deployment
and Service, its pod webhook injects the storage initializer that downloads that checkpoint, the
model server becomes Ready and answers real HTTP through the Service from a client pod; the
ScorerService's pairsScored (read by the operator from the server's /metrics on its pod IP) counts
what it scored."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import bins, realchart
from tests.support.node import RealCluster
from tests.support.realchart import Release

pytestmark = pytest.mark.slow

EXAMPLE = bins.REPO / "examples" / "scorer-tiny.yaml"
TASK = bins.REPO / "examples" / "data" / "scorer-task.jsonl"
DIALOG_EXAMPLE = bins.REPO / "examples" / "dialogbot-tiny.yaml"
CONSULTATIONS = bins.REPO / "examples" / "data" / "consultations.jsonl"
NAME = "cappy-real"
BOT = "covid-real"


@pytest.fixture(scope="module")
def release(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    installed = realchart.install(real_cluster, tmp_path_factory.mktemp("chart"))
    yield installed
    realchart.uninstall(real_cluster, installed)


def upload(real: RealCluster, release: Release, local: Path) -> str:
    """A data file of examples/ in S3: a pod has no checkout of the repository."""
    data = local.read_bytes()
    key = f"data/{release.workloads}/{local.name}"
    real.s3.client().put_object(realchart.BUCKET, key, io.BytesIO(data), len(data))
    return f"s3://{realchart.BUCKET}/{key}"


def tiny_scorer(real: RealCluster, release: Release) -> dict[str, Any]:
    """examples/scorer-tiny.yaml on the real pool."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = NAME
    spec = doc["spec"]
    uri = upload(real, release, TASK)
    spec["adaptation"]["data"]["uri"] = spec["adaptation"]["evalData"]["uri"] = uri
    # The real node has 2 CPUs for everything (the operator, other tests' pods): small requests.
    spec["adaptation"]["resources"] = {"backend": "job", "accelerator": "real", "cpu": "500m", "memory": "3Gi"}
    spec["resources"] = {"backend": "kserve", "accelerator": "real", "cpu": "500m", "memory": "2Gi"}
    spec["replicas"] = 1
    return doc


def wait_status(real: RealCluster, release: Release, what: str, check: Any, timeout: float,
                kind: str = "scorerservice", name: str = NAME) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        st = (real.cluster.get(kind, name, release.workloads) or {}).get("status") or {}
        if st.get("phase") == "Failed":
            raise AssertionError(f"{name} Failed: {st.get('message')}")
        return st if check(st) else None

    try:
        return real.cluster.wait_for(reached, timeout=timeout, interval=2, what=what)
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}\n{realchart.diagnostics(real, release)}") from None


CLIENT = """import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=120).read().decode())"""
RESTRICTED = {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def post_from_a_pod(real: RealCluster, ns: str, url: str, body: dict[str, Any], pod: str = "client") -> dict[str, Any]:
    """POST body to url from a restricted pod of the serving image on the real node; its answer."""
    c = real.cluster
    c.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
              "spec": {"nodeSelector": {"glassbox.dev/pool": "real"}, "restartPolicy": "Never",
                       "terminationGracePeriodSeconds": 1,
                       "containers": [{"name": "main", "image": real.image("serving"), "imagePullPolicy": "Never",
                                       "command": ["python", "-c", CLIENT, url, json.dumps(body)],
                                       "securityContext": RESTRICTED,
                                       "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                     "limits": {"memory": "256Mi"}}}]}}, namespace=ns)
    phase = c.wait_for(lambda: (c.get("pod", pod, ns)["status"].get("phase") in ("Succeeded", "Failed"))
                       and c.get("pod", pod, ns)["status"]["phase"], timeout=180, what=f"{pod} pod to end")
    log = c.kubectl("logs", "-n", ns, pod).stdout.strip()
    assert phase == "Succeeded", log
    return json.loads(log.splitlines()[-1])


def test_tiny_scorer_adapts_in_a_real_container_and_serves_real_http_through_kserve(
        real_cluster: RealCluster, release: Release, tmp_path: Path) -> None:
    real, ns = real_cluster, release.workloads
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(tiny_scorer(real, release), sort_keys=False))
    real.cluster.kubectl("apply", "-n", ns, "-f", str(path))
    # The adaptation Job's pod is gone once serving starts: note where it ran while waiting.
    adapt_nodes: set[str] = set()

    def ready(s: dict[str, Any]) -> bool:
        for p in real.cluster.kubectl_json("get", "pods", "-n", ns)["items"]:
            if p["metadata"].get("labels", {}).get("job-name", "").startswith(f"{NAME}-adapt") and p["spec"].get("nodeName"):
                adapt_nodes.add(p["spec"]["nodeName"])
        return s.get("phase") == "Ready"

    st = wait_status(real, release, f"{NAME} Ready", ready, timeout=1500)

    # The adaptation ran in a real container on the real node and published its checkpoint.
    assert adapt_nodes == {real.node_name}
    assert st["progress"]["done"] == "4/4"
    manifest = realchart.read_manifest(real, st["artifacts"]["runUri"])
    assert manifest.state == "completed" and manifest.latest is not None
    adapted = f"{st['artifacts']['runUri']}/{manifest.latest.path}"

    # KServe made it Ready: its status, its Deployment and Service, the storage initializer it injected.
    isvc = real.cluster.kubectl_json("get", "inferenceservice", NAME, "-n", ns, "--show-managed-fields")
    assert {m["manager"] for m in isvc["metadata"]["managedFields"] if m.get("subresource") == "status"} == {"kserve-manager"}
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    assert env["STORAGE_URI"] == adapted
    (pod,) = real.cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"serving.kserve.io/inferenceservice={NAME}")["items"]
    assert pod["spec"]["nodeName"] == real.node_name
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["name"] == "storage-initializer" and init["state"]["terminated"]["exitCode"] == 0
    log = real.cluster.kubectl("logs", "-n", ns, pod["metadata"]["name"], "-c", "storage-initializer").stdout
    assert f"from {adapted} to /mnt/models" in log and " 0 objects" not in log

    # Real HTTP through the predictor Service, as an in-cluster client sends it (cluster DNS, the
    # Service's ClusterIP, kube-proxy): a pod of the serving image posts the task's pairs.
    tasks = [json.loads(line) for line in TASK.read_text().splitlines() if line.strip()]
    instances = [{"instruction": t["instruction"], "response": r} for t in tasks for r in t["samples"]]
    url = f"http://{NAME}-predictor.{ns}.svc.cluster.local/v1/models/{NAME}:predict"
    scores = post_from_a_pod(real, ns, url, {"instances": instances})["predictions"]
    assert len(scores) == len(instances) and all(isinstance(s, float) for s in scores)

    # The operator reads the replica's /metrics: pairsScored counts the pairs it scored.
    st = wait_status(real, release, "pairsScored", lambda s: (s.get("progress") or {}).get("pairsScored", 0) >= len(instances),
                     timeout=180)
    assert st["progress"]["pairsScored"] == len(instances)
    assert st["endpoint"] == f"http://{NAME}-predictor.{ns}.svc.cluster.local"


def test_tiny_dialogbot_trains_in_a_real_container_and_chats_through_kserve(
        real_cluster: RealCluster, release: Release, tmp_path: Path) -> None:
    real, ns = real_cluster, release.workloads
    doc = yaml.safe_load(DIALOG_EXAMPLE.read_text())
    doc["metadata"]["name"] = BOT
    spec = doc["spec"]
    spec["training"]["data"]["uri"] = upload(real, release, CONSULTATIONS)
    spec["training"]["resources"] = {"backend": "job", "accelerator": "real", "cpu": "500m", "memory": "3Gi"}
    spec["serving"]["resources"] = {"backend": "kserve", "accelerator": "real", "cpu": "500m", "memory": "2Gi"}
    path = tmp_path / f"{BOT}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    real.cluster.kubectl("apply", "-n", ns, "-f", str(path))
    st = wait_status(real, release, f"{BOT} Ready", lambda s: s.get("phase") == "Ready", timeout=1500,
                     kind="dialogbot", name=BOT)
    manifest = realchart.read_manifest(real, st["artifacts"]["runUri"])
    assert manifest.state == "completed" and manifest.latest is not None
    (pod,) = real.cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"serving.kserve.io/inferenceservice={BOT}")["items"]
    assert pod["spec"]["nodeName"] == real.node_name
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0

    url = f"http://{BOT}-predictor.{ns}.svc.cluster.local/openai/v1/chat/completions"
    out = post_from_a_pod(real, ns, url, {"messages": [{"role": "user", "content": "I have a fever and a dry cough."}]},
                          pod="chat")
    reply = out["choices"][0]["message"]["content"]
    assert out["disclaimer"] and reply.endswith(out["disclaimer"]) and len(reply) > len(out["disclaimer"])
