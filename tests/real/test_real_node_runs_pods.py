"""The real node runs real pods: containers in containerd, on the CNI bridge, with cluster DNS and
Services, reaching the S3 server and the apiserver on the host's bridge address.

Pods use the pause image hack/node.sh builds and the probe image (tests/real/probe), both imported
into the node's containerd, so none of this needs the glassbox images.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import node as node_support
from tests.support.node import RealCluster

RESTRICTED = {
    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True, "runAsUser": 65535, "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def ns(real_cluster: RealCluster) -> Iterator[str]:
    name = f"node-{uuid.uuid4().hex[:6]}"
    real_cluster.cluster.kubectl("create", "namespace", name)
    real_cluster.cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    yield name
    real_cluster.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def probe(real_cluster: RealCluster) -> str:
    return node_support.probe_image(real_cluster.env["GLASSBOX_CONTAINERD_ADDRESS"])


def pod(name: str, image: str, args: list[str], *, restart: str = "Never", port: int | None = None,
        labels: dict[str, str] | None = None, memory: str = "64Mi") -> dict[str, Any]:
    """A restricted-profile pod pinned to the real pool, with a memory limit."""
    container: dict[str, Any] = {
        "name": "main", "image": image, "imagePullPolicy": "Never", "args": args,
        "securityContext": RESTRICTED,
        "resources": {"requests": {"cpu": "10m", "memory": memory}, "limits": {"memory": memory}},
    }
    if port:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": port}, "periodSeconds": 1}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"nodeSelector": {"glassbox.dev/pool": "real"}, "restartPolicy": restart,
                 "terminationGracePeriodSeconds": 1, "enableServiceLinks": False, "containers": [container]},
    }


def run_to_end(real: RealCluster, ns: str, manifest: dict[str, Any], timeout: float = 90) -> tuple[str, str]:
    """Create a pod, wait until it has ended; its phase and its log."""
    c = real.cluster
    c.create(manifest, namespace=ns)
    name = manifest["metadata"]["name"]
    phase = c.wait_for(lambda: c.get("pod", name, ns)["status"].get("phase") in ("Succeeded", "Failed")
                       and c.get("pod", name, ns)["status"]["phase"], timeout=timeout, what=f"pod {name} to end")
    return phase, c.kubectl("logs", "-n", ns, name).stdout.strip()


def test_the_real_node_is_ready_unmanaged_by_kwok_and_untainted(real_cluster: RealCluster) -> None:
    node = real_cluster.cluster.get("node", real_cluster.node_name)
    assert node is not None
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["metadata"]["labels"]["glassbox.dev/pool"] == "real"
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
    assert not node["spec"].get("taints")
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.1"
    assert info["containerRuntimeVersion"].startswith("containerd://1.6")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == real_cluster.host_ip


def test_a_pause_pod_becomes_ready_on_the_real_node(real_cluster: RealCluster, ns: str) -> None:
    c = real_cluster.cluster
    c.create(pod("pause", real_cluster.settings["PAUSE_IMAGE"], []), namespace=ns)
    c.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/pause", "--timeout=90s", timeout=120)
    got = c.get("pod", "pause", ns)
    assert got["spec"]["nodeName"] == real_cluster.node_name
    assert got["status"]["podIP"].startswith(real_cluster.host_ip.rsplit(".", 1)[0] + ".")
    # A real container in containerd: its id is containerd's, and it restarted never.
    status = got["status"]["containerStatuses"][0]
    assert status["containerID"].startswith("containerd://") and status["restartCount"] == 0


def test_a_restricted_pod_runs_with_its_memory_limit_in_its_cgroup(real_cluster: RealCluster, ns: str,
                                                                 probe: str) -> None:
    phase, log = run_to_end(real_cluster, ns, pod("memlimit", probe, ["memlimit"], memory="48Mi"))
    assert phase == "Succeeded", log
    assert log == f"memlimit {48 * 1024 * 1024}"


def test_a_failing_container_reports_its_exit_code(real_cluster: RealCluster, ns: str, probe: str) -> None:
    phase, log = run_to_end(real_cluster, ns, pod("fails", probe, ["no-such-subcommand"]))
    assert phase == "Failed"
    state = real_cluster.cluster.get("pod", "fails", ns)["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 2
    assert "unknown subcommand" in log


def test_a_pod_resolves_a_service_name_and_reaches_it_through_its_cluster_ip(
        real_cluster: RealCluster, ns: str, probe: str) -> None:
    c = real_cluster.cluster
    c.create(pod("web", probe, ["serve", "8080"], port=8080, labels={"app": "web"}), namespace=ns)
    c.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
              "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}, namespace=ns)
    c.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/web", "--timeout=90s", timeout=120)
    cluster_ip = c.get("service", "web", ns)["spec"]["clusterIP"]
    fqdn = f"web.{ns}.svc.cluster.local"
    phase, log = run_to_end(real_cluster, ns, pod("resolve", probe, ["resolve", fqdn]))
    assert (phase, log) == ("Succeeded", f"resolved {fqdn} {cluster_ip}")
    # The short name through the pod's search path, and the port of the Service, not the pod's.
    phase, log = run_to_end(real_cluster, ns, pod("get", probe, ["get", "http://web/"]))
    assert (phase, log) == ("Succeeded", "status 200 probe web")


def test_a_pod_reaches_the_apiserver_through_the_kubernetes_service(real_cluster: RealCluster, ns: str,
                                                                   probe: str) -> None:
    # Anonymous: 401 or 403 proves the TLS connection to the real apiserver through its ClusterIP.
    phase, log = run_to_end(real_cluster, ns, pod("api", probe, ["get", "https://kubernetes.default.svc/version"]))
    assert phase == "Succeeded", log
    status = int(log.split()[1])
    assert status in (200, 401, 403), log


def test_a_pod_reaches_the_s3_server_on_the_bridge_address(real_cluster: RealCluster, ns: str, probe: str) -> None:
    endpoint = real_cluster.env["GLASSBOX_S3_ENDPOINT"]
    assert real_cluster.host_ip in endpoint
    bucket = f"probe-{uuid.uuid4().hex[:6]}"
    client = real_cluster.s3.client()
    client.make_bucket(bucket)
    # An unsigned GET of a bucket is refused by the server itself: an S3 AccessDenied document.
    phase, log = run_to_end(real_cluster, ns, pod("s3", probe, ["get", f"{endpoint}/{bucket}"]))
    assert phase == "Succeeded", log
    assert log.startswith("status 403") and "AccessDenied" in log, log


def test_pods_reach_nothing_beyond_this_machine(real_cluster: RealCluster, ns: str, probe: str) -> None:
    # A documentation address (TEST-NET-3): never routed; the bridge guard rejects it at once.
    phase, log = run_to_end(real_cluster, ns, pod("outside", probe, ["get", "http://203.0.113.1/"]))
    assert phase == "Failed"
    assert "connection refused" in log or "unreachable" in log, log


def test_the_pods_are_containerd_containers_in_the_k8s_io_namespace(real_cluster: RealCluster, ns: str) -> None:
    address = real_cluster.env["GLASSBOX_CONTAINERD_ADDRESS"]
    images = subprocess.run(["ctr", "-a", address, "-n", "k8s.io", "images", "ls", "-q"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert real_cluster.settings["PAUSE_IMAGE"] in images
    pods = json.loads(subprocess.run(
        ["crictl", "--runtime-endpoint", f"unix://{address}", "pods", "--namespace", ns, "-o", "json"],
        capture_output=True, text=True, check=True, env=_env_with_path(real_cluster)).stdout)["items"]
    assert {p["metadata"]["name"] for p in pods} >= {"pause"}


def _env_with_path(real: RealCluster) -> dict[str, str]:
    return {**os.environ, "PATH": real.env["PATH"] + os.pathsep + os.environ.get("PATH", "")}
