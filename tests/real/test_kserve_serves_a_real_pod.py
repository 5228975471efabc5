"""KServe's controller (hack/engines.sh, RawDeployment) with a real pod: an InferenceService whose
predictor is the probe's web server on the real node becomes a Deployment and a Service, the pod
really runs and turns Ready, KServe reports the InferenceService Ready at the Service's cluster DNS
name, and a client pod gets the server's answer through that name (cluster DNS, the Service's
ClusterIP, kube-proxy). Needs no built glassbox image (GLASSBOX_TEST_REAL_IMAGES=0 is enough)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import node as node_support
from tests.support.node import RealCluster

RESTRICTED = {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.fixture(scope="module")
def ns(real_cluster: RealCluster) -> Iterator[str]:
    name = f"kserve-{uuid.uuid4().hex[:6]}"
    real_cluster.cluster.kubectl("create", "namespace", name)
    real_cluster.cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    yield name
    real_cluster.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def container(image: str, args: list[str]) -> dict[str, Any]:
    return {"image": image, "imagePullPolicy": "Never", "args": args, "securityContext": RESTRICTED,
            "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}}


def test_an_inferenceservice_on_the_real_node_is_ready_and_answers_through_its_service(
        real_cluster: RealCluster, ns: str) -> None:
    c = real_cluster.cluster
    probe = node_support.probe_image(real_cluster.env["GLASSBOX_CONTAINERD_ADDRESS"])
    predictor = {**container(probe, ["serve", "8080"]), "name": "kserve-container",
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    c.apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
             "metadata": {"name": "web", "namespace": ns},
             "spec": {"predictor": {"minReplicas": 1, "maxReplicas": 1, "nodeSelector": {"glassbox.dev/pool": "real"},
                                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                                    "containers": [predictor]}}})

    def ready() -> dict[str, Any] | None:
        isvc = c.get("inferenceservice", "web", ns) or {}
        conds = {x["type"]: x["status"] for x in (isvc.get("status") or {}).get("conditions") or []}
        return isvc if conds.get("Ready") == "True" else None

    try:
        isvc = c.wait_for(ready, timeout=180, interval=1, what="InferenceService web Ready")
    except TimeoutError as exc:
        pods = c.kubectl("get", "pods,deploy,svc", "-n", ns, "-o", "wide", check=False).stdout
        events = c.kubectl("get", "events", "-n", ns, check=False).stdout[-3000:]
        raise AssertionError(f"{exc}\n{pods}\n{events}") from None
    url = f"http://web-predictor.{ns}.svc.cluster.local"
    assert isvc["status"]["url"] == url
    (pod,) = c.kubectl_json("get", "pods", "-n", ns, "-l", "serving.kserve.io/inferenceservice=web")["items"]
    assert pod["spec"]["nodeName"] == real_cluster.node_name
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    deploy = c.get("deployment", "web-predictor", ns)
    assert [r["kind"] for r in deploy["metadata"]["ownerReferences"]] == ["InferenceService"]

    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
              "spec": {"nodeSelector": {"glassbox.dev/pool": "real"}, "restartPolicy": "Never",
                       "terminationGracePeriodSeconds": 1,
                       "containers": [{**container(probe, ["get", f"{url}/"]), "name": "main"}]}}
    c.create(client, namespace=ns)
    phase = c.wait_for(lambda: (c.get("pod", "client", ns)["status"].get("phase") in ("Succeeded", "Failed"))
                       and c.get("pod", "client", ns)["status"]["phase"], timeout=90, what="client pod to end")
    log = c.kubectl("logs", "-n", ns, "client").stdout.strip()
    assert phase == "Succeeded", log
    assert log == f"status 200 probe {pod['metadata']['name']}", log
