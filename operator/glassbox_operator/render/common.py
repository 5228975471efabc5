"""Pieces every backend renders the same way: metadata, owner references, the spec ConfigMap,
store environment, node-pool placement, Kueue and priority. Pure functions of the Context."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from glassbox_api.conditions import Reason
from glassbox_api.constants import API_VERSION, LABEL_ATTEMPT, LABEL_KIND, LABEL_NAME, LABEL_UID
from glassbox_api.manifest import MANIFEST_JSON, run_prefix
from glassbox_api.podcontract import SPEC_FILE, SPEC_KEY, SPEC_MOUNT, Env, argv

from ..context import STAGE_SERVE, Context
from ..naming import child_name, label_value
from . import security

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "glassbox", "app.kubernetes.io/part-of": "glassbox"}

class RenderError(ValueError):
    """The resource cannot be rendered with this operator configuration: terminal, with a reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


# ---- identity ---------------------------------------------------------------------------------
def labels(ctx: Context, component: str) -> dict[str, str]:
    out = {
        LABEL_KIND: ctx.kind.lower(),
        LABEL_NAME: label_value(ctx.name),
        LABEL_UID: ctx.uid,
        LABEL_ATTEMPT: str(ctx.plan.attempt),
        "app.kubernetes.io/component": component,
        **MANAGED_BY,
    }
    queue = queue_name(ctx)
    if queue and component != "spec":
        out[QUEUE_LABEL] = queue
    return out


def owner_reference(ctx: Context) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": ctx.kind,
        "name": ctx.name,
        "uid": ctx.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(ctx: Context, name: str, component: str, annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ctx.namespace,
        "labels": labels(ctx, component),
        "ownerReferences": [owner_reference(ctx)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def workload_name(ctx: Context) -> str:
    """The workload child of this attempt: `<name>-a<attempt>` (`<name>-train-a<attempt>` when training
    before serving). Each retry gets a fresh name, so a failed attempt never blocks the next; a run
    other than the uid's own (KindHome.run_id) puts its id in the name too (`<name>-train-<id8>-a0`),
    so the Job of a changed spec is never the finished Job of the last one."""
    run = ctx.run_id
    tag = "" if run == ctx.uid else f"{run[:8]}-"
    return child_name(ctx.name, f"{ctx.home.workload_prefix(ctx.plan.stage)}{tag}a{ctx.plan.attempt}")


def spec_configmap_name(ctx: Context) -> str:
    return child_name(ctx.name, "spec", 63)


# ---- what the workload runs -------------------------------------------------------------------
def workload_resources(ctx: Context) -> Any:
    """The spec's Resources block of the current stage."""
    return ctx.stage_resources


def backend(ctx: Context) -> str:
    """The backend of the current stage; the operator default applies when the spec leaves it out."""
    res = workload_resources(ctx)
    if ctx.plan.stage == STAGE_SERVE:
        return _local_allowed(ctx, "local" if res.backend == "local" else "serving")
    allowed = ctx.home.backends
    chosen = res.backend if "backend" in res.model_fields_set else ctx.config.defaults.backend
    if chosen not in allowed:
        chosen = res.backend
    if chosen not in allowed:
        raise RenderError(Reason.UNSUPPORTED_BACKEND, f"{ctx.kind} cannot run on backend {chosen}; use one of {', '.join(allowed)}")
    return _local_allowed(ctx, chosen)


def _local_allowed(ctx: Context, chosen: str) -> str:
    """Backend local runs the workload inside the operator's own pod, with its identity: only where
    the operator's configuration allows it (security.allowLocalBackend; `glassbox run` needs none)."""
    if chosen == "local" and not ctx.config.security.allow_local_backend:
        raise RenderError(Reason.LOCAL_BACKEND_DISABLED,
                          "backend local (a process inside the operator's pod, with the operator's identity) is "
                          "disabled on this cluster: use backend job, jobset or ray (the chart value "
                          "security.allowLocalBackend enables it, for development clusters)")
    return chosen


def image(ctx: Context) -> str:
    res = workload_resources(ctx)
    if res.image:
        return res.image
    images = ctx.config.defaults.images
    if backend(ctx) == "serving":
        return images.serving
    return getattr(images, ctx.home.family)


def queue_name(ctx: Context) -> Optional[str]:
    res = workload_resources(ctx)
    return getattr(res, "queue_name", None) or ctx.config.defaults.queue_name or None


def priority_class(ctx: Context) -> Optional[str]:
    return workload_resources(ctx).priority_class_name or ctx.config.defaults.priority_class_name or None


def spec_document(ctx: Context) -> dict[str, Any]:
    """The resource the workload reads: metadata it needs, and the spec with fromRun resolved."""
    spec = ctx.resource.spec.wire()
    if ctx.model_uri and isinstance(spec.get("model"), dict):
        spec["model"] = resolved_model(spec["model"], ctx.model_uri)
    if ctx.inputs:
        spec = ctx.home.resolved_spec(spec, ctx.inputs)
    return {
        "apiVersion": API_VERSION,
        "kind": ctx.kind,
        "metadata": {"name": ctx.name, "namespace": ctx.namespace, "uid": ctx.uid},
        "spec": spec,
    }


def resolved_model(model: dict[str, Any], uri: str) -> dict[str, Any]:
    """spec.model with its fromRun resolved: the checkpoint's uri in place of the reference, or, for
    `checkpoint: each` (a kind that follows every checkpoint), the reference kept with the source
    run's folder as fromRun.runUri."""
    from_run = model.get("fromRun") or {}
    if from_run.get("checkpoint") == "each":
        return {**model, "fromRun": {**from_run, "runUri": uri}}
    return {**{k: v for k, v in model.items() if k != "fromRun"}, "uri": uri}


def spec_configmap(ctx: Context) -> dict[str, Any]:
    """The spec the pods mount; JSON is YAML, and sorted keys keep re-applies byte-identical."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(ctx, spec_configmap_name(ctx), "spec"),
        "data": {SPEC_KEY: json.dumps(spec_document(ctx), indent=2, sort_keys=True) + "\n"},
    }


# ---- the artifact store -----------------------------------------------------------------------
@dataclass(frozen=True)
class StoreTarget:
    """Where a run publishes: a store root URI and how to reach it (never the credentials)."""

    uri: str
    endpoint: Optional[str] = None
    secure: bool = True
    region: str = "us-east-1"
    secret: Optional[str] = None
    configured: bool = True
    """The operator's configured endpoint (its own credentials apply); False: an endpoint the spec
    names, reached only with the spec's own Secret (spec.storage.secretRef)."""


def _is_configured(ctx: Context, endpoint: str, secure: bool) -> bool:
    """endpoint (host:port) over this scheme is the store the operator is configured for: the only
    place its credentials, and the configured Secret, go. Plain HTTP to the configured host is not."""
    cfg = ctx.config.storage
    return bool(cfg.endpoint) and endpoint.lower() == cfg.endpoint.lower() and secure == cfg.secure


def store_target(ctx: Context) -> StoreTarget:
    cfg = ctx.config.storage
    st = ctx.spec.storage
    endpoint, secure = cfg.endpoint or None, cfg.secure
    configured = True
    if st.endpoint:
        u = urlsplit(st.endpoint)
        endpoint, secure = u.netloc, u.scheme == "https"
        configured = _is_configured(ctx, endpoint, secure)
        if not configured and st.secret_ref is None:
            raise RenderError(
                Reason.ENDPOINT_NEEDS_CREDENTIALS,
                f"spec.storage.endpoint {st.endpoint} is not the operator's configured store, whose credentials "
                "are used nowhere else: set spec.storage.secretRef to a Secret with this endpoint's credentials",
            )
    bucket = st.bucket or cfg.bucket
    prefix = (st.prefix if st.prefix is not None else cfg.prefix).strip("/")
    secret = st.secret_ref.name if st.secret_ref else cfg.credentials_secret
    if endpoint is None:
        if backend(ctx) == "local":
            root = ctx.config.local_store or "glassbox-runs"
            return StoreTarget(uri=root, secret=None)
        raise RenderError(
            Reason.NO_ARTIFACT_STORE,
            "no artifact store: set spec.storage.endpoint or the operator's storage.endpoint (chart values)",
        )
    uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return StoreTarget(uri=uri, endpoint=endpoint, secure=secure, region=cfg.region, secret=secret, configured=configured)


def run_uri(ctx: Context) -> str:
    """The run directory, `<store>/<namespace>/<kind>/<name>-<id8>` (the run id: KindHome.run_id)."""
    return f"{store_target(ctx).uri.rstrip('/')}/{run_prefix(ctx.namespace, ctx.kind, ctx.name, ctx.run_id)}"


def artifacts(ctx: Context) -> dict[str, str]:
    run = run_uri(ctx)
    return {"runUri": run, "manifestUri": f"{run}/{MANIFEST_JSON}", **ctx.home.artifacts(run)}


def store_env(ctx: Context) -> list[dict[str, Any]]:
    """Environment of every workload container: the store and the run id; credentials by reference."""
    t = store_target(ctx)
    env: list[dict[str, Any]] = [
        {"name": Env.STORE, "value": t.uri},
        {"name": Env.RUN_ID, "value": ctx.run_id},
    ]
    if t.endpoint:
        env += [
            {"name": Env.S3_ENDPOINT, "value": t.endpoint},
            {"name": Env.S3_SECURE, "value": "true" if t.secure else "false"},
            {"name": Env.S3_REGION, "value": t.region},
        ]
    if t.secret:
        for key in (Env.AWS_ACCESS_KEY_ID, Env.AWS_SECRET_ACCESS_KEY):
            env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": t.secret, "key": key}}})
    return env


# ---- placement --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where one worker runs and what it asks for."""

    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    requests: dict[str, str]
    limits: dict[str, str]
    chips: int = 0
    tpu_hosts: int = 0
    tpu_topology: Optional[str] = None


def _qty(v: Any) -> str:
    return str(v)


def placement(ctx: Context, accelerator: Optional[str] = None, *, use_accelerator: bool = True) -> Placement:
    """The node pool of the current stage (or CPU), as selectors, tolerations and resource asks."""
    res = workload_resources(ctx)
    requests = {"cpu": _qty(res.cpu), "memory": _qty(res.memory)}
    pool_name = accelerator if accelerator is not None else res.accelerator
    if not use_accelerator:
        pool_name = None
    if not pool_name:
        cpu = ctx.config.pool("cpu")
        sel = dict(cpu.node_selector) if cpu else {}
        tol = list(cpu.tolerations) if cpu else []
        return Placement(sel, tol, requests, {"memory": requests["memory"]})
    pool = ctx.config.pool(pool_name)
    if pool is None:
        known = ", ".join(ctx.config.pool_names) or "none"
        raise RenderError(Reason.UNKNOWN_NODE_POOL, f"accelerator {pool_name!r} is not a configured node pool (configured: {known})")
    limits = {"memory": requests["memory"]}
    chips = 0
    ext = pool.extended_resource
    if ext:
        chips = getattr(res, "accelerators_per_worker", None) or pool.count
        if pool.count and chips > pool.count:
            raise RenderError(Reason.TOO_MANY_ACCELERATORS, f"acceleratorsPerWorker {chips} exceeds the {pool.count} of a {pool_name} node")
        limits[ext] = str(chips)
        requests[ext] = str(chips)
    return Placement(
        dict(pool.node_selector), list(pool.tolerations), requests, limits, chips,
        pool.tpu.hosts if pool.tpu else 0, pool.tpu.topology if pool.tpu else None,
    )


def stage_arg(ctx: Context) -> Optional[str]:
    """`--stage` of a service kind's workload (its training Job or its model server); None for a batch kind."""
    return ctx.plan.stage if ctx.home.service else None


def workload_command(ctx: Context) -> list[str]:
    return argv(ctx.kind, SPEC_FILE, stage_arg(ctx))


def container(ctx: Context, name: str, place: Placement, *, command: Optional[list[str]] = None,
              extra_env: Optional[list[dict[str, Any]]] = None, ports: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": image(ctx),
        "command": command if command is not None else workload_command(ctx),
        "env": store_env(ctx) + ctx.home.secret_env(ctx.spec) + (extra_env or []),
        "resources": {"requests": dict(place.requests), "limits": dict(place.limits)},
        "volumeMounts": [{"name": "spec", "mountPath": SPEC_MOUNT, "readOnly": True}],
    }
    if ports:
        c["ports"] = ports
    return security.harden_container(ctx, c)


def pod_spec(ctx: Context, containers: list[dict[str, Any]], place: Placement, *, restart: Optional[str] = "Never") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": containers,
        "volumes": [{"name": "spec", "configMap": {"name": spec_configmap_name(ctx)}}],
    }
    if restart:
        spec["restartPolicy"] = restart
    if place.node_selector:
        spec["nodeSelector"] = dict(place.node_selector)
    if place.tolerations:
        spec["tolerations"] = list(place.tolerations)
    pc = priority_class(ctx)
    if pc:
        spec["priorityClassName"] = pc
    return security.harden_pod(ctx, spec)


def pod_template(ctx: Context, component: str, spec: dict[str, Any], annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": {k: v for k, v in labels(ctx, component).items() if k != QUEUE_LABEL}}
    annotations = {**ctx.config.defaults.pod_annotations, **(annotations or {})}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def workers(ctx: Context) -> int:
    return getattr(workload_resources(ctx), "workers", 1)


# ---- what a child says about itself -----------------------------------------------------------
@dataclass(frozen=True)
class ChildState:
    """A workload child's state, read from its status by its backend's observe()."""

    state: str = "Missing"
    """Missing, Pending, Running, Succeeded or Failed."""
    reason: str = ""
    """CamelCase reason from the child (BackoffLimitExceeded, AppFailed...)."""
    message: str = ""
    finished_at: Optional[str] = None
    ready: bool = False
    """Services: ready to serve."""
    endpoint: Optional[str] = None
    permanent: bool = False
    """Failed: the workload said retrying cannot help (a permanent exit code: bad input, invalid spec)."""


MISSING = ChildState()


def condition(obj: dict[str, Any], ctype: str) -> Optional[dict[str, Any]]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_true(obj: dict[str, Any], ctype: str) -> bool:
    c = condition(obj, ctype)
    return bool(c and c.get("status") == "True")
