"""The operator's configuration: the chart's config.yaml (nodePools, storage, defaults), typed.

Read once at start-up (GLASSBOX_CONFIG or --config); the renderers receive it as a value and never
read files or the environment themselves. Unknown keys are refused, so a typo in the chart values
fails at start-up instead of silently placing pods on the wrong nodes. These types are also the
`nodePools`, `storage` and `defaults` sections of the chart's values (glassbox_operator.values),
from which `glassbox crds` generates the chart's values.schema.json: helm refuses what the operator
would refuse, with the same field docs. DEFAULT_NODE_POOLS is the one written-out pool table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from typing_extensions import TypedDict

# Kubernetes name and quantity syntax, so helm (through the generated schema) and the operator
# refuse the same malformed values.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^[+]?[0-9.]+([eE][-+]?[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"

Quantity = Union[Annotated[str, Field(pattern=QUANTITY)], Annotated[int, Field(ge=0)], Annotated[float, Field(ge=0)]]
"""A Kubernetes resource quantity: a string such as 500m or 8Gi, or a plain number."""
PoolName = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
"""A node-pool name, as a spec's `resources.accelerator` names it."""
SecretName = Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)]
"""The name of a Secret (a DNS subdomain)."""


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
                              use_attribute_docstrings=True)


class Toleration(TypedDict, total=False):
    """A Kubernetes Toleration: a taint of the nodes that the pods tolerate."""

    # A TypedDict, not a model: the renderers copy tolerations into pod specs as plain dicts.
    __pydantic_config__ = ConfigDict(extra="forbid", use_attribute_docstrings=True)  # type: ignore[misc]

    key: str
    """Taint key; empty with operator Exists matches every taint."""
    operator: Literal["Exists", "Equal"]
    """How the key and value match (default Equal)."""
    value: str
    """Taint value (operator Equal)."""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"]
    """Taint effect to match; empty matches all."""
    tolerationSeconds: Annotated[int, Field(ge=0)]
    """NoExecute only: how long the pod stays bound after the taint appears."""


class TpuSlice(_Config):
    """A TPU slice shape: every worker of a JobSet replicated job lives in one slice."""

    accelerator: str = Field(min_length=1)
    """GKE accelerator type (cloud.google.com/gke-tpu-accelerator), e.g. tpu-v5-lite-podslice."""
    topology: str = Field(pattern=r"^[0-9]+(x[0-9]+){1,2}$")
    """Chip topology of one slice (cloud.google.com/gke-tpu-topology), e.g. 2x4, 4x4 or 4x4x4."""
    hosts: int = Field(1, ge=1)
    """Hosts (pods) per slice: the JobSet's replicas per slice; a TPU run needs a multiple of this many workers."""


_ACCELERATORS = ["nvidia.com/gpu", "google.com/tpu"]


class NodePool(_Config):
    """One entry of the node-pool table: where a spec's `resources.accelerator` lands. A GPU or
    TPU pool has count >= 1; a TPU pool, and only a TPU pool, has a slice shape (tpu)."""

    # The cross-field rules of _shape, for helm: JSON Schema has no other way to say them.
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"resource": {"enum": _ACCELERATORS}}},
         "then": {"required": ["count"], "properties": {"count": {"minimum": 1}}}},
        {"if": {"properties": {"resource": {"const": "google.com/tpu"}}},
         "then": {"required": ["tpu"], "properties": {"tpu": {"type": "object"}}},
         "else": {"properties": {"tpu": {"type": "null"}}}},
    ]})

    resource: Literal["nvidia.com/gpu", "google.com/tpu", "none"]
    """Extended resource each worker asks for (nvidia.com/gpu, google.com/tpu), or none."""
    count: int = Field(0, ge=0)
    """How many of that resource one node has (a worker asks for all of them by default); 0 for resource none."""
    node_selector: dict[str, str]
    """Labels that place workers on the pool's nodes."""
    tolerations: list[Toleration] = []
    """Taints of the pool's nodes that workers tolerate."""
    tpu: Optional[TpuSlice] = None
    """TPU pools only: the slice shape."""

    @model_validator(mode="after")
    def _shape(self) -> "NodePool":
        if self.resource != "none" and self.count < 1:
            raise ValueError(f"a {self.resource} pool needs count >= 1 (how many one node has)")
        if (self.resource == "google.com/tpu") != (self.tpu is not None):
            raise ValueError("tpu (the slice shape) is required on a google.com/tpu pool and allowed only there")
        return self

    @property
    def extended_resource(self) -> Optional[str]:
        return None if self.resource == "none" else self.resource


NodePools = dict[PoolName, Optional[NodePool]]
"""Pool name -> placement. A null entry (helm `--set nodePools.x=null`) removes a pool."""


class StorageConfig(_Config):
    """The default artifact store (S3-compatible)."""

    endpoint: str = Field("", pattern=r"^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])?(:[0-9]{1,5})?$")
    """host[:port] of the S3 endpoint, no scheme; empty: no default store (each resource must name one)."""
    bucket: str = Field("glassbox", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    """Bucket for artifacts."""
    prefix: str = Field("runs", pattern=r"^([^/].*[^/]|[^/])?$")
    """Key prefix inside the bucket (no leading or trailing slash)."""
    region: str = "us-east-1"
    """Region sent to the endpoint."""
    secure: bool = True
    """Reach the endpoint over TLS (https)."""
    credentials_secret: SecretName = "glassbox-storage"
    """Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in each namespace where resources run;
    the workload pods reference it, the operator never reads it (credentials never go in the
    configuration). Used only for this endpoint: a resource naming another endpoint brings its own
    (spec.storage.secretRef)."""
    operator_credentials_secret: Union[SecretName, Literal[""]] = ""
    """Secret in the operator's own namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which
    the operator reads through the API (get by name, granted by the chart) to read run manifests on
    this endpoint (progress, fromRun, the serving URI). Empty: the operator uses the S3 credentials
    of its own environment, for this endpoint only."""


class Images(_Config):
    """Workload images per family."""

    torch: str = Field("ghcr.io/glassbox/torch:0.1.0", min_length=1)
    """PyTorch workloads (PretrainRun, DialogBot training, KGHarvest, MetricEval) on CUDA/CPU."""
    jax: str = Field("ghcr.io/glassbox/jax:0.1.0", min_length=1)
    """JAX workloads (ShardedFinetune) on TPU/GPU/CPU."""
    serving: str = Field("ghcr.io/glassbox/serving:0.1.0", min_length=1)
    """Serving (ScorerService, DialogBot) on KServe."""


class RayHead(_Config):
    """The Ray head pod of backend ray: it runs the driver (the entrypoint that starts the
    training workers), not the training, so it is sized on its own, not like a worker."""

    cpu: Quantity = "2"
    """CPU request (a Kubernetes quantity)."""
    memory: str = Field("8Gi", pattern=QUANTITY)
    """Memory request and limit (a Kubernetes quantity)."""


class Defaults(_Config):
    """What the renderers use when a resource leaves a field out."""

    images: Images = Images()
    """Workload images per family."""
    backend: Literal["ray", "jobset", "job", "local"] = "job"
    """Backend when a resource's spec.resources.backend is absent: ray, jobset, job or local."""
    queue_name: str = Field("", pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$")
    """Kueue LocalQueue put on children (kueue.x-k8s.io/queue-name label); empty: none."""
    priority_class_name: str = ""
    """PriorityClass for workload pods when a resource names none; empty: none."""
    pod_annotations: dict[str, str] = {}
    """Annotations put on every workload pod template (Job, JobSet, RayJob), e.g. to opt out of
    sidecar injection or mark pods safe to evict; a template's own annotations win."""
    ray_head: RayHead = RayHead()
    """Requests of the Ray head pod (backend ray, on the cpu pool); workers get the resource's own cpu/memory."""


class WorkloadPodSecurity(_Config):
    """The security settings of every workload pod (Job, JobSet, RayJob head, workers and submitter,
    InferenceService predictor): by default they pass the `restricted` Pod Security Standard, GPU
    and TPU pods included. The workload images run as this uid (images/*.Dockerfile, USER 65532)."""

    restricted: bool = True
    """Render the restricted pod and container security contexts. Turn off only for a cluster whose
    nodes need otherwise (e.g. a device plugin that requires root); the uid settings then do nothing."""
    run_as_user: int = Field(65532, ge=1)
    """Non-root uid the containers run as (runAsUser; runAsNonRoot is always set)."""
    run_as_group: int = Field(65532, ge=0)
    """Primary gid of the containers (runAsGroup)."""
    fs_group: Optional[int] = Field(65532, ge=0)
    """Group that owns mounted volumes (fsGroup); null: not set."""
    seccomp_profile: Literal["RuntimeDefault", "Unconfined"] = "RuntimeDefault"
    """Seccomp profile of the pods; restricted requires RuntimeDefault (or Localhost)."""
    automount_service_account_token: bool = False
    """Mount a ServiceAccount token in workload pods. No backend needs one: the workloads talk only
    to the artifact store, and a KubeRay head reaches the Kubernetes API only when Ray's autoscaler
    runs, which glassbox never enables (fixed worker counts)."""
    scratch_size_limit: Union[Annotated[str, Field(pattern=QUANTITY)], Literal[""]] = ""
    """Size limit of the writable scratch emptyDir (/tmp, HOME and caches); empty: no limit."""


class Security(_Config):
    """What users of a shared cluster may make the operator do."""

    allow_local_backend: bool = False
    """Accept `resources.backend: local`, which runs a workload as a subprocess inside the operator's
    own pod, with the operator's identity and environment. Off: such a resource is refused
    (Failed, Stalled=True reason LocalBackendDisabled). Development clusters only."""
    workload_pods: WorkloadPodSecurity = WorkloadPodSecurity()
    """Security settings of the workload pods."""


class OperatorConfig(_Config):
    """The whole configuration file (kind OperatorConfig)."""

    api_version: str = Field("glassbox.dev/v1alpha1", alias="apiVersion")
    """Version of this file's format."""
    kind: Literal["OperatorConfig"] = "OperatorConfig"
    """Kind of this file."""
    node_pools: NodePools = {}
    """Node pools that a resource's `spec.resources.accelerator` may name, by name. A null entry
    (helm `--set nodePools.x=null`) removes a pool."""
    storage: StorageConfig = StorageConfig()
    """Default artifact store."""
    defaults: Defaults = Defaults()
    """Defaults for rendering."""
    security: Security = Security()
    """What users may make the operator do, and how workload pods are locked down."""
    operator_namespace: str = Field("", pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$")
    """The operator's own namespace, where storage.operatorCredentialsSecret lives (the chart sets it)."""
    local_store: str = ""
    """Store root for the local backend when storage.endpoint is empty (a directory)."""
    local_state_dir: str = "/tmp/glassbox-local"
    """Where the local backend keeps each process's pid, log and exit code."""

    def pool(self, name: str) -> Optional[NodePool]:
        return self.node_pools.get(name)

    @property
    def pool_names(self) -> list[str]:
        return sorted(k for k, v in self.node_pools.items() if v is not None)


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the key."""


def parse_config(doc: Any) -> OperatorConfig:
    """A typed config from the YAML document (None or {} gives the defaults)."""
    try:
        return OperatorConfig.model_validate(doc or {})
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise ConfigError("invalid operator config:\n  " + "\n  ".join(lines)) from None


def load_config(path: Optional[str | Path]) -> OperatorConfig:
    """Read config.yaml; no path means the chart's defaults."""
    if not path:
        return default_config()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read operator config {path}: {exc}") from None
    return parse_config(yaml.safe_load(text))


DEFAULT_NODE_POOLS: dict[str, NodePool] = {
    # Plain CPU nodes: controllers, data preparation, evals, the Ray head, the operator itself.
    "cpu": NodePool(resource="none", node_selector={"glassbox.dev/pool": "cpu"}),
    # 8x H100 80GB per node (the a3-highgpu-8g shape).
    "h100": NodePool(
        resource="nvidia.com/gpu",
        count=8,
        node_selector={"glassbox.dev/pool": "h100", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    ),
    # One TPU v5e 4x4 slice: 4 hosts x 4 chips (the ct5lp-hightpu-4t shape).
    "tpu-v5e-16": NodePool(
        resource="google.com/tpu",
        count=4,
        node_selector={"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "4x4"},
        tolerations=[{"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}],
        tpu=TpuSlice(accelerator="tpu-v5-lite-podslice", topology="4x4", hosts=4),
    ),
}
"""The default node-pool table, written out once: the chart's default `nodePools` (values.yaml is
checked against it), what the operator assumes without a config file, and the pools the test
cluster's fake nodes (hack/cluster/nodes.yaml, checked against it) provide."""


def default_config() -> OperatorConfig:
    """The chart's default node pools and images (what `helm install` with no values gives)."""
    return OperatorConfig(node_pools=DEFAULT_NODE_POOLS)
