"""The Helm chart's values, typed: one model of charts/glassbox/values.yaml, and the chart's
values.schema.json generated from it (`glassbox crds` writes it, `glassbox crds --check` fails on
drift), as the CRDs are generated from the API types.

The sections that the chart renders into the operator's config.yaml (nodePools, storage, defaults)
are the operator's own configuration types from glassbox_operator.config, not copies, so helm
refuses at install what the operator would refuse at start-up. The models' defaults are the
shipped values.yaml (a test compares them key by key); field docstrings are the schema's
descriptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .config import (
    DEFAULT_NODE_POOLS,
    DNS_LABEL,
    Defaults,
    NodePools,
    OperatorConfig,
    Quantity,
    SecretName,
    Security,
    StorageConfig,
    Toleration,
)

SCHEMA_PATH = Path("charts/glassbox/values.schema.json")
"""Where `glassbox crds` writes the schema, relative to the repository root."""
DRAFT = "http://json-schema.org/draft-07/schema#"


def _unique(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP port number."""
Duration = Annotated[str, Field(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]
"""A Prometheus duration, e.g. 30s or 1m30s."""
NameOverride = Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", max_length=52)]
"""Empty, or a DNS label short enough to prefix resource names."""
Namespace = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
"""A namespace name."""
UniqueNamespaces = Annotated[list[Namespace], AfterValidator(_unique), Field(json_schema_extra={"uniqueItems": True})]
UniqueSecretNames = Annotated[list[SecretName], AfterValidator(_unique), Field(json_schema_extra={"uniqueItems": True})]


class _Values(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              use_attribute_docstrings=True)


class LocalObjectReference(_Values):
    """A reference to an object by name in the same namespace (an image pull Secret)."""

    name: str = Field(min_length=1)
    """Name of the object."""


class EnvVar(_Values):
    """A Kubernetes EnvVar: a literal value, or valueFrom a field, Secret or ConfigMap key."""

    name: str = Field(min_length=1)
    """Name of the environment variable."""
    value: Optional[str] = None
    """Literal value."""
    value_from: Optional[dict[str, Any]] = None
    """Source of the value (Kubernetes EnvVarSource: fieldRef, secretKeyRef, configMapKeyRef, ...)."""


class Image(_Values):
    """The operator image (built from images/operator.Dockerfile)."""

    registry: str = "ghcr.io"
    """Registry of the operator image; empty means the repository is a complete reference."""
    repository: str = Field("glassbox/operator", min_length=1)
    """Repository of the operator image."""
    tag: str = ""
    """Image tag; empty means the chart's appVersion."""
    digest: str = Field("", pattern=r"^(sha256:[a-f0-9]{64})?$")
    """Image digest (sha256:...); when set it pins the image and the tag is only informative."""
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Kubernetes image pull policy."""


class Peering(_Values):
    """Kopf peering: how the operator replicas find each other (one is active at a time)."""

    name: SecretName = "glassbox"
    """Name of the Kopf peering object the replicas coordinate through (ClusterKopfPeering when
    watching all namespaces, a KopfPeering in each watched namespace otherwise). The chart creates it
    in a post-install/post-upgrade hook: the operator waits for it before handling anything."""
    install_crds: bool = Field(True, alias="installCRDs")
    """Install the kopf.dev peering CRDs (ClusterKopfPeering, KopfPeering). Turn off when another Kopf
    operator in the cluster already installed them."""
    keep_crds: bool = Field(True, alias="keepCRDs")
    """Keep the peering CRDs on `helm uninstall` (helm.sh/resource-policy: keep): other Kopf operators
    may share them, and deleting a CRD deletes every object of its kind."""


class ServiceAccount(_Values):
    """The operator's ServiceAccount."""

    create: bool = True
    """Create the operator's ServiceAccount. When false, `name` must name an existing one."""
    name: str = Field("", pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$")
    """ServiceAccount name; empty means the full name of the release."""
    annotations: dict[str, str] = {}
    """Annotations on the ServiceAccount (e.g. cloud workload identity bindings)."""


class Rbac(_Values):
    """The operator's RBAC objects."""

    create: bool = True
    """Create the operator's (Cluster)Roles and bindings. Turn off only if RBAC is managed elsewhere;
    the rules the operator needs are in templates/rbac.yaml."""
    scanning: bool = True
    """Let the operator list/watch CustomResourceDefinitions (and, with watchNamespaces, the
    Namespaces), so it notices CRDs and namespaces created after it started. Read-only."""
    secret_names: UniqueSecretNames = []
    """Names of Secrets the operator may `get`, in the namespaces it watches, to check that a storage
    credentials Secret exists before launching work. Empty: no access to Secrets at all. RBAC has no
    metadata-only read, so `get` exposes the Secret's data: grant it by name only."""
    aggregate_to_default_roles: bool = True
    """Install <fullname>-edit and <fullname>-view ClusterRoles that aggregate into the built-in
    admin/edit/view roles, so namespace users can manage glassbox resources. Once per cluster (turn
    off in a second release)."""


class Health(_Values):
    """The operator's liveness/readiness endpoint."""

    port: Port = 8080
    """Port of the endpoint (GET /healthz)."""


class LivenessProbe(_Values):
    """HTTP probe on health.port, path /healthz: restart the operator if it stops answering."""

    enabled: bool = True
    """Render the probe."""
    initial_delay_seconds: int = Field(10, ge=0)
    """Seconds after the container starts before the first probe."""
    period_seconds: int = Field(20, ge=1)
    """Seconds between probes."""
    timeout_seconds: int = Field(5, ge=1)
    """Seconds a probe may take."""
    failure_threshold: int = Field(3, ge=1)
    """Consecutive failures that count as failed."""


class ReadinessProbe(_Values):
    """HTTP probe on health.port, path /healthz: the pod is ready once the operator has started its
    handlers."""

    enabled: bool = True
    """Render the probe."""
    initial_delay_seconds: int = Field(5, ge=0)
    """Seconds after the container starts before the first probe."""
    period_seconds: int = Field(10, ge=1)
    """Seconds between probes."""
    timeout_seconds: int = Field(5, ge=1)
    """Seconds a probe may take."""
    failure_threshold: int = Field(3, ge=1)
    """Consecutive failures that count as failed."""
    success_threshold: Optional[int] = Field(None, ge=1)
    """Consecutive successes that count as ready again after a failure (Kubernetes default 1)."""


class MetricsService(_Values):
    """The Service in front of the metrics port."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """Type of the metrics Service."""
    annotations: dict[str, str] = {}
    """Annotations on the metrics Service."""


class ServiceMonitor(_Values):
    """A prometheus-operator ServiceMonitor for the metrics Service."""

    enabled: bool = False
    """Render the ServiceMonitor (needs the monitoring.coreos.com CRDs)."""
    labels: dict[str, str] = {}
    """Extra labels, e.g. the `release` label your Prometheus selects ServiceMonitors by."""
    interval: Duration = "30s"
    """Scrape interval."""
    scrape_timeout: Duration = "10s"
    """Scrape timeout (must be shorter than the interval)."""
    honor_labels: bool = False
    """Keep the operator's label values when they clash with target labels."""
    relabelings: list[dict[str, Any]] = []
    """Prometheus relabelings applied before scraping (RelabelConfig objects)."""
    metric_relabelings: list[dict[str, Any]] = []
    """Prometheus relabelings applied to the scraped samples (RelabelConfig objects)."""


class Metrics(_Values):
    """Prometheus metrics of the operator."""

    enabled: bool = True
    """Expose Prometheus metrics and render the metrics Service."""
    port: Port = 9090
    """Port of the metrics endpoint (GET /metrics)."""
    service: MetricsService = MetricsService()
    """The metrics Service."""
    service_monitor: ServiceMonitor = ServiceMonitor()
    """The ServiceMonitor (prometheus-operator)."""


class ResourceRequirements(_Values):
    """Container resources: requests and limits by resource name (cpu, memory, ...)."""

    requests: dict[str, Quantity] = {"cpu": "100m", "memory": "128Mi"}
    """What the scheduler reserves."""
    limits: dict[str, Quantity] = {"cpu": "1", "memory": "512Mi"}
    """What the container may use at most."""


class PodDisruptionBudget(_Values):
    """A PodDisruptionBudget for the operator pods."""

    enabled: bool = False
    """Render a PodDisruptionBudget (only meaningful with replicas > 1)."""
    min_available: Union[Annotated[int, Field(ge=0)], Annotated[str, Field(pattern=r"^[0-9]+%$")]] = 1
    """Pods (a number or a percentage) that must stay up during voluntary disruptions."""


class UiService(_Values):
    """The Service in front of the web UI (port-forward to it, or put an Ingress before it)."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """Type of the UI Service."""
    port: Port = 8265
    """Port of the UI Service."""
    annotations: dict[str, str] = {}
    """Annotations on the UI Service."""


class Ui(_Values):
    """`glassbox ui` as a Deployment: the web app over the chart's artifact store (storage.endpoint,
    bucket, prefix), reading it with credentials from a Secret of the release namespace. It needs no
    Kubernetes API access (no ServiceAccount token) and writes nothing to the store."""

    enabled: bool = False
    """Render the UI Deployment and Service (needs storage.endpoint)."""
    image: str = ""
    """Full image reference of the UI; empty means the operator image (which installs the `ui` extra)."""
    replicas: int = Field(1, ge=0)
    """UI replicas (each reads the store on its own; any of them answers any page)."""
    host: str = Field("0.0.0.0", min_length=1)
    """Address the app listens on inside the pod (`glassbox ui --host`); "::" for IPv6-only clusters."""
    port: Port = 8265
    """Container port the app listens on (`glassbox ui --port`)."""
    credentials_secret: SecretName = "glassbox-ui-storage"
    """Secret in the release namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, passed to the
    container by reference (secretKeyRef), never copied into values or a ConfigMap. Give it
    read-only credentials: the UI only lists and reads."""
    service: UiService = UiService()
    """The UI Service."""
    resources: ResourceRequirements = ResourceRequirements(
        requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"})
    """Container resources: a page holds at most 1000 rows of a parsed table in memory."""
    pod_annotations: dict[str, str] = {}
    """Annotations on the UI pod."""
    node_selector: dict[str, str] = {}
    """Node labels the UI pod must match."""


_RESTRICTED = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532}


class ChartValues(_Values):
    """Values of the glassbox Helm chart."""

    global_: Optional[dict[str, Any]] = Field(None, alias="global")
    """Helm global values (shared with parent charts)."""
    name_override: NameOverride = ""
    """Override the chart name used in resource names (default: the chart name, "glassbox")."""
    fullname_override: NameOverride = ""
    """Override the full resource name prefix (default: "<release>-<chart>", or "<release>" when the
    release name already contains the chart name)."""
    common_labels: dict[str, str] = {}
    """Labels added to every resource the chart renders."""
    image: Image = Image()
    """The operator image."""
    image_pull_secrets: list[LocalObjectReference] = []
    """Secrets for pulling the operator image from a private registry, e.g. [{name: regcred}]."""
    replicas: int = Field(1, ge=0)
    """Operator replicas. One is active at a time: through Kopf peering all but the highest-priority
    one pause, taking over when it exits; more than one only buys failover."""
    watch_namespaces: UniqueNamespaces = []
    """Namespaces the operator watches. Empty: all namespaces, with cluster-wide RBAC (ClusterRole +
    ClusterRoleBinding). A list: only those, with a Role + RoleBinding in each; they must exist
    before install."""
    peering: Peering = Peering()
    """Kopf peering of the operator replicas."""
    service_account: ServiceAccount = ServiceAccount()
    """The operator's ServiceAccount."""
    rbac: Rbac = Rbac()
    """The operator's RBAC objects."""
    extra_args: list[str] = []
    """Extra command-line flags appended to `glassbox operator`."""
    extra_env: list[EnvVar] = []
    """Extra environment variables for the operator container."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Operator log verbosity."""
    health: Health = Health()
    """The operator's health endpoint."""
    liveness_probe: LivenessProbe = LivenessProbe()
    """Liveness probe of the operator container."""
    readiness_probe: ReadinessProbe = ReadinessProbe()
    """Readiness probe of the operator container."""
    metrics: Metrics = Metrics()
    """Prometheus metrics."""
    resources: ResourceRequirements = ResourceRequirements()
    """Container resources. The operator only talks to the API server; these fit a cluster with a few
    thousand glassbox resources."""
    pod_security_context: dict[str, Any] = {**_RESTRICTED, "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    """Pod-level security context (Kubernetes PodSecurityContext; restricted Pod Security Standard)."""
    security_context: dict[str, Any] = {
        **_RESTRICTED, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "privileged": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }
    """Container-level security context (Kubernetes SecurityContext; restricted Pod Security
    Standard). The root filesystem is read-only; /tmp is an emptyDir."""
    tmp_size_limit: Quantity = "64Mi"
    """Size limit of the /tmp emptyDir."""
    node_selector: dict[str, str] = {}
    """Node labels the operator pod must match."""
    tolerations: list[Toleration] = []
    """Tolerations of the operator pod."""
    affinity: dict[str, Any] = {}
    """Affinity of the operator pod (Kubernetes Affinity)."""
    topology_spread_constraints: list[dict[str, Any]] = []
    """Topology spread constraints of the operator pod (useful with replicas > 1)."""
    priority_class_name: str = ""
    """PriorityClass of the operator pod."""
    pod_annotations: dict[str, str] = {}
    """Annotations on the operator pod."""
    pod_labels: dict[str, str] = {}
    """Labels on the operator pod (in addition to the selector labels)."""
    termination_grace_period_seconds: int = Field(30, ge=0)
    """Seconds the operator gets to finish in-flight handlers and leave the peering on shutdown."""
    revision_history_limit: int = Field(5, ge=0)
    """Old ReplicaSets kept for rollback."""
    pod_disruption_budget: PodDisruptionBudget = PodDisruptionBudget()
    """PodDisruptionBudget of the operator pods."""
    ui: Ui = Ui()
    """The web UI (`glassbox ui`) as a Deployment + Service over the chart's artifact store."""

    # The operator's configuration (config.yaml in the ConfigMap <fullname>-config): its own types.
    node_pools: NodePools = Field(DEFAULT_NODE_POOLS, min_length=1)
    """Node pools that a resource's `spec.resources.accelerator` may name, by name. Maps merge with
    the defaults: remove a default pool with `--set nodePools.h100=null`."""
    storage: StorageConfig = StorageConfig()
    """Default artifact store (S3-compatible: MinIO, versitygw, AWS S3...). Runs write under
    <bucket>/<prefix>/<namespace>/<kind>/<name>-<uid8>/. Credentials never go in values: name a
    Secret that exists in each namespace where glassbox resources run."""
    defaults: Defaults = Defaults()
    """Defaults for what the operator renders when a resource leaves a field out."""
    security: Security = Security()
    """What users of a shared cluster may make the operator do (the local backend), and how
    workload pods are locked down (restricted Pod Security Standard by default)."""

    def operator_config(self, namespace: str = "") -> OperatorConfig:
        """The configuration the chart renders into config.yaml from these values (namespace: the
        release namespace, where storage.operatorCredentialsSecret lives)."""
        return OperatorConfig(node_pools=self.node_pools, storage=self.storage, defaults=self.defaults,
                              security=self.security, operator_namespace=namespace)


# --- the schema ---------------------------------------------------------------------------------

_ORDER = ["$schema", "$comment", "title", "description", "type", "enum", "const", "default", "pattern",
          "minLength", "maxLength", "minimum", "maximum", "uniqueItems", "items", "minProperties",
          "propertyNames", "properties", "required", "additionalProperties", "anyOf", "allOf", "if", "then",
          "else", "not"]


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(_ORDER)}
    return dict(sorted(node.items(), key=lambda kv: rank.get(kv[0], len(_ORDER))))


def _plain(node: Any, defs: dict[str, Any]) -> Any:
    """pydantic's JSON Schema as helm reads it: $refs inlined, Optional[X] as X's type or null, titles
    dropped, dict key patterns as propertyNames, scalar defaults only, descriptions on one line."""
    if isinstance(node, list):
        return [_plain(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = _plain(defs[node.pop("$ref").split("/")[-1]], defs)
        node = {**target, **node}
    if "anyOf" in node:
        everything = node.pop("anyOf")
        branches = [b for b in everything if b.get("type") != "null"]
        if len(branches) == 1:
            node = {**_plain(branches[0], defs), **node}
            if len(everything) > 1 and isinstance(node.get("type"), str):
                # Optional[X]: null is allowed where the model allows None (helm keeps a null that
                # deletes no default, e.g. `--set nodePools.new=null`).
                node["type"] = [node["type"], "null"]
        else:
            # int-or-float fields: a JSON Schema number includes the integers.
            numbers = [{k: v for k, v in b.items() if k != "type"} for b in branches if b.get("type") == "number"]
            node["anyOf"] = [b for b in branches
                             if not (b.get("type") == "integer" and {k: v for k, v in b.items() if k != "type"} in numbers)]
    if "patternProperties" in node:
        ((pattern, values),) = node.pop("patternProperties").items()
        node["propertyNames"] = {"pattern": pattern, **node.get("propertyNames", {})}
        node["additionalProperties"] = values
    node.pop("title", None)
    if node.get("additionalProperties") is True:
        node.pop("additionalProperties")  # JSON Schema's default: say nothing
    if "default" in node and not isinstance(node["default"], (str, int, float, bool)):
        node.pop("default")
    if isinstance(node.get("description"), str):
        node["description"] = " ".join(node["description"].split())
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _plain(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "allOf", "if", "then", "else", "not"):
            out[key] = _plain(value, defs)
        else:
            out[key] = value
    return _ordered(out)


def values_schema() -> dict[str, Any]:
    """The chart's values.schema.json (JSON Schema draft-07, what helm validates values against)."""
    raw = ChartValues.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    body = _plain(raw, defs)
    body.pop("description", None)
    return _ordered({
        "$schema": DRAFT,
        "$comment": "Generated by `glassbox crds` from glassbox_operator.values.ChartValues; do not edit.",
        "title": "glassbox chart values",
        **body,
    })


def values_schema_text() -> str:
    return json.dumps(values_schema(), indent=2) + "\n"


def write_values_schema(path: Path, check: bool = False) -> int:
    """Write (or with check, compare) the chart's values.schema.json; returns an exit code."""
    want = values_schema_text()
    if path.exists() and path.read_text(encoding="utf-8") == want:
        if not check:
            print("values schema up to date")
        return 0
    if check:
        print(f"values schema out of date (run `glassbox crds`):\n  {path}")
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(want, encoding="utf-8")
    print(f"wrote {path}")
    return 0
