"""backend job: one batch Job, single node. Retries are the operator's (backoffLimit 0), so every
retry resumes from the latest published checkpoint instead of restarting in place."""

from __future__ import annotations

from typing import Any

from glassbox_api.conditions import Reason
from glassbox_api.podcontract import PERMANENT_EXIT_CODES

from ..context import Context
from .common import (
    MISSING, ChildState, RenderError, condition, container, is_true, metadata, placement, pod_spec,
    pod_template, workers, workload_name,
)

API_VERSION, KIND = "batch/v1", "Job"


def render(ctx: Context) -> list[dict[str, Any]]:
    completions = ctx.home.indexed_completions(ctx.spec, ctx.plan.stage) if workers(ctx) > 1 else None
    if workers(ctx) != 1 and completions is None:
        raise RenderError(Reason.UNSUPPORTED_TOPOLOGY, "backend job runs a single node: set workers to 1 or use ray or jobset")
    place = placement(ctx)
    if place.tpu_hosts > 1:
        raise RenderError(Reason.UNSUPPORTED_TOPOLOGY, f"a TPU slice of {place.tpu_hosts} hosts needs backend jobset")
    spec = pod_spec(ctx, [container(ctx, "workload", place)], place)
    job: dict[str, Any] = {"backoffLimit": 0, "podFailurePolicy": pod_failure_policy("workload"),
                           "template": pod_template(ctx, "workload", spec)}
    if completions is not None:
        # One independent item per index (JOB_COMPLETION_INDEX in the pod), `workers` pods at a time.
        # podFailurePolicy needs restartPolicy Never, which pod_template sets for every Job.
        job.update(completionMode="Indexed", completions=completions, parallelism=min(workers(ctx), completions))
    return [{
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(ctx, workload_name(ctx), "workload"),
        "spec": job,
    }]


def pod_failure_policy(container_name: str) -> dict[str, Any]:
    """Fail the Job at once, with reason PodFailurePolicy, when the workload exits with a permanent
    code (glassbox_api.podcontract): the operator then does not retry it."""
    codes = sorted(int(c) for c in PERMANENT_EXIT_CODES)
    return {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": container_name, "operator": "In", "values": codes}}]}


def observe(obj: dict[str, Any] | None) -> ChildState:
    if not obj:
        return MISSING
    st = obj.get("status") or {}
    if is_true(obj, "Complete"):
        return ChildState("Succeeded", "Completed", finished_at=st.get("completionTime") or (condition(obj, "Complete") or {}).get("lastTransitionTime"))
    for ctype in ("Failed", "FailureTarget"):
        c = condition(obj, ctype)
        if c and c.get("status") == "True":
            return ChildState("Failed", c.get("reason") or "JobFailed", c.get("message") or "", finished_at=c.get("lastTransitionTime"),
                              permanent=c.get("reason") == "PodFailurePolicy")
    if is_true(obj, "Suspended"):
        return ChildState("Pending", "Queued", "the Job is suspended (queued by Kueue)")
    if (st.get("ready") or 0) > 0:
        return ChildState("Running", "PodsRunning")
    return ChildState("Pending", "PodsPending", "waiting for the pod to be scheduled and start")
