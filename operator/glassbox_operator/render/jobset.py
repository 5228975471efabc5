"""backend jobset: multi-host work. TPU pools get one replicated Job per slice with exclusive
topology (one slice per node pool); GPU/CPU pools get one Indexed Job of `workers` pods, torchrun
for the torch kinds, the jax.distributed contract (redco/mesh.py) for JAX."""

from __future__ import annotations

from typing import Any

from glassbox_api.conditions import Reason
from glassbox_api.podcontract import SPEC_FILE, TORCH_MASTER_PORT, Env, torchrun_argv

from ..context import Context
from .common import (
    MISSING, ChildState, RenderError, condition, container, is_true, metadata, placement,
    pod_spec, pod_template, workers, workload_command, workload_name,
)

API_VERSION, KIND = "jobset.x-k8s.io/v1alpha2", "JobSet"
EXCLUSIVE = "alpha.jobset.sigs.k8s.io/exclusive-topology"
NODEPOOL_KEY = "cloud.google.com/gke-nodepool"


def _annotation_env(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{key}']"}}}


def render(ctx: Context) -> list[dict[str, Any]]:
    n = workers(ctx)
    place = placement(ctx)
    name = workload_name(ctx)
    if place.tpu_hosts:
        if n % place.tpu_hosts:
            raise RenderError(Reason.UNSUPPORTED_TOPOLOGY, f"{n} workers do not fill whole {place.tpu_topology} slices of {place.tpu_hosts} hosts")
        rjob, replicas, per_job = "slice", n // place.tpu_hosts, place.tpu_hosts
    else:
        rjob, replicas, per_job = "workers", 1, n
    env = [
        {"name": Env.NUM_PROCESSES, "value": str(n)},
        {"name": Env.PODS_PER_JOB, "value": str(per_job)},
        _annotation_env(Env.JOBSET_NAME, "jobset.sigs.k8s.io/jobset-name"),
        _annotation_env(Env.REPLICATED_JOB_NAME, "jobset.sigs.k8s.io/replicatedjob-name"),
        _annotation_env(Env.JOB_INDEX, "jobset.sigs.k8s.io/job-index"),
    ]
    command = workload_command(ctx)
    if ctx.home.family == "torch" and n > 1:
        # torchrun: node 0 of the Indexed Job is the static rendezvous point (the JobSet's headless
        # service gives it a stable DNS name); each node runs one process per accelerator.
        nproc = max(place.chips, 1)
        command = torchrun_argv(ctx.kind, SPEC_FILE, nnodes=n, nproc_per_node=nproc,
                                node_rank=f"$({Env.JOB_COMPLETION_INDEX})", master_addr=f"{name}-{rjob}-0-0.{name}",
                                master_port=TORCH_MASTER_PORT)
    spec = pod_spec(ctx, [container(ctx, "workload", place, command=command, extra_env=env)], place)
    job_meta: dict[str, Any] = {}
    if place.tpu_hosts:
        job_meta = {"annotations": {EXCLUSIVE: NODEPOOL_KEY}}
    return [{
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(ctx, name, "workload", {EXCLUSIVE: NODEPOOL_KEY} if place.tpu_hosts else None),
        "spec": {
            "failurePolicy": {"maxRestarts": 0},
            "network": {"enableDNSHostnames": True},
            "replicatedJobs": [{
                "name": rjob,
                "replicas": replicas,
                "template": {
                    **({"metadata": job_meta} if job_meta else {}),
                    "spec": {
                        "parallelism": per_job,
                        "completions": per_job,
                        "completionMode": "Indexed",
                        "backoffLimit": 0,
                        "template": pod_template(ctx, "workload", spec),
                    },
                },
            }],
        },
    }]


def observe(obj: dict[str, Any] | None) -> ChildState:
    if not obj:
        return MISSING
    st = obj.get("status") or {}
    if is_true(obj, "Completed"):
        return ChildState("Succeeded", "Completed", finished_at=(condition(obj, "Completed") or {}).get("lastTransitionTime"))
    c = condition(obj, "Failed")
    if c and c.get("status") == "True":
        return ChildState("Failed", c.get("reason") or "JobSetFailed", c.get("message") or "", finished_at=c.get("lastTransitionTime"))
    if is_true(obj, "Suspended"):
        return ChildState("Pending", "Queued", "the JobSet is suspended (queued by Kueue)")
    if any((r.get("ready") or 0) > 0 for r in st.get("replicatedJobsStatus") or []):
        return ChildState("Running", "PodsRunning")
    return ChildState("Pending", "PodsPending", "waiting for the JobSet's pods")
