"""The Helm chart lints, renders, refuses bad values, and grants least privilege.

Runs the real helm binary (`helm lint`, `helm template`); no cluster. The chart's cluster behaviour
(install, the ServiceAccount's effective permissions, uninstall) is in tests/cluster/test_helm_install.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from glassbox_operator.config import parse_config

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "glassbox"
RELEASE = "gb"
RELEASE_NS = "glassbox-system"

GLASSBOX_RESOURCES = ["pretrainruns", "shardedfinetunes", "scorerservices", "kgharvests", "metricevals", "dialogbots"]
WORKLOAD_GROUPS = {"glassbox.dev", "ray.io", "jobset.x-k8s.io", "batch", "serving.kserve.io"}

# Everything a non-default install may change at once: scoped to two namespaces, two replicas,
# a ServiceMonitor, a PDB, a custom pool replacing h100, a storage endpoint, Secret access by name.
NON_DEFAULT: dict[str, Any] = {
    "watchNamespaces": ["team-a", "team-b"],
    "replicas": 2,
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "podDisruptionBudget": {"enabled": True},
    "rbac": {"secretNames": ["glassbox-storage"]},
    "image": {"registry": "", "repository": "registry.local/glassbox-operator", "tag": "dev", "pullPolicy": "Always"},
    "nodeSelector": {"glassbox.dev/pool": "cpu"},
    "priorityClassName": "system-cluster-critical",
    "podAnnotations": {"example.com/team": "ml-platform"},
    "nodePools": {
        "h100": None,  # helm drops a default map entry set to null
        "a100": {"resource": "nvidia.com/gpu", "count": 4, "nodeSelector": {"glassbox.dev/pool": "a100"},
                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
        "tpu-v4-8": {"resource": "google.com/tpu", "count": 4,
                     "nodeSelector": {"cloud.google.com/gke-tpu-accelerator": "tpu-v4-podslice"},
                     "tpu": {"accelerator": "tpu-v4-podslice", "topology": "2x2x1", "hosts": 1}},
    },
    "storage": {"endpoint": "minio.minio.svc:9000", "secure": False, "bucket": "ml-runs"},
    "defaults": {"backend": "jobset", "queueName": "team-queue"},
}


def _kube_version() -> str:
    """The test cluster's Kubernetes version (hack/versions.env), so templates see what installs see."""
    env = REPO / "hack" / "versions.env"
    if env.exists():
        for line in env.read_text().splitlines():
            if line.startswith("KUBE_VERSION="):
                return line.split("=", 1)[1].strip()
    return "v1.36.1"


def _helm_binary() -> str:
    """$HELM when set (local iteration), else the pinned helm that hack/build-bins.sh builds."""
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    from tests.support import bins

    return str(bins.path("helm"))


@pytest.fixture(scope="module")
def helm() -> str:
    return _helm_binary()


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A private HELM_* home: no repositories, plugins or caches of the machine leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, env=env)


def values_args(tmp_path: Path, values: dict[str, Any] | None) -> list[str]:
    if not values:
        return []
    path = tmp_path / f"values-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["-f", str(path)]


def template(helm: str, tmp_path: Path, values: dict[str, Any] | None = None, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_helm(helm, "template", RELEASE, str(CHART), "--namespace", RELEASE_NS,
                    "--kube-version", _kube_version(), *values_args(tmp_path, values), *extra)


def render(helm: str, tmp_path: Path, values: dict[str, Any] | None = None, *extra: str) -> list[dict[str, Any]]:
    """Rendered manifests (hooks included) as parsed objects."""
    out = template(helm, tmp_path, values, *extra)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for d in docs:
        if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield d["spec"]["template"]["spec"]


def grants(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, over rules without resourceNames (those are narrower)."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        if rule.get("resourceNames"):
            continue
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def bound_to_operator(docs: list[dict[str, Any]], binding_kind: str, role_kind: str) -> list[dict[str, Any]]:
    """Roles of role_kind that a binding_kind binds to the operator's ServiceAccount."""
    sa = one(docs, "ServiceAccount")["metadata"]
    roles = {(r["metadata"].get("namespace"), r["metadata"]["name"]): r for r in of_kind(docs, role_kind)}
    found = []
    for b in of_kind(docs, binding_kind):
        if any(s["kind"] == "ServiceAccount" and s["name"] == sa["name"] and s["namespace"] == sa["namespace"]
               for s in b["subjects"]):
            assert b["roleRef"]["kind"] == role_kind
            found.append(roles[(b["metadata"].get("namespace") if role_kind == "Role" else None, b["roleRef"]["name"])])
    return found


@pytest.fixture(scope="module")
def default_docs(helm: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(helm, tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def custom_docs(helm: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(helm, tmp_path_factory.mktemp("custom"), NON_DEFAULT)


@pytest.fixture(params=["default", "custom"])
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return request.getfixturevalue(f"{request.param}_docs")


# --- lint -------------------------------------------------------------------------------------

@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["default", "custom"])
def test_helm_lint(helm: str, tmp_path: Path, strict: bool, values: dict[str, Any] | None) -> None:
    out = run_helm(helm, "lint", str(CHART), *(["--strict"] if strict else []),
                   "--kube-version", _kube_version(), *values_args(tmp_path, values))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


def test_kube_version_floor(helm: str, tmp_path: Path) -> None:
    out = run_helm(helm, "template", RELEASE, str(CHART), "--kube-version", "1.28.9")
    assert out.returncode != 0 and "kubeVersion" in out.stderr


# --- what renders -----------------------------------------------------------------------------

def test_default_render_has_the_operator_pieces(default_docs: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in default_docs}
    assert {"Deployment", "ServiceAccount", "ConfigMap", "Service", "ClusterRole", "ClusterRoleBinding",
            "CustomResourceDefinition", "ClusterKopfPeering"} <= kinds
    assert "ServiceMonitor" not in kinds and "PodDisruptionBudget" not in kinds
    assert "KopfPeering" not in kinds
    deploy = one(default_docs, "Deployment")
    assert deploy["spec"]["replicas"] == 1
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/glassbox/operator:0.1.0"  # tag defaults to appVersion
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"] == ["glassbox", "operator"]
    assert "--all-namespaces" in container["args"] and "--peering=glassbox" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--namespace")]
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == one(default_docs, "ServiceAccount")["metadata"]["name"]


def test_custom_render(custom_docs: list[dict[str, Any]]) -> None:
    deploy = one(custom_docs, "Deployment")
    spec = deploy["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert deploy["spec"]["replicas"] == 2
    assert container["image"] == "registry.local/glassbox-operator:dev"
    assert container["imagePullPolicy"] == "Always"
    assert "--all-namespaces" not in container["args"]
    assert [a for a in container["args"] if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    assert spec["nodeSelector"] == {"glassbox.dev/pool": "cpu"}
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert deploy["spec"]["template"]["metadata"]["annotations"]["example.com/team"] == "ml-platform"
    assert one(custom_docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    # One KopfPeering per watched namespace, none cluster-wide.
    peerings = of_kind(custom_docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert not of_kind(custom_docs, "ClusterKopfPeering")


def test_image_digest_pins_the_image(helm: str, tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    docs = render(helm, tmp_path, {"image": {"digest": digest}})
    image = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/glassbox/operator@{digest}"


def test_hardened_security_context(docs: list[dict[str, Any]]) -> None:
    specs = list(pod_specs(docs))
    assert specs
    for spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 65532
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, container["name"]
            assert sc["runAsUser"] == 65532
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert container["resources"]["requests"] and container["resources"]["limits"]
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes[tmp[0]["name"]]


def test_probes_and_ports(docs: list[dict[str, Any]]) -> None:
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert "--metrics-port=9090" in container["args"]
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"].items()


def test_config_is_mounted_and_named_in_env(docs: list[dict[str, Any]]) -> None:
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["GLASSBOX_CONFIG"]["value"] == "/etc/glassbox/config.yaml"
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # Kopf peer identity
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/glassbox")
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]


# --- RBAC -------------------------------------------------------------------------------------

def test_rbac_has_no_wildcards(docs: list[dict[str, Any]]) -> None:
    roles = [d for d in docs if d["kind"] in {"Role", "ClusterRole"}]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field, [])), (role["metadata"]["name"], rule)


def test_cluster_scope_grants(default_docs: list[dict[str, Any]]) -> None:
    """The operator's effective grants when watching every namespace, rule by rule."""
    rules = [r for role in bound_to_operator(default_docs, "ClusterRoleBinding", "ClusterRole") for r in role["rules"]]
    g = grants(rules)
    children = {"get", "create", "patch", "delete"}  # applied and read by name; never listed, watched or updated
    for resource in GLASSBOX_RESOURCES:
        assert g[("glassbox.dev", resource)] == {"get", "list", "watch", "patch", "update"}
        assert g[("glassbox.dev", f"{resource}/status")] == {"get", "patch", "update"}
        assert g[("glassbox.dev", f"{resource}/finalizers")] == {"update"}
    assert g[("glassbox.dev", "scorerservices/scale")] == g[("glassbox.dev", "dialogbots/scale")] == {"get", "patch", "update"}
    for key in [("ray.io", "rayjobs"), ("jobset.x-k8s.io", "jobsets"), ("batch", "jobs"),
                ("serving.kserve.io", "inferenceservices"), ("", "configmaps"), ("", "serviceaccounts")]:
        assert g[key] == children, key
    assert g[("", "pods")] == {"list", "watch"}
    assert g[("", "events")] == {"list", "watch", "create", "patch"}
    assert g[("events.k8s.io", "events")] == {"create", "patch"}
    assert g[("kopf.dev", "clusterkopfpeerings")] == {"get", "list", "watch", "patch"}
    assert g[("apiextensions.k8s.io", "customresourcedefinitions")] == {"get", "list", "watch"}
    # Nothing else: no Secrets, no Nodes, no Namespaces, no RBAC objects, nothing unlisted.
    assert set(g) == {
        *[("glassbox.dev", r) for r in GLASSBOX_RESOURCES],
        *[("glassbox.dev", f"{r}/status") for r in GLASSBOX_RESOURCES],
        *[("glassbox.dev", f"{r}/finalizers") for r in GLASSBOX_RESOURCES],
        ("glassbox.dev", "scorerservices/scale"), ("glassbox.dev", "dialogbots/scale"),
        ("ray.io", "rayjobs"), ("jobset.x-k8s.io", "jobsets"), ("batch", "jobs"),
        ("serving.kserve.io", "inferenceservices"), ("", "configmaps"), ("", "serviceaccounts"), ("", "pods"),
        ("", "events"), ("events.k8s.io", "events"), ("kopf.dev", "clusterkopfpeerings"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    }
    assert not [r for r in rules if r.get("resourceNames")]
    # Leases only in the operator's own namespace.
    leases = bound_to_operator(default_docs, "RoleBinding", "Role")
    assert [r["metadata"]["namespace"] for r in leases] == [RELEASE_NS]
    assert grants(leases[0]["rules"]) == {("coordination.k8s.io", "leases"): {"get", "list", "watch", "create", "update", "patch"}}


def test_namespaced_scope_renders_roles_not_clusterroles(custom_docs: list[dict[str, Any]]) -> None:
    cluster_rules = [r for role in bound_to_operator(custom_docs, "ClusterRoleBinding", "ClusterRole") for r in role["rules"]]
    cluster_grants = grants(cluster_rules)
    # Cluster-wide, the scoped operator may only discover CRDs and namespaces (read-only).
    assert set(cluster_grants) == {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
    assert all(verbs == {"get", "list", "watch"} for verbs in cluster_grants.values())
    roles = {r["metadata"]["namespace"]: r for r in bound_to_operator(custom_docs, "RoleBinding", "Role")}
    assert set(roles) == {"team-a", "team-b", RELEASE_NS}
    for ns in ("team-a", "team-b"):
        g = grants(roles[ns]["rules"])
        assert {group for group, _ in g} >= WORKLOAD_GROUPS
        assert g[("ray.io", "rayjobs")] >= {"create", "delete"}
        assert g[("glassbox.dev", "pretrainruns/status")] >= {"patch"}
        assert g[("kopf.dev", "kopfpeerings")] == {"get", "list", "watch", "patch"}
        assert ("kopf.dev", "clusterkopfpeerings") not in g
        # rbac.secretNames: get by name, nothing else on Secrets.
        secret_rules = [r for r in roles[ns]["rules"] if "secrets" in r["resources"]]
        assert secret_rules == [{"apiGroups": [""], "resources": ["secrets"],
                                 "resourceNames": ["glassbox-storage"], "verbs": ["get"]}]
    assert ("ray.io", "rayjobs") not in grants(roles[RELEASE_NS]["rules"])


def test_user_roles_aggregate_into_builtin_roles(default_docs: list[dict[str, Any]]) -> None:
    roles = {r["metadata"]["name"]: r for r in of_kind(default_docs, "ClusterRole")}
    edit, view = roles[f"{RELEASE}-glassbox-edit"], roles[f"{RELEASE}-glassbox-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    for resource in GLASSBOX_RESOURCES:
        assert {"create", "delete", "patch"} <= grants(edit["rules"])[("glassbox.dev", resource)]
        assert grants(view["rules"])[("glassbox.dev", resource)] == {"get", "list", "watch"}
        assert ("glassbox.dev", f"{resource}/status") not in grants(edit["rules"])  # status is the operator's
    # Neither is bound to the operator.
    assert edit not in bound_to_operator(default_docs, "ClusterRoleBinding", "ClusterRole")



def test_rbac_covers_every_generated_crd(default_docs: list[dict[str, Any]]) -> None:
    """A kind added to the API (and so to the generated crds/) fails here until the chart grants it."""
    crds = [d for f in sorted((CHART / "crds").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    crds = [c for c in crds if c["spec"]["group"] == "glassbox.dev"]
    assert {c["spec"]["names"]["plural"] for c in crds} == set(GLASSBOX_RESOURCES)
    operator = grants([r for role in bound_to_operator(default_docs, "ClusterRoleBinding", "ClusterRole") for r in role["rules"]])
    roles = {r["metadata"]["name"]: r for r in of_kind(default_docs, "ClusterRole")}
    edit, view = grants(roles[f"{RELEASE}-glassbox-edit"]["rules"]), grants(roles[f"{RELEASE}-glassbox-view"]["rules"])
    for crd in crds:
        plural = crd["spec"]["names"]["plural"]
        assert ("glassbox.dev", plural) in operator and ("glassbox.dev", plural) in edit and ("glassbox.dev", plural) in view
        for version in crd["spec"]["versions"]:
            for sub in version.get("subresources", {}):
                assert ("glassbox.dev", f"{plural}/{sub}") in operator, (plural, sub)
            if "scale" in version.get("subresources", {}):
                assert {"update", "patch"} <= edit[("glassbox.dev", f"{plural}/scale")]
    # And the chart grants no scale subresource that no CRD serves.
    scaled = {c["spec"]["names"]["plural"] for c in crds for v in c["spec"]["versions"] if "scale" in v.get("subresources", {})}
    assert {r.split("/")[0] for (g, r) in operator if g == "glassbox.dev" and r.endswith("/scale")} == scaled

# --- metrics, peering -------------------------------------------------------------------------

def test_servicemonitor_only_when_enabled(default_docs: list[dict[str, Any]], custom_docs: list[dict[str, Any]]) -> None:
    assert not of_kind(default_docs, "ServiceMonitor")
    monitor = one(custom_docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= one(custom_docs, "Service")["metadata"]["labels"].items()


def test_peering_crds_follow_kopf_and_are_gated(helm: str, tmp_path: Path, default_docs: list[dict[str, Any]]) -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in of_kind(default_docs, "CustomResourceDefinition")}
    assert set(crds) == {"ClusterKopfPeering", "KopfPeering"}
    for kind, scope in [("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")]:
        spec = crds[kind]["spec"]
        assert crds[kind]["metadata"]["name"] == f"{kind.lower()}s.kopf.dev"
        assert spec["group"] == "kopf.dev" and spec["scope"] == scope
        assert [v["name"] for v in spec["versions"]] == ["v1"]
        status = spec["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    peering = one(default_docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "glassbox"
    assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]

    docs = render(helm, tmp_path, {"peering": {"installCRDs": False, "name": "team-ops"}})
    assert not of_kind(docs, "CustomResourceDefinition")
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "team-ops"
    assert "--peering=team-ops" in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]


# --- operator configuration ---------------------------------------------------------------------

def config_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])


def checksum_of(docs: list[dict[str, Any]]) -> str:
    return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_default_config_is_the_operators_default(default_docs: list[dict[str, Any]]) -> None:
    """What `helm install` renders into config.yaml is what the operator assumes without one: the
    pool table of glassbox_operator.config.DEFAULT_NODE_POOLS."""
    from glassbox_operator.config import DEFAULT_NODE_POOLS, default_config, parse_config

    config = config_of(default_docs)
    assert config["kind"] == "OperatorConfig"
    assert parse_config(config) == default_config().model_copy(update={"operator_namespace": RELEASE_NS})
    assert config["operatorNamespace"] == RELEASE_NS  # where storage.operatorCredentialsSecret lives
    assert config["nodePools"] == {name: pool.model_dump(by_alias=True, mode="json", exclude_none=True)
                                   for name, pool in DEFAULT_NODE_POOLS.items()}
    assert set(config["storage"]) == {"endpoint", "bucket", "prefix", "region", "secure", "credentialsSecret",
                                      "operatorCredentialsSecret"}
    assert set(config["defaults"]) == {"images", "backend", "queueName", "priorityClassName", "podAnnotations", "rayHead"}
    assert set(config["defaults"]["images"]) == {"torch", "jax", "serving"}
    # The chart's rayHead is what the operator assumes when the config leaves it out.
    head = parse_config({"defaults": config["defaults"]}).defaults.ray_head
    assert head == parse_config({}).defaults.ray_head and (str(head.cpu), head.memory) == ("2", "8Gi")


def test_custom_config(custom_docs: list[dict[str, Any]]) -> None:
    from glassbox_operator.values import ChartValues

    config = config_of(custom_docs)
    # The chart renders config.yaml from exactly the values' operator sections.
    custom = ChartValues.model_validate(merged_values(NON_DEFAULT))
    assert parse_config(config) == custom.operator_config(RELEASE_NS)
    assert set(config["nodePools"]) == {"cpu", "a100", "tpu-v4-8", "tpu-v5e-16"}
    assert config["storage"]["endpoint"] == "minio.minio.svc:9000" and config["storage"]["secure"] is False
    assert config["defaults"]["backend"] == "jobset" and config["defaults"]["queueName"] == "team-queue"


def test_config_checksum_follows_the_config(helm: str, tmp_path: Path, default_docs: list[dict[str, Any]]) -> None:
    base = checksum_of(default_docs)
    assert len(base) == 64
    more_gpus = render(helm, tmp_path, {"nodePools": {"h100": {"count": 4}}})
    assert config_of(more_gpus)["nodePools"]["h100"]["count"] == 4
    assert checksum_of(more_gpus) != base
    new_pool = render(helm, tmp_path, {"nodePools": {"l4": {"resource": "nvidia.com/gpu", "count": 1, "nodeSelector": {"pool": "l4"}}}})
    assert checksum_of(new_pool) not in {base, checksum_of(more_gpus)}
    # What is not configuration does not roll the operator.
    assert checksum_of(render(helm, tmp_path, {"podAnnotations": {"a": "b"}, "replicas": 3})) == base
    # The checksum is of exactly what the ConfigMap carries.
    assert base == hashlib.sha256(one(default_docs, "ConfigMap")["data"]["config.yaml"].rstrip("\n").encode()).hexdigest()


# --- the schema -----------------------------------------------------------------------------------

BAD_VALUES: list[tuple[list[str], list[str]]] = [
    (["--set", "replicas=-1"], ["/replicas", "minimum"]),
    (["--set-string", "replicas=two"], ["/replicas", "integer"]),
    (["--set", "replica=2"], ["additional properties", "'replica'"]),
    (["--set", "storage.accessKey=AKIAEXAMPLE"], ["/storage", "'accessKey'"]),
    (["--set", "storage.secretKey=hunter2"], ["/storage", "'secretKey'"]),
    (["--set", "image.pullPolicy=Sometimes"], ["/image/pullPolicy"]),
    (["--set", "nodePools.h100.resource=amd.com/gpu"], ["/nodePools/h100/resource"]),
    (["--set", "nodePools.h100.count=-8"], ["/nodePools/h100/count"]),
    (["--set", "nodePools.h100.gpus=8"], ["/nodePools/h100", "'gpus'"]),
    (["--set", "nodePools.l4.resource=nvidia.com/gpu", "--set", "nodePools.l4.nodeSelector.a=b"], ["/nodePools/l4", "count"]),
    (["--set", "nodePools.tpu-v5e-16.tpu.topology=four"], ["/nodePools/tpu-v5e-16/tpu/topology"]),
    (["--set", "nodePools.Bad_Pool.resource=none"], ["/nodePools", "Bad_Pool"]),
    (["--set", "watchNamespaces[0]=Team_A"], ["/watchNamespaces/0"]),
    (["--set", "defaults.backend=slurm"], ["/defaults/backend"]),
    (["--set", "metrics.port=70000"], ["/metrics/port"]),
    (["--set", "storage.endpoint=https://minio:9000"], ["/storage/endpoint"]),
]


@pytest.mark.parametrize(("args", "names"), BAD_VALUES)
def test_schema_refuses_bad_values(helm: str, tmp_path: Path, args: list[str], names: list[str]) -> None:
    out = template(helm, tmp_path, None, *args)
    assert out.returncode != 0, f"accepted {args}"
    assert "values don't meet the specifications of the schema" in out.stderr
    for name in names:
        assert name in out.stderr, out.stderr


def test_schema_is_strict_draft07() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    # Every key of values.yaml is declared, so the strictness refuses nothing the chart ships.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
    assert schema["properties"]["storage"]["additionalProperties"] is False


# --- the schema is generated from the values model -----------------------------------------------

def merged_values(overrides: dict[str, Any]) -> dict[str, Any]:
    """values.yaml with overrides merged as helm merges them (maps deep, null deletes a key)."""
    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            elif isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = merge(out[k], v)
            else:
                out[k] = v
        return out

    return merge(yaml.safe_load((CHART / "values.yaml").read_text()), overrides)


def test_values_schema_is_generated_from_the_values_model(tmp_path: Path) -> None:
    from glassbox_operator.values import values_schema_text, write_values_schema

    committed = (CHART / "values.schema.json").read_text()
    assert committed == values_schema_text(), "values.schema.json drifted from glassbox_operator.values: run `glassbox crds`"
    # --check reports drift without writing; a plain run repairs it.
    path = tmp_path / "values.schema.json"
    path.write_text(committed.replace("Bucket for artifacts.", "Bucket."))
    assert write_values_schema(path, check=True) == 1 and path.read_text() != committed
    assert write_values_schema(path) == 0 and write_values_schema(path, check=True) == 0
    assert path.read_text() == committed


def test_every_schema_field_is_documented() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    missing = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in node.get("properties", {}).items():
            if not sub.get("description"):
                missing.append(f"{path}/{name}")
            walk(sub, f"{path}/{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}/*")

    walk(schema, "")
    assert not missing, f"fields without a docstring: {missing}"


def test_values_yaml_is_the_models_defaults() -> None:
    """Every key and default that values.yaml ships is the values model's (and so the pool table
    is config.DEFAULT_NODE_POOLS's): the file documents the model, it does not define anything."""
    from glassbox_operator.values import ChartValues

    shipped = yaml.safe_load((CHART / "values.yaml").read_text())
    assert shipped == ChartValues().model_dump(by_alias=True, mode="json", exclude_none=True)


def _template_value_paths() -> set[str]:
    """Dotted paths read as .Values.x.y (or $.Values.x.y) in the templates."""
    import re

    found = set()
    for tpl in (CHART / "templates").iterdir():
        found |= set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", tpl.read_text()))
    return found


def test_every_value_the_templates_read_is_in_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    paths = _template_value_paths()
    assert len(paths) > 40  # the scan works
    for path in sorted(paths):
        node = schema
        for part in path.split("."):
            assert part in node.get("properties", {}), f".Values.{path}: not in the schema"
            node = node["properties"][part]


# Values as the tests elsewhere install the chart: test_helm_install.py (base_values and its
# upgrade), test_impersonation.py (--set watchNamespaces, peering.installCRDs=false).
INSTALLED_WITH: list[dict[str, Any]] = [
    NON_DEFAULT,
    {"image": {"registry": "registry.invalid", "repository": "glassbox/operator", "tag": "test"},
     "nodeSelector": {"glassbox.dev/pool": "cpu"}, "peering": {"name": "gbt-abc123"}, "replicas": 1},
    {"watchNamespaces": ["watched-1"], "nodePools": {"h100": {"count": 4}}},
    {"watchNamespaces": ["imp-ns"], "peering": {"installCRDs": False}},
]


@pytest.mark.parametrize("overrides", INSTALLED_WITH, ids=["custom", "helm-install", "upgrade", "impersonation"])
def test_model_and_schema_accept_the_values_tests_install_with(overrides: dict[str, Any]) -> None:
    import jsonschema

    from glassbox_operator.values import ChartValues

    values = merged_values(overrides)
    jsonschema.validate(values, json.loads((CHART / "values.schema.json").read_text()), cls=jsonschema.Draft7Validator)
    ChartValues.model_validate(values)


def _set(values: dict[str, Any], args: list[str]) -> dict[str, Any]:
    """The --set/--set-string cases of test_schema_refuses_bad_values, applied as helm would."""
    values = json.loads(json.dumps(values))
    for flag, assignment in zip(args[::2], args[1::2]):
        key, raw = assignment.split("=", 1)
        value: Any = raw if flag == "--set-string" else yaml.safe_load(raw)
        *parents, last = key.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        if last.endswith("]"):
            name, index = last[:-1].split("[")
            node[name] = [value] if int(index) == 0 else node[name]
        else:
            node[last] = value
    return values


@pytest.mark.parametrize("args", [args for args, _ in BAD_VALUES], ids=[" ".join(args) for args, _ in BAD_VALUES])
def test_the_operator_refuses_what_helm_refuses(args: list[str]) -> None:
    """The schema is the model's: what helm refuses at install, the model refuses too."""
    from pydantic import ValidationError

    from glassbox_operator.values import ChartValues

    with pytest.raises(ValidationError):
        ChartValues.model_validate(_set(merged_values({}), args))


# --- the node-pool table and the test cluster's fake nodes ---------------------------------------

def test_fake_nodes_provide_the_default_pools() -> None:
    """hack/cluster/nodes.yaml (the test cluster's KWOK nodes) is checked against the one pool table
    (config.DEFAULT_NODE_POOLS): every pool has nodes that its selector picks, whose taints its
    tolerations tolerate, with `count` of its extended resource each, and TPU pools whole slices."""
    from glassbox_operator.config import DEFAULT_NODE_POOLS

    nodes = [d for d in yaml.safe_load_all((REPO / "hack" / "cluster" / "nodes.yaml").read_text()) if d]
    by_pool: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        by_pool.setdefault(node["metadata"]["labels"]["glassbox.dev/pool"], []).append(node)
    assert set(by_pool) == set(DEFAULT_NODE_POOLS)
    for name, pool in DEFAULT_NODE_POOLS.items():
        for node in by_pool[name]:
            labels, taints = node["metadata"]["labels"], node["spec"].get("taints", [])
            assert pool.node_selector.items() <= labels.items(), (name, node["metadata"]["name"])
            for taint in taints:
                assert any(t.get("key") in (None, "", taint["key"]) and t.get("effect") in (None, "", taint["effect"])
                           and (t.get("operator") == "Exists" or t.get("value") == taint.get("value"))
                           for t in pool.tolerations), (name, taint)
            for field in ("capacity", "allocatable"):
                extended = {k: v for k, v in node["status"][field].items() if "/" in k}
                assert extended == ({pool.resource: str(pool.count)} if pool.extended_resource else {}), (name, field)
        if pool.tpu:
            assert len(by_pool[name]) % pool.tpu.hosts == 0, f"{name}: not whole slices of {pool.tpu.hosts} hosts"
            for node in by_pool[name]:
                labels = node["metadata"]["labels"]
                assert labels["cloud.google.com/gke-tpu-accelerator"] == pool.tpu.accelerator
                assert labels["cloud.google.com/gke-tpu-topology"] == pool.tpu.topology
