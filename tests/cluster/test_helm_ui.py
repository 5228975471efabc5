"""The chart with ui.enabled installs into the real control plane: the apiserver accepts the UI's
Deployment and Service, and its pod is admitted in a namespace that enforces the restricted Pod
Security Standard and scheduled.

KWOK runs no containers: the UI pod is marked Running/Ready once scheduled, so this proves what the
apiserver, the admission plugins and the scheduler accept, not that `glassbox ui` serves pages (the
app over a real S3 server is tests/e2e; its probe route is tested in tests/unit/test_chart_ui.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from tests.cluster.test_helm_install import CHART, IMAGE, uninstall, Release
from tests.support.cluster import Cluster, node_pools


def test_ui_deployment_and_service_are_accepted_and_its_pod_admitted_as_restricted(
        cluster: Cluster, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    r = Release(name=f"gbu-{suffix}", namespace=f"glassbox-ui-{suffix}", fullname=f"gbu-{suffix}-glassbox", values={})
    peering = f"gbu-{suffix}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": r.namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    # The read-only credentials the UI is given by reference (placeholders: nothing reads them here).
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ui-readonly", "namespace": r.namespace},
                   "stringData": {"AWS_ACCESS_KEY_ID": "reader", "AWS_SECRET_ACCESS_KEY": "placeholder"}})
    values = {"image": IMAGE, "nodeSelector": {"glassbox.dev/pool": "cpu"}, "peering": {"name": peering},
              "storage": {"endpoint": "minio.minio.svc:9000", "secure": False},
              "ui": {"enabled": True, "credentialsSecret": "ui-readonly", "nodeSelector": {"glassbox.dev/pool": "cpu"}}}
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    try:
        # --wait: helm waits for both Deployments' pods to be Ready (KWOK marks them so once scheduled).
        out = cluster.helm("install", r.name, str(CHART), "--namespace", r.namespace, "-f", str(values_file),
                           "--wait", "--timeout", "180s", timeout=240)
        # The install notes say how to reach it.
        assert f"port-forward svc/{r.fullname}-ui 8265:8265" in out.stdout, out.stdout
        deploy = cluster.get("deployment", f"{r.fullname}-ui", r.namespace)
        assert deploy is not None and deploy["status"].get("readyReplicas") == 1
        spec = deploy["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["containers"][0]["command"] == ["glassbox", "ui"]
        service = cluster.get("service", f"{r.fullname}-ui", r.namespace)
        assert service is not None and service["spec"]["ports"][0]["port"] == 8265

        selector = ",".join(f"{k}={v}" for k, v in deploy["spec"]["selector"]["matchLabels"].items())
        (pod,) = cluster.kubectl_json("get", "pods", "-n", r.namespace, "-l", selector)["items"]
        # Admitted under `enforce: restricted` (a violating pod is refused at creation), as written.
        assert pod["spec"]["nodeName"] in node_pools()["cpu"]
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert not [m for m in container.get("volumeMounts", []) if "serviceaccount" in m["mountPath"]]
        env = {e["name"]: e for e in container["env"]}
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "ui-readonly",
                                                                             "key": "AWS_SECRET_ACCESS_KEY"}
        # The Service selects the UI pod and only it (not the operator's).
        svc_selector = ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())
        selected = cluster.kubectl_json("get", "pods", "-n", r.namespace, "-l", svc_selector)["items"]
        assert [p["metadata"]["name"] for p in selected] == [pod["metadata"]["name"]]
    finally:
        uninstall(cluster, r)
        cluster.delete("clusterkopfpeering", peering)
        cluster.delete("namespace", r.namespace)
