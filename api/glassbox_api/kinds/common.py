"""Spec and status blocks shared by every kind (DESIGN.md section 2)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field

from ..conditions import Phase as PhaseEnum
from .base import Block, Rule, set_fields

# Kubernetes names and quantities, as the apiserver spells them.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
# A store URI or a local path; s3://bucket/key, file:///path, /abs/path, relative/path, stdlib://
URI = r"^([a-z][a-z0-9+.-]*://)?[^\s]+$"
FUNCTION_REF = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

Name = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
PoolName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
Uri = Annotated[str, Field(min_length=1, max_length=2048, pattern=URI)]
Quantity = Union[Annotated[int, Field(ge=0)], Annotated[str, Field(max_length=64, pattern=QUANTITY)]]
FunctionRef = Annotated[str, Field(max_length=256, pattern=FUNCTION_REF)]
ShortText = Annotated[str, Field(max_length=256)]

Architecture = Literal["llama", "gpt2", "bart", "roberta", "bert"]


class FromRun(Block):
    """A checkpoint published by another glassbox resource in the same namespace."""

    kind: Literal["PretrainRun", "ShardedFinetune"]
    """Kind of the source resource."""
    name: Name
    """Name of the source resource."""
    checkpoint: Annotated[str, Field(max_length=32, pattern=r"^(latest|step-[0-9]+)$")] = "latest"
    """Which checkpoint: `latest`, or `step-N` for the checkpoint at step N. While the source has
    not published it yet, the operator waits (phase Pending, reason WaitingForCheckpoint)."""


class ModelConfig(Block):
    """Architecture hyper-parameters for a model initialised at random."""

    vocab_size: Optional[Annotated[int, Field(ge=8, le=1_048_576)]] = None
    """Vocabulary size; when unset it is taken from the tokenizer."""
    hidden_size: Annotated[int, Field(ge=8, le=65536)] = 256
    """Width of the residual stream."""
    intermediate_size: Annotated[int, Field(ge=8, le=262144)] = 688
    """Width of the MLP."""
    num_layers: Annotated[int, Field(ge=1, le=512)] = 4
    """Number of transformer blocks."""
    num_heads: Annotated[int, Field(ge=1, le=1024)] = 4
    """Attention heads; must divide hiddenSize."""
    num_kv_heads: Optional[Annotated[int, Field(ge=1, le=1024)]] = None
    """Key/value heads for grouped-query attention; must divide numHeads. Defaults to numHeads."""
    max_position_embeddings: Annotated[int, Field(ge=8, le=1_048_576)] = 2048
    """Longest sequence the position encoding supports."""
    rms_norm_eps: Annotated[float, Field(gt=0, le=0.1)] = 1e-6
    """Epsilon of RMSNorm / LayerNorm."""
    tie_word_embeddings: bool = False
    """Share the input embedding with the output head."""

    rules = (
        Rule(
            "self.hiddenSize % self.numHeads == 0",
            "hiddenSize must be a multiple of numHeads",
            lambda c: c.hidden_size % c.num_heads == 0,
            ".hiddenSize",
        ),
        Rule(
            "!has(self.numKvHeads) || (self.numKvHeads <= self.numHeads && self.numHeads % self.numKvHeads == 0)",
            "numKvHeads must divide numHeads",
            lambda c: c.num_kv_heads is None or (c.num_kv_heads <= c.num_heads and c.num_heads % c.num_kv_heads == 0),
            ".numKvHeads",
        ),
    )


class ModelSpec(Block):
    """Which model: an architecture initialised from `config`, or weights from `uri` or `fromRun`."""

    architecture: Optional[Architecture] = None
    """Model family. Required for random initialisation; with `uri` or `fromRun` it is read from
    the checkpoint's config.json when unset."""
    config: Optional[ModelConfig] = None
    """Hyper-parameters for random initialisation (ignored when loading weights)."""
    uri: Optional[Uri] = None
    """HF-format checkpoint (config.json + safetensors + tokenizer) in the store: s3://bucket/path
    or a local path."""
    from_run: Optional[FromRun] = None
    """Start from a checkpoint another resource published; the operator resolves it to a URI and
    records the lineage in status."""

    rules = (
        Rule(
            "!(has(self.uri) && has(self.fromRun))",
            "set at most one of model.uri and model.fromRun",
            lambda m: set_fields(m, "uri", "from_run") <= 1,
        ),
        Rule(
            "has(self.architecture) || has(self.uri) || has(self.fromRun)",
            "model needs an architecture (random init), a uri or a fromRun reference",
            lambda m: set_fields(m, "architecture", "uri", "from_run") >= 1,
        ),
        Rule(
            "!has(self.config) || has(self.architecture)",
            "model.config needs model.architecture",
            lambda m: m.config is None or m.architecture is not None,
            ".config",
        ),
    )


class DatasetRef(Block):
    """A dataset file or folder in the store or on local disk."""

    uri: Uri
    """s3://bucket/path, a local path, or a built-in corpus (stdlib:// reads the Python standard
    library's own sources, for offline demos)."""
    format: Literal["jsonl", "json", "text"] = "jsonl"
    """File format: JSON lines, one JSON array, or plain text files."""
    limit: Optional[Annotated[int, Field(ge=1)]] = None
    """Use at most this many examples (after a deterministic shuffle)."""


class Resources(Block):
    """Where and how wide the workload runs."""

    backend: Literal["ray", "jobset", "job", "local"] = "job"
    """ray: a KubeRay RayJob; jobset: a JobSet (multi-host JAX, TPU slices, torchrun multi-node);
    job: one batch Job (single node); local: a subprocess on the operator's host (development)."""
    workers: Annotated[int, Field(ge=1, le=4096)] = 1
    """Number of worker pods (hosts)."""
    accelerator: Optional[PoolName] = None
    """Node pool from the operator's configuration (e.g. h100, tpu-v5e-16). Unset means CPU."""
    accelerators_per_worker: Optional[Annotated[int, Field(ge=1, le=64)]] = None
    """Accelerator chips per worker; defaults to the pool's chips per node."""
    cpu: Quantity = "2"
    """CPU request per worker (Kubernetes quantity)."""
    memory: Quantity = "8Gi"
    """Memory request per worker (Kubernetes quantity)."""
    image: Optional[Annotated[str, Field(max_length=512)]] = None
    """Workload image; defaults to the operator's configured image for this kind."""
    priority_class_name: Optional[Name] = None
    """PriorityClass passed through to the pods."""
    queue_name: Optional[Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]] = None
    """Kueue LocalQueue name; the children get the kueue.x-k8s.io/queue-name label."""

    rules = (
        Rule(
            "self.backend != 'job' || self.workers == 1",
            "backend job runs a single node: set workers to 1 or use backend ray or jobset",
            lambda r: r.backend != "job" or r.workers == 1,
            ".workers",
        ),
        Rule(
            "!has(self.acceleratorsPerWorker) || has(self.accelerator)",
            "acceleratorsPerWorker needs an accelerator node pool",
            lambda r: r.accelerators_per_worker is None or r.accelerator is not None,
            ".acceleratorsPerWorker",
        ),
    )


class ServingResources(Block):
    """Where a service's replicas run."""

    backend: Literal["kserve", "local"] = "kserve"
    """kserve: a KServe InferenceService; local: a server on the operator's host (development)."""
    accelerator: Optional[PoolName] = None
    """Node pool from the operator's configuration; unset means CPU."""
    cpu: Quantity = "1"
    """CPU request per replica."""
    memory: Quantity = "4Gi"
    """Memory request per replica."""
    image: Optional[Annotated[str, Field(max_length=512)]] = None
    """Serving image; defaults to the operator's configured serving image."""
    priority_class_name: Optional[Name] = None
    """PriorityClass passed through to the pods."""


class SecretRef(Block):
    """A Secret in the resource's namespace."""

    name: Name
    """Secret name. It must hold AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""


class Storage(Block):
    """Where artifacts are published; defaults come from the operator's configuration."""

    bucket: Optional[Annotated[str, Field(max_length=63, pattern=BUCKET)]] = None
    """S3 bucket; defaults to the operator's configured bucket."""
    prefix: Optional[Annotated[str, Field(max_length=512, pattern=r"^[A-Za-z0-9._/-]*$")]] = None
    """Key prefix under the bucket."""
    endpoint: Optional[Annotated[str, Field(max_length=512, pattern=r"^https?://[^\s/@]+/?$")]] = None
    """S3 endpoint URL (scheme and host[:port]; no user:password@, credentials come from secretRef);
    defaults to the operator's configured endpoint. An endpoint other than the configured one needs
    its own secretRef: the operator never sends its configured credentials to another host."""
    secret_ref: Optional[SecretRef] = None
    """Credentials. They are never written in a spec, a status, an event or a log line."""


class FailurePolicy(Block):
    """What happens when a workload fails."""

    max_retries: Annotated[int, Field(ge=0, le=100)] = 3
    """Retries before the resource is Failed; each retry resumes from the latest checkpoint."""
    backoff_seconds: Annotated[int, Field(ge=1, le=86400)] = 30
    """First retry delay; it doubles with each retry (capped at one hour)."""


# ---------------------------------------------------------------------------------------------
# Status blocks


class Condition(Block):
    """The metav1.Condition shape."""

    type: Annotated[str, Field(max_length=316, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")]
    """Condition type in CamelCase (Ready, Progressing, Failed, Suspended, ModelResolved)."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    """CamelCase reason a script can match."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable detail."""
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    """When the status last changed."""
    observed_generation: Optional[Annotated[int, Field(ge=0)]] = None
    """The .metadata.generation the condition was computed from."""


class Artifacts(Block):
    """Where the run's record lives."""

    run_uri: Optional[Uri] = None
    """The run directory (run.json, checkpoints/, evals/, manifest.json)."""
    manifest_uri: Optional[Uri] = None
    """The manifest, the commit point of published checkpoints."""


class ChildRef(Block):
    """An object the operator owns for this resource."""

    api_version: Annotated[str, Field(max_length=253)]
    """apiVersion of the child."""
    kind: Annotated[str, Field(max_length=63)]
    """Kind of the child."""
    name: Name
    """Name of the child."""


class Lineage(Block):
    """Where the starting weights came from."""

    source: Optional[Annotated[str, Field(max_length=512)]] = None
    """`Kind/name@checkpoint` of a fromRun source."""
    uri: Optional[Uri] = None
    """The resolved checkpoint URI."""
    step: Optional[Annotated[int, Field(ge=0)]] = None
    """The step of the resolved checkpoint."""


# The CRD enum of status.phase, from the one Phase enum.
Phase = Literal[tuple(p.value for p in PhaseEnum)]  # type: ignore[valid-type]


class BaseStatus(Block):
    """Status fields every kind has."""

    phase: Optional[Phase] = None
    """Pending, Running, Succeeded, Failed, Suspended (and Ready for services)."""
    observed_generation: Optional[Annotated[int, Field(ge=0)]] = None
    """The .metadata.generation this status was computed from."""
    conditions: Annotated[list[Condition], Field(max_length=16, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})] = []
    """metav1-shaped conditions, one per type."""
    artifacts: Optional[Artifacts] = None
    """Where the run's record is published."""
    children: Annotated[list[ChildRef], Field(max_length=64)] = []
    """Objects the operator created for this resource."""
    lineage: Optional[Lineage] = None
    """The resolved source of the starting weights."""
    retries: Optional[Annotated[int, Field(ge=0)]] = None
    """Failed attempts so far."""
    start_time: Optional[str] = Field(default=None, json_schema_extra={"format": "date-time"})
    """When the workload first started."""
    completion_time: Optional[str] = Field(default=None, json_schema_extra={"format": "date-time"})
    """When the resource reached Succeeded or Failed."""
    message: Optional[Annotated[str, Field(max_length=4096)]] = None
    """One line for people: what is happening now."""


class ServiceStatus(BaseStatus):
    """Status of a serving kind (scale subresource paths)."""

    endpoint: Optional[Annotated[str, Field(max_length=2048)]] = None
    """URL of the service once the InferenceService reports one."""
    replicas: Optional[Annotated[int, Field(ge=0)]] = None
    """Replicas the service runs (scale subresource)."""
    ready_replicas: Optional[Annotated[int, Field(ge=0)]] = None
    """Replicas ready to serve."""
    selector: Optional[Annotated[str, Field(max_length=1024)]] = None
    """Label selector of the replicas' pods (scale subresource)."""


def metrics_free_form() -> dict[str, Any]:
    """json_schema_extra for free-form numeric results keyed by name."""
    return {"type": "object", "additionalProperties": {"type": "number"}}
