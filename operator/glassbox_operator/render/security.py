"""What every workload pod gets so that a namespace enforcing the `restricted` Pod Security Standard
admits it: a fixed non-root uid, no privilege escalation, no capabilities, seccomp RuntimeDefault, no
ServiceAccount token, and writable scratch (/tmp, HOME, caches, the checkpoint staging dir) as an
emptyDir. Settings from the operator's config (security.workloadPods); pure functions of it.

No backend needs a token: the workloads talk only to their artifact store, and a KubeRay head calls
the Kubernetes API only when Ray's autoscaler runs, which glassbox never turns on (fixed workers)."""

from __future__ import annotations

from typing import Any, Optional

from ..config import WorkloadPodSecurity
from ..context import Context

SCRATCH_VOLUME = "scratch"
SCRATCH_MOUNT = "/tmp"
"""The emptyDir every workload container writes to: the temp dir (checkpoint staging, Ray's
session dir), and HOME with the caches under it."""
SCRATCH_ENV = ({"name": "HOME", "value": SCRATCH_MOUNT}, {"name": "XDG_CACHE_HOME", "value": f"{SCRATCH_MOUNT}/.cache"})


def settings(ctx: Context) -> WorkloadPodSecurity:
    return ctx.config.security.workload_pods


def pod_security_context(ctx: Context) -> Optional[dict[str, Any]]:
    """The pod-level securityContext (None when the configuration turns the restricted settings off)."""
    s = settings(ctx)
    if not s.restricted:
        return None
    out: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": s.run_as_user,
        "runAsGroup": s.run_as_group,
        "seccompProfile": {"type": s.seccomp_profile},
    }
    if s.fs_group is not None:
        out["fsGroup"] = s.fs_group
    return out


def container_security_context(ctx: Context) -> Optional[dict[str, Any]]:
    """The container-level securityContext. Repeats the uid and seccomp profile of the pod: KubeRay
    copies a Ray container's context (not the pod's) into the init containers it adds."""
    s = settings(ctx)
    if not s.restricted:
        return None
    return {
        "runAsNonRoot": True,
        "runAsUser": s.run_as_user,
        "runAsGroup": s.run_as_group,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": s.seccomp_profile},
    }


def scratch_volume(ctx: Context) -> dict[str, Any]:
    empty: dict[str, Any] = {}
    if settings(ctx).scratch_size_limit:
        empty["sizeLimit"] = settings(ctx).scratch_size_limit
    return {"name": SCRATCH_VOLUME, "emptyDir": empty}


def scratch_mount() -> dict[str, Any]:
    return {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_MOUNT}


def harden_container(ctx: Context, c: dict[str, Any]) -> dict[str, Any]:
    """A container with the security context, the scratch mount and HOME on it (in place)."""
    sc = container_security_context(ctx)
    if sc:
        c["securityContext"] = sc
    c["volumeMounts"] = [*c.get("volumeMounts", []), scratch_mount()]
    names = {e["name"] for e in c.get("env", [])}
    c["env"] = [*c.get("env", []), *(dict(e) for e in SCRATCH_ENV if e["name"] not in names)]
    return c


def harden_pod(ctx: Context, spec: dict[str, Any]) -> dict[str, Any]:
    """A pod spec with the pod security context, the token setting and the scratch volume (in place)."""
    sc = pod_security_context(ctx)
    if sc:
        spec["securityContext"] = sc
    spec["automountServiceAccountToken"] = settings(ctx).automount_service_account_token
    spec["volumes"] = [*spec.get("volumes", []), scratch_volume(ctx)]
    return spec
