"""The operator's configuration: the chart's config.yaml (nodePools, storage, defaults), typed.

Read once at start-up (GLASSBOX_CONFIG or --config); the renderers receive it as a value and never
read files or the environment themselves. Unknown keys are refused, so a typo in the chart values
fails at start-up instead of silently placing pods on the wrong nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class TpuSlice(_Config):
    """A TPU slice shape: every worker of a JobSet replicated job lives in one slice."""

    accelerator: str
    """GKE accelerator type (cloud.google.com/gke-tpu-accelerator), e.g. tpu-v5-lite-podslice."""
    topology: str
    """Chip topology of one slice (cloud.google.com/gke-tpu-topology), e.g. 4x4."""
    hosts: int = Field(1, ge=1)
    """Hosts (pods) per slice; a TPU run needs a multiple of this many workers."""


class NodePool(_Config):
    """One entry of the node-pool table: where a spec's `resources.accelerator` lands."""

    resource: str = "none"
    """Extended resource each worker asks for (nvidia.com/gpu, google.com/tpu), or none."""
    count: int = Field(0, ge=0)
    """How many of that resource one node has; a worker asks for all of them by default."""
    node_selector: dict[str, str] = {}
    """Labels that place workers on the pool's nodes."""
    tolerations: list[dict[str, Any]] = []
    """Taints of the pool's nodes that workers tolerate (Kubernetes Toleration objects)."""
    tpu: Optional[TpuSlice] = None
    """TPU pools only: the slice shape."""

    @property
    def extended_resource(self) -> Optional[str]:
        return None if self.resource in ("", "none") else self.resource


class StorageConfig(_Config):
    """The default artifact store (S3-compatible)."""

    endpoint: str = ""
    """host[:port] of the S3 endpoint; empty: no default store (each resource must name one)."""
    bucket: str = "glassbox"
    """Bucket for artifacts."""
    prefix: str = "runs"
    """Key prefix inside the bucket."""
    region: str = "us-east-1"
    """Region sent to the endpoint."""
    secure: bool = True
    """Reach the endpoint over TLS."""
    credentials_secret: str = "glassbox-storage"
    """Secret (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) in each namespace, referenced, never read."""


class Images(_Config):
    """Workload images per family."""

    torch: str = "ghcr.io/glassbox/torch:0.1.0"
    """PyTorch workloads (PretrainRun, DialogBot training, KGHarvest, MetricEval)."""
    jax: str = "ghcr.io/glassbox/jax:0.1.0"
    """JAX workloads (ShardedFinetune)."""
    serving: str = "ghcr.io/glassbox/serving:0.1.0"
    """Serving (ScorerService, DialogBot)."""


class RayHead(_Config):
    """The Ray head pod of backend ray: it runs the driver (the entrypoint that starts the
    training workers), not the training, so it is sized on its own, not like a worker."""

    cpu: Union[str, int, float] = "2"
    """CPU request (a Kubernetes quantity)."""
    memory: str = "8Gi"
    """Memory request and limit (a Kubernetes quantity)."""


class Defaults(_Config):
    """What the renderers use when a resource leaves a field out."""

    images: Images = Images()
    """Workload images per family."""
    backend: Literal["ray", "jobset", "job", "local"] = "job"
    """Backend when a resource's spec.resources.backend is absent."""
    queue_name: str = ""
    """Kueue LocalQueue for children (kueue.x-k8s.io/queue-name); empty: none."""
    priority_class_name: str = ""
    """PriorityClass for workload pods when a resource names none; empty: none."""
    pod_annotations: dict[str, str] = {}
    """Annotations put on every workload pod template (Job, JobSet, RayJob); a template's own win."""
    ray_head: RayHead = RayHead()
    """Requests of the Ray head pod (backend ray); workers get the resource's own cpu/memory."""


class OperatorConfig(_Config):
    """The whole configuration file (kind OperatorConfig)."""

    api_version: str = Field("glassbox.dev/v1alpha1", alias="apiVersion")
    kind: Literal["OperatorConfig"] = "OperatorConfig"
    node_pools: dict[str, Optional[NodePool]] = {}
    """Pool name -> placement. A null entry (helm `--set nodePools.x=null`) removes a pool."""
    storage: StorageConfig = StorageConfig()
    """Default artifact store."""
    defaults: Defaults = Defaults()
    """Defaults for rendering."""
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


def default_config() -> OperatorConfig:
    """The chart's default node pools and images (what `helm install` with no values gives)."""
    return parse_config(
        {
            "nodePools": {
                "cpu": {"resource": "none", "count": 0, "nodeSelector": {"glassbox.dev/pool": "cpu"}},
                "h100": {
                    "resource": "nvidia.com/gpu",
                    "count": 8,
                    "nodeSelector": {"glassbox.dev/pool": "h100", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                },
                "tpu-v5e-16": {
                    "resource": "google.com/tpu",
                    "count": 4,
                    "nodeSelector": {
                        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
                        "cloud.google.com/gke-tpu-topology": "4x4",
                    },
                    "tolerations": [{"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "tpu": {"accelerator": "tpu-v5-lite-podslice", "topology": "4x4", "hosts": 4},
                },
            }
        }
    )
