"""The `restricted` Pod Security Standard as a checklist (the policy's published controls, the
ones a pod template can break), and every pod template inside a rendered child.

Used by the unit tables (tests/unit/operator/test_security.py) and by the cluster test, where the
real apiserver's PodSecurity admission is the judge; the two must agree."""

from __future__ import annotations

from typing import Any, Iterator

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def pod_templates(child: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod template) for each pod template of a Job, JobSet, RayJob or InferenceService."""
    kind, spec = child["kind"], child.get("spec") or {}
    name = child["metadata"]["name"]
    if kind == "Job":
        yield f"Job/{name}", spec["template"]
    elif kind == "JobSet":
        for rj in spec["replicatedJobs"]:
            yield f"JobSet/{name}/{rj['name']}", rj["template"]["spec"]["template"]
    elif kind == "RayJob":
        cluster = spec["rayClusterSpec"]
        yield f"RayJob/{name}/head", cluster["headGroupSpec"]["template"]
        for g in cluster.get("workerGroupSpecs", []):
            yield f"RayJob/{name}/{g['groupName']}", g["template"]
        if "submitterPodTemplate" in spec:
            yield f"RayJob/{name}/submitter", spec["submitterPodTemplate"]
    elif kind == "InferenceService":
        pred = {k: v for k, v in spec["predictor"].items() if k not in ("minReplicas", "maxReplicas", "labels")}
        yield f"InferenceService/{name}/predictor", {"metadata": {"labels": spec["predictor"].get("labels", {})}, "spec": pred}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What keeps this pod spec out of a namespace enforcing `restricted` (empty: admitted)."""
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            out.append(f"{host} is set")
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            out.append(f"volume {v['name']} of type {sorted(kinds)}")
    if (psc.get("seccompProfile") or {}).get("type") not in ALLOWED_SECCOMP | {None}:
        out.append("pod seccompProfile is not RuntimeDefault/Localhost")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser is 0")
    for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        sc = c.get("securityContext") or {}
        n = c["name"]
        if sc.get("privileged"):
            out.append(f"{n}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{n}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{n}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{n}: capabilities add {caps['add']}")
        if not (sc.get("runAsNonRoot") if "runAsNonRoot" in sc else psc.get("runAsNonRoot")):
            out.append(f"{n}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            out.append(f"{n}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ALLOWED_SECCOMP:
            out.append(f"{n}: seccompProfile {seccomp} (needs RuntimeDefault or Localhost)")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            out.append(f"{n}: hostPort")
    return out
