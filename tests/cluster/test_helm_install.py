"""The Helm chart installs into the real control plane, grants what the operator needs and no more,
and uninstalls cleanly.

Permissions are checked with `kubectl auth can-i --as=system:serviceaccount:NS:SA`: the apiserver's
own RBAC authorizer answers, so a rule the chart forgot (or grants too widely) fails here.
KWOK runs no containers: the operator pod goes Running/Ready once scheduled, which is what
`helm install --wait` waits for; the operator program itself is exercised by the e2e tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster, node_pools

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "glassbox"
# The operator image is never pulled (KWOK fakes the containers); a name that cannot resolve makes
# sure nothing ever tries.
IMAGE = {"registry": "registry.invalid", "repository": "glassbox/operator", "tag": "test"}


@dataclass
class Release:
    name: str
    namespace: str
    fullname: str
    values: dict[str, Any]

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"


def install(cluster: Cluster, tmp_path: Path, values: dict[str, Any]) -> Release:
    """helm install a fresh release into a fresh namespace and wait for the operator pod."""
    suffix = uuid.uuid4().hex[:6]
    release = Release(name=f"gbt-{suffix}", namespace=f"glassbox-{suffix}", fullname=f"gbt-{suffix}-glassbox",
                      values=values)
    # The operator must be admissible under the restricted Pod Security Standard.
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": release.namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    values_file = tmp_path / f"values-{suffix}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    cluster.helm("install", release.name, str(CHART), "--namespace", release.namespace,
                 "-f", str(values_file), "--wait", "--timeout", "180s", timeout=240)
    return release


def uninstall(cluster: Cluster, release: Release) -> None:
    cluster.helm("uninstall", release.name, "--namespace", release.namespace, "--wait", "--timeout", "120s",
                 check=False, timeout=180)


def can(cluster: Cluster, release: Release, *args: str) -> bool:
    """kubectl auth can-i ... as the operator's ServiceAccount."""
    proc = cluster.kubectl("auth", "can-i", *args, f"--as={release.service_account}", check=False)
    answer = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert answer in {"yes", "no"}, proc.stdout + proc.stderr
    return answer == "yes"


def base_values(peering: str) -> dict[str, Any]:
    # A peering name of its own: other tests of the session may run a real operator peering as "glassbox".
    return {"image": IMAGE, "nodeSelector": {"glassbox.dev/pool": "cpu"}, "peering": {"name": peering}}


@pytest.fixture(scope="module")
def cluster_wide(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    peering = f"gbt-{uuid.uuid4().hex[:6]}"
    release = install(cluster, tmp_path_factory.mktemp("helm"), {**base_values(peering), "replicas": 1})
    yield release
    uninstall(cluster, release)
    cluster.delete("clusterkopfpeering", peering)
    cluster.delete("namespace", release.namespace)


@pytest.fixture(scope="module")
def other_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"other-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.delete("namespace", name)


def test_install_creates_the_operator_identity_and_config(cluster: Cluster, cluster_wide: Release) -> None:
    r = cluster_wide
    sa = cluster.get("serviceaccount", r.fullname, r.namespace)
    assert sa is not None
    assert cluster.get("clusterrole", r.fullname) is not None
    binding = cluster.get("clusterrolebinding", r.fullname)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": r.fullname, "namespace": r.namespace}]
    assert binding["roleRef"]["name"] == r.fullname
    assert cluster.get("clusterrole", f"{r.fullname}-edit") is not None
    assert cluster.get("clusterrole", f"{r.fullname}-view") is not None
    config = cluster.get("configmap", f"{r.fullname}-config", r.namespace)
    pools = yaml.safe_load(config["data"]["config.yaml"])["nodePools"]
    assert set(pools) == set(node_pools())  # the chart's default pools are the test cluster's pools
    assert cluster.get("service", f"{r.fullname}-metrics", r.namespace) is not None
    # The peering object the operator waits for exists (a post-install hook, after its CRD).
    assert cluster.get("clusterkopfpeering", r.values["peering"]["name"]) is not None


def test_operator_pod_runs_on_the_cpu_pool(cluster: Cluster, cluster_wide: Release) -> None:
    r = cluster_wide
    deployment = cluster.get("deployment", r.fullname, r.namespace)
    assert deployment["status"].get("readyReplicas") == 1
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    pods = cluster.kubectl_json("get", "pods", "-n", r.namespace, "-l", selector)["items"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["nodeName"] in node_pools()["cpu"]
    # The apiserver kept the hardened pod as the chart wrote it (restricted Pod Security Standard).
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["serviceAccountName"] == r.fullname


@pytest.mark.parametrize("args", [
    ["patch", "pretrainruns.glassbox.dev", "--subresource=status"],
    ["watch", "shardedfinetunes.glassbox.dev"],
    ["patch", "scorerservices.glassbox.dev", "--subresource=scale"],
    ["update", "dialogbots.glassbox.dev", "--subresource=finalizers"],
    ["create", "rayjobs.ray.io"],
    ["delete", "rayjobs.ray.io"],
    ["create", "jobsets.jobset.x-k8s.io"],
    ["create", "jobs.batch"],
    ["patch", "inferenceservices.serving.kserve.io"],
    ["create", "configmaps"],
    ["create", "serviceaccounts"],
    ["watch", "pods"],
    ["create", "events"],
    ["create", "events.events.k8s.io"],
])
def test_service_account_can_do_its_job(cluster: Cluster, cluster_wide: Release, other_namespace: str,
                                        args: list[str]) -> None:
    # Cluster-wide scope: in any namespace, not only the release's.
    assert can(cluster, cluster_wide, *args, "-n", other_namespace), args


def test_service_account_peering_and_leases(cluster: Cluster, cluster_wide: Release) -> None:
    r = cluster_wide
    assert can(cluster, r, "patch", "clusterkopfpeerings.kopf.dev")
    assert can(cluster, r, "watch", "clusterkopfpeerings.kopf.dev")
    assert can(cluster, r, "update", "leases.coordination.k8s.io", "-n", r.namespace)
    assert not can(cluster, r, "update", "leases.coordination.k8s.io", "-n", "kube-system")


@pytest.mark.parametrize("args", [
    ["list", "secrets", "--all-namespaces"],
    ["get", "secrets", "-n", "default"],
    ["delete", "nodes"],
    ["list", "nodes"],
    ["create", "pods", "-n", "default"],
    ["delete", "pods", "-n", "default"],
    ["create", "pretrainruns.glassbox.dev", "-n", "default"],
    ["delete", "pretrainruns.glassbox.dev", "-n", "default"],
    ["create", "clusterrolebindings.rbac.authorization.k8s.io"],
    ["create", "roles.rbac.authorization.k8s.io", "-n", "default"],
    ["delete", "customresourcedefinitions.apiextensions.k8s.io"],
    ["delete", "namespaces"],
    ["create", "clusterkopfpeerings.kopf.dev"],
    ["delete", "deployments.apps", "-n", "default"],
    ["list", "rayclusters.ray.io"],  # KubeRay's; the RayJob's status is enough
])
def test_service_account_cannot_overreach(cluster: Cluster, cluster_wide: Release, args: list[str]) -> None:
    assert not can(cluster, cluster_wide, *args), args


def test_namespaced_scope_is_confined(cluster: Cluster, tmp_path: Path, other_namespace: str) -> None:
    watched = f"team-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", watched)
    peering = f"gbt-{uuid.uuid4().hex[:6]}"
    release = install(cluster, tmp_path, {**base_values(peering), "watchNamespaces": [watched]})
    try:
        assert can(cluster, release, "create", "rayjobs.ray.io", "-n", watched)
        assert can(cluster, release, "patch", "pretrainruns.glassbox.dev", "--subresource=status", "-n", watched)
        assert can(cluster, release, "patch", "kopfpeerings.kopf.dev", "-n", watched)
        assert not can(cluster, release, "create", "rayjobs.ray.io", "-n", other_namespace)
        assert not can(cluster, release, "list", "pretrainruns.glassbox.dev", "--all-namespaces")
        assert not can(cluster, release, "patch", "clusterkopfpeerings.kopf.dev")
        assert not can(cluster, release, "get", "secrets", "-n", watched)
        # Read-only discovery is all it has cluster-wide.
        assert can(cluster, release, "watch", "customresourcedefinitions.apiextensions.k8s.io")
        assert cluster.get("role", release.fullname, watched) is not None
        assert cluster.get("clusterrole", release.fullname) is None
        assert cluster.get("kopfpeering", peering, watched) is not None
    finally:
        uninstall(cluster, release)
        cluster.delete("namespace", watched)
        cluster.delete("namespace", release.namespace)


def test_upgrade_then_uninstall(cluster: Cluster, tmp_path: Path) -> None:
    peering = f"gbt-{uuid.uuid4().hex[:6]}"
    r = install(cluster, tmp_path, base_values(peering))
    try:
        # A live replica's keep-alive in the peering object must survive an upgrade.
        cluster.kubectl("patch", "clusterkopfpeering", peering, "--type=merge",
                        "-p", '{"status": {"replica-a": {"priority": 7, "lifetime": 60}}}')
        before = cluster.get("deployment", r.fullname, r.namespace)["spec"]["template"]["metadata"]["annotations"]
        values_file = tmp_path / "upgrade.yaml"
        values_file.write_text(yaml.safe_dump({**base_values(peering), "nodePools": {"h100": {"count": 4}}}))
        cluster.helm("upgrade", r.name, str(CHART), "--namespace", r.namespace, "-f", str(values_file),
                     "--wait", "--timeout", "180s", timeout=240)
        after = cluster.get("deployment", r.fullname, r.namespace)["spec"]["template"]["metadata"]["annotations"]
        assert after["checksum/config"] != before["checksum/config"]  # a config change rolls the operator
        config = cluster.get("configmap", f"{r.fullname}-config", r.namespace)
        assert yaml.safe_load(config["data"]["config.yaml"])["nodePools"]["h100"]["count"] == 4
        assert cluster.get("clusterkopfpeering", peering)["status"]["replica-a"]["priority"] == 7

        out = cluster.helm("uninstall", r.name, "--namespace", r.namespace, "--wait", "--timeout", "120s", timeout=180)
        assert "uninstalled" in out.stdout
        for kind, name, ns in [
            ("deployment", r.fullname, r.namespace),
            ("serviceaccount", r.fullname, r.namespace),
            ("configmap", f"{r.fullname}-config", r.namespace),
            ("service", f"{r.fullname}-metrics", r.namespace),
            ("role", f"{r.fullname}-leases", r.namespace),
            ("clusterrole", r.fullname, None),
            ("clusterrole", f"{r.fullname}-scanning", None),
            ("clusterrole", f"{r.fullname}-edit", None),
            ("clusterrole", f"{r.fullname}-view", None),
            ("clusterrolebinding", r.fullname, None),
            ("clusterrolebinding", f"{r.fullname}-scanning", None),
        ]:
            cluster.wait_for(lambda: cluster.get(kind, name, ns) is None, 60, what=f"{kind} {name} deleted")
        assert not cluster.kubectl_json("get", "pods", "-n", r.namespace)["items"]
        # Kept on purpose (helm.sh/resource-policy: keep): the peering CRDs other Kopf operators share.
        assert cluster.get("customresourcedefinition", "clusterkopfpeerings.kopf.dev") is not None
    finally:
        uninstall(cluster, r)
        cluster.delete("clusterkopfpeering", peering)
        cluster.delete("namespace", r.namespace)
