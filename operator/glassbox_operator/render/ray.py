"""backend ray: a KubeRay RayJob. The head runs on CPU nodes and submits the entrypoint; the worker
group runs on the accelerator pool; the cluster is shut down when the job ends."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

from ..context import Context
from . import security
from .common import (
    MISSING, ChildState, container, image, metadata, placement, pod_spec, pod_template, workers,
    workload_command, workload_name,
)

API_VERSION, KIND = "ray.io/v1", "RayJob"
TTL_AFTER_FINISHED = 300  # seconds KubeRay keeps the finished RayCluster for log reading


# Ray's health endpoints, as KubeRay's own probes use them: the dashboard agent's view of the local
# raylet (every node) and the dashboard's view of the GCS (the head). KubeRay's default probes run
# `wget ... | grep success` inside the Ray container, which the glassbox images (no wget) cannot; the
# kubelet makes an httpGet probe itself, and KubeRay keeps the probes a template sets.
RAYLET_HEALTH = {"port": 52365, "path": "/api/local_raylet_healthz"}
GCS_HEALTH = {"port": 8265, "path": "/api/gcs_healthz"}


def ray_probes(head: bool) -> dict[str, Any]:
    """Readiness and liveness with KubeRay v1.5's timings (a longer timeout on the head)."""
    timeout = 5 if head else 2
    return {
        "readinessProbe": {"httpGet": dict(GCS_HEALTH if head else RAYLET_HEALTH), "initialDelaySeconds": 10,
                           "periodSeconds": 5, "timeoutSeconds": timeout, "failureThreshold": 10},
        "livenessProbe": {"httpGet": dict(RAYLET_HEALTH), "initialDelaySeconds": 30,
                          "periodSeconds": 5, "timeoutSeconds": timeout, "failureThreshold": 120},
    }


def _ray_pod(ctx: Context, name: str, place: Any, *, head: bool) -> dict[str, Any]:
    # KubeRay supplies the `ray start` command; the container keeps image, env, resources, mounts, probes.
    c = container(ctx, name, place, command=None)
    del c["command"]
    c.update(ray_probes(head))
    return pod_template(ctx, "workload", pod_spec(ctx, [c], place, restart=None))


def _submitter_pod(ctx: Context, place: Any) -> dict[str, Any]:
    """The pod of the Job that KubeRay starts to run `ray job submit` (K8sJobMode): KubeRay's own
    default has no security context, which a restricted namespace refuses. KubeRay fills in the
    command; the container needs no store access, so no store environment."""
    c = security.harden_container(ctx, {
        "name": "ray-job-submitter",
        "image": image(ctx),
        "resources": {"requests": {"cpu": "500m", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    })
    spec = security.harden_pod(ctx, {"containers": [c], "restartPolicy": "Never"})
    if place.node_selector:
        spec["nodeSelector"] = dict(place.node_selector)
    if place.tolerations:
        spec["tolerations"] = list(place.tolerations)
    return pod_template(ctx, "submitter", spec)


def render(ctx: Context) -> list[dict[str, Any]]:
    n = workers(ctx)
    # The head runs the driver only: sized by the operator's config, not like a worker.
    size = ctx.config.defaults.ray_head
    head = replace(placement(ctx, use_accelerator=False), requests={"cpu": str(size.cpu), "memory": str(size.memory)},
                   limits={"memory": str(size.memory)})
    worker = placement(ctx)
    start_worker = {"num-gpus": str(worker.chips)} if worker.chips and "nvidia.com/gpu" in worker.limits else {}
    return [{
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(ctx, workload_name(ctx), "workload"),
        "spec": {
            "entrypoint": shlex.join(workload_command(ctx)),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "submitterPodTemplate": _submitter_pod(ctx, head),
            "rayClusterSpec": {
                # num-cpus 0: no task or actor of the run (a Ray Train worker) lands on the head, which
                # is sized for the driver alone (a training worker there was OOM-killed by Ray's
                # memory monitor on the real test node).
                "headGroupSpec": {"rayStartParams": {"num-cpus": "0", "num-gpus": "0"},
                                  "template": _ray_pod(ctx, "ray-head", head, head=True)},
                "workerGroupSpecs": [{
                    "groupName": "workers",
                    "replicas": n,
                    "minReplicas": n,
                    "maxReplicas": n,
                    "rayStartParams": start_worker,
                    "template": _ray_pod(ctx, "ray-worker", worker, head=False),
                }],
            },
        },
    }]


def observe(obj: dict[str, Any] | None) -> ChildState:
    if not obj:
        return MISSING
    st = obj.get("status") or {}
    job, deploy = st.get("jobStatus") or "", st.get("jobDeploymentStatus") or ""
    if job == "SUCCEEDED" or (deploy == "Complete" and job not in ("FAILED", "STOPPED")):
        return ChildState("Succeeded", "Completed", finished_at=st.get("endTime"))
    if job in ("FAILED", "STOPPED") or deploy == "Failed":
        return ChildState("Failed", st.get("reason") or "RayJobFailed", st.get("message") or f"ray job {job.lower() or 'failed'}", finished_at=st.get("endTime"))
    if job == "RUNNING" or deploy == "Running":
        return ChildState("Running", "RayJobRunning")
    if deploy == "Suspended":
        return ChildState("Pending", "Queued", "the RayJob is suspended (queued by Kueue)")
    return ChildState("Pending", "RayClusterStarting", "waiting for the Ray cluster")
