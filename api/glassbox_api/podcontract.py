"""The pod contract: what the operator (and `glassbox run`) and the workload programs agree on.

One place for the command a pod runs, the environment names that cross the operator/workload
boundary, the exit codes a workload ends with, and the run id that names a run's folder
(DESIGN.md sections 4-6). The operator writes these; the workloads read them; neither spells them
out itself. Test-only fault hooks are not part of the contract: they live in
glassbox_workloads.runtime.faults.
"""

from __future__ import annotations

import hashlib
import json
from enum import IntEnum
from typing import Any, Optional

ENTRY_MODULE = "glassbox_workloads"
"""The module every workload pod runs (`python -m glassbox_workloads <kind> --spec FILE`)."""

SPEC_MOUNT = "/etc/glassbox/spec"
"""Where the operator mounts the resource (a ConfigMap volume) in workload pods."""

SPEC_KEY = "resource.yaml"
"""The key of the resource in the spec ConfigMap (the file name under SPEC_MOUNT)."""

SPEC_FILE = f"{SPEC_MOUNT}/{SPEC_KEY}"
"""The resource file the workload reads in a pod (JSON content, YAML-compatible)."""

MODEL_DIR = "/mnt/models"
"""Where KServe's storage initializer puts a served model (the value of Env.MODEL_DIR)."""

SERVING_PORT = 8080
"""Where a service kind's model server listens in its pod: its routes, health and /metrics."""

SERVED_ITEMS_METRIC = "glassbox_serving_items_total"
"""The Prometheus counter of items a model server processed (labels `model`: the resource name,
`unit`: pairs, prompts...). Written by glassbox_workloads.serving; the operator sums it over the
ready replicas into the kind's progress (ScorerService: pairsScored)."""

TORCH_MASTER_PORT = 29500
"""torchrun's static rendezvous port on node 0 of a multi-node torch workload."""

JAX_COORDINATOR_PORT = 8476
"""jax.distributed's coordinator port on process 0 unless Env.COORDINATOR_PORT says otherwise."""


STAGES = ("train", "serve")
"""A service kind's stages (`--stage`): its training Job, then its model server. Without `--stage` a
service kind runs both, one after the other (`glassbox run`)."""


def argv(kind: str, spec_file: str, stage: Optional[str] = None) -> list[str]:
    """The command of a single-process workload: `python -m glassbox_workloads <kind> --spec FILE`,
    with `--stage train|serve` for one stage of a service kind."""
    if stage is not None and stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {', '.join(STAGES)}")
    return ["python", "-m", ENTRY_MODULE, kind.lower(), "--spec", spec_file, *(["--stage", stage] if stage else [])]


def torchrun_argv(kind: str, spec_file: str, *, nnodes: int, nproc_per_node: int, node_rank: str,
                  master_addr: str, master_port: int = TORCH_MASTER_PORT) -> list[str]:
    """The command of a multi-node torch workload: torchrun with a static rendezvous on node 0.

    torchrun runs a module only with `-m` (`torchrun [opts] -m glassbox_workloads <kind> ...`);
    without it torchrun takes `glassbox_workloads` for a script path and cannot start.
    node_rank is a string so that it can be a Kubernetes `$(JOB_COMPLETION_INDEX)` reference.
    """
    return [
        "torchrun", f"--nnodes={nnodes}", f"--nproc-per-node={nproc_per_node}", f"--node-rank={node_rank}",
        "--rdzv-backend=static", f"--master-addr={master_addr}", f"--master-port={master_port}",
        "-m", ENTRY_MODULE, kind.lower(), "--spec", spec_file,
    ]


class Env:
    """Environment variable names that cross the operator/workload boundary, one constant each.

    Each says who sets it and who reads it. Values are the names (strings), never the values.
    """

    # ---- the run: where it publishes and what it is called --------------------------------
    STORE = "GLASSBOX_STORE"
    """Artifact store root (path, file:// or s3://bucket/prefix). Set by the operator's renderers on
    every workload container and by the user for `glassbox run/checkpoints/report`; read by the
    workload entrypoint (`--store` default) and the CLI (its default store root)."""
    RUN_ID = "GLASSBOX_RUN_ID"
    """The run id (the resource's metadata.uid). Set by the operator's renderers; read by the workload
    entrypoint (`--run-id` default) to name the run folder (see run_id())."""
    LOG_LEVEL = "GLASSBOX_LOG_LEVEL"
    """Python log level of a workload (default WARNING). Set by the user or pod template; read by the
    workload entrypoint."""
    CODE_VERSION = "GLASSBOX_CODE_VERSION"
    """Code version recorded in run.json (default: the installed glassbox version). Set by the image
    build or the user; read by the training workloads."""
    IMAGE = "GLASSBOX_IMAGE"
    """Container image recorded in run.json. Set by the image build or the user; read by the training
    workloads."""
    STAGING_DIR = "GLASSBOX_STAGING_DIR"
    """Local directory for checkpoint files before upload (default: the system temp dir). Set by the
    user or pod template (e.g. a large emptyDir); read by the training workloads."""
    METRICS_PORT = "GLASSBOX_METRICS_PORT"
    """Port of a workload's Prometheus endpoint (unset: no endpoint). Set by the user or pod template;
    read by glassbox_workloads.runtime.metrics."""
    MODEL_DIR = "GLASSBOX_MODEL_DIR"
    """Directory of the model a serving container loads (MODEL_DIR). Set by the operator's serving
    renderer; read by the serving workloads."""
    CONFIG = "GLASSBOX_CONFIG"
    """The operator's config.yaml. Set by the Helm chart's Deployment; read by the operator and by
    `glassbox render/operator` (never by workloads)."""

    # ---- S3: endpoint, credentials and tuning (glassbox_api.store.s3.S3Settings.from_env) ------
    S3_ENDPOINT = "GLASSBOX_S3_ENDPOINT"
    """host:port of the S3 server. Set by the operator's renderers (from spec.storage or the chart)
    or the user; read by S3Settings.from_env (before AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL)."""
    S3_SECURE = "GLASSBOX_S3_SECURE"
    """"true"/"false": TLS to the S3 server. Set by the operator's renderers or the user; read by
    S3Settings.from_env."""
    S3_REGION = "GLASSBOX_S3_REGION"
    """S3 region (default us-east-1). Set by the operator's renderers or the user; read by
    S3Settings.from_env (before AWS_REGION/AWS_DEFAULT_REGION)."""
    S3_ACCESS_KEY = "GLASSBOX_S3_ACCESS_KEY"
    """S3 access key. Set by the user or a test harness (the operator passes AWS_ACCESS_KEY_ID from a
    Secret instead); read by S3Settings.from_env."""
    S3_SECRET_KEY = "GLASSBOX_S3_SECRET_KEY"
    """S3 secret key. Set by the user or a test harness; read by S3Settings.from_env."""
    S3_SESSION_TOKEN = "GLASSBOX_S3_SESSION_TOKEN"
    """S3 session token (temporary credentials). Set by the user; read by S3Settings.from_env."""
    S3_CREDENTIALS_DIR = "GLASSBOX_S3_CREDENTIALS_DIR"
    """A mounted Secret directory with endpoint and credential files. Set by the user or pod template;
    read by S3Settings.from_env."""
    S3_PART_SIZE = "GLASSBOX_S3_PART_SIZE"
    """Multipart part size in bytes. Set by the user; read by S3Settings.from_env."""
    S3_PARALLEL_UPLOADS = "GLASSBOX_S3_PARALLEL_UPLOADS"
    """Parts uploaded at once. Set by the user; read by S3Settings.from_env."""
    S3_MULTIPART_THRESHOLD = "GLASSBOX_S3_MULTIPART_THRESHOLD"
    """Object size from which uploads are multipart. Set by the user; read by S3Settings.from_env."""
    S3_SIGN_PAYLOAD = "GLASSBOX_S3_SIGN_PAYLOAD"
    """"true": sign payloads instead of UNSIGNED-PAYLOAD. Set by the user; read by S3Settings.from_env."""
    S3_CERT_CHECK = "GLASSBOX_S3_CERT_CHECK"
    """"false": skip TLS certificate checks. Set by the user; read by S3Settings.from_env."""
    S3_RETRY_DEADLINE = "GLASSBOX_S3_RETRY_DEADLINE"
    """Seconds a store call keeps retrying transient errors (default 300). Set by the user; read by
    glassbox_api.store.retry.RetryPolicy.from_env."""
    S3_RETRY_INITIAL = "GLASSBOX_S3_RETRY_INITIAL"
    """First retry backoff in seconds (default 0.25). Set by the user; read by RetryPolicy.from_env."""
    S3_RETRY_MAX = "GLASSBOX_S3_RETRY_MAX"
    """Largest retry backoff in seconds (default 8). Set by the user; read by RetryPolicy.from_env."""

    # ---- distributed: who the processes are and where they meet -------------------------------
    NUM_PROCESSES = "GLASSBOX_NUM_PROCESSES"
    """Processes of a multi-host workload (pods x 1). Set by the operator's JobSet renderer; read by
    glassbox_workloads.redco.mesh (jax.distributed)."""
    PODS_PER_JOB = "GLASSBOX_PODS_PER_JOB"
    """Pods per Job of a replicated job (hosts per TPU slice). Set by the operator's JobSet renderer;
    read by glassbox_workloads.redco.mesh to derive the process id."""
    COORDINATOR_ADDRESS = "GLASSBOX_COORDINATOR_ADDRESS"
    """host:port of jax.distributed's coordinator, overriding the derived one. Set by the user or a
    test; read by glassbox_workloads.redco.mesh."""
    COORDINATOR_PORT = "GLASSBOX_COORDINATOR_PORT"
    """Port of the coordinator (default JAX_COORDINATOR_PORT). Set by the user; read by
    glassbox_workloads.redco.mesh."""
    JOBSET_SUBDOMAIN = "GLASSBOX_JOBSET_SUBDOMAIN"
    """DNS subdomain of the JobSet's pods (default: the JobSet name). Set by the user; read by
    glassbox_workloads.redco.mesh."""
    LAUNCHER = "GLASSBOX_LAUNCHER"
    """"ray" starts a local Ray cluster for a Ray-backed workload, "local" never uses Ray. Set by the
    user or a test; read by glassbox_workloads.pretrain.launch_ray."""
    RAY_WORKER = "GLASSBOX_RAY_WORKER"
    """"1" in a Ray Train worker. Set by glassbox_workloads.pretrain.launch_ray for its workers; read
    by the same module so a worker does not launch Ray again."""
    RAY_STORAGE = "GLASSBOX_RAY_STORAGE"
    """Ray Train's storage path (default /tmp/ray-results). Set by the user; read by
    glassbox_workloads.pretrain.launch_ray."""
    FORCE_CPU = "GLASSBOX_FORCE_CPU"
    """"1": train on CPU even where an accelerator is visible. Set by the user or a test; read by the
    torch workloads."""
    PEAK_TFLOPS = "GLASSBOX_PEAK_TFLOPS"
    """Peak dense TFLOP/s of one device, for MFU (default: a table by device name). Set by the user;
    read by the pretrain workload."""

    # ---- set by Kubernetes, JobSet or the operator from Secrets; read by the workloads -----------
    JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"
    """Index of the pod in an Indexed Job. Set by Kubernetes; read by glassbox_workloads.redco.mesh
    and torchrun's --node-rank."""
    JOB_INDEX = "JOB_INDEX"
    """Index of the Job in a JobSet replicated job. Set by the operator's JobSet renderer (from the
    jobset.sigs.k8s.io/job-index annotation); read by glassbox_workloads.redco.mesh."""
    JOBSET_NAME = "JOBSET_NAME"
    """The JobSet's name. Set by the operator's JobSet renderer (downward API); read by
    glassbox_workloads.redco.mesh."""
    REPLICATED_JOB_NAME = "REPLICATED_JOB_NAME"
    """The replicated job's name. Set by the operator's JobSet renderer (downward API); read by
    glassbox_workloads.redco.mesh."""
    AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
    """S3 access key. Set by the operator's renderers from the store's Secret; read by
    S3Settings.from_env when S3_ACCESS_KEY is unset."""
    AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
    """S3 secret key. Set by the operator's renderers from the store's Secret; read by
    S3Settings.from_env when S3_SECRET_KEY is unset."""

    @classmethod
    def names(cls) -> dict[str, str]:
        """Every constant: attribute -> environment name."""
        return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}


class ExitCode(IntEnum):
    """How a workload process ends; the operator retries only transient failures."""

    OK = 0
    """Done: everything was published."""
    FAILED = 1
    """Transient failure (store down, OOM, killed, a bug): retried by the operator, resumed from the
    latest checkpoint."""
    INVALID_SPEC = 2
    """Permanent: the spec (or the command line) is invalid; fix the resource."""
    NOT_RUNNABLE = 3
    """Permanent: a kind this image cannot run (no program yet, or its extra is not installed)."""
    BAD_INPUT = 4
    """Permanent: input that cannot work however often retried (a data source that does not exist, a
    model without the head the kind needs, a checkpoint that fails its checksum...)."""


PERMANENT_EXIT_CODES = frozenset({ExitCode.INVALID_SPEC, ExitCode.NOT_RUNNABLE, ExitCode.BAD_INPUT})
"""Exit codes after which retrying cannot help: the operator reports Failed at once."""


def is_permanent(code: int) -> bool:
    """True for an exit code that retrying cannot fix (2, 3, 4)."""
    return code in PERMANENT_EXIT_CODES


def run_id(kind: str, name: str, namespace: str, spec: dict[str, Any], uid: Optional[str] = None) -> str:
    """The id naming a run's folder (`<namespace>/<kind>/<name>-<id[:8]>`, manifest.run_prefix).

    With a Kubernetes uid the id is the uid. Without one (a file run locally) it is a digest of the
    kind, name and spec, so running the same resource again resumes its run instead of starting a
    new one; spec is the spec as the apiserver stores it (Block.wire(): camelCase, defaults filled
    in, empty lists left out). The namespace is already in the run's path, so it is not hashed
    (this keeps the ids of runs made before this function existed).
    """
    del namespace  # part of the run prefix, not of the id
    if uid:
        return uid
    blob = json.dumps(spec, sort_keys=True)
    return hashlib.sha256(f"{kind}/{name}/{blob}".encode()).hexdigest()[:8]


__all__ = [
    "ENTRY_MODULE", "Env", "ExitCode", "JAX_COORDINATOR_PORT", "MODEL_DIR", "PERMANENT_EXIT_CODES",
    "SERVED_ITEMS_METRIC", "SERVING_PORT", "SPEC_FILE", "SPEC_KEY", "SPEC_MOUNT", "STAGES", "TORCH_MASTER_PORT", "argv", "is_permanent", "run_id", "torchrun_argv",
]
