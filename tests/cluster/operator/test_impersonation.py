"""The operator runs with only the chart's ServiceAccount identity, in both scopes the chart renders
(real helm, applied to the real apiserver): watchNamespaces set (a Role/RoleBinding per watched
namespace, `--namespace`) and empty (ClusterRole/ClusterRoleBinding, `--all-namespaces`). The
operator authenticates with a token of that ServiceAccount (`kubectl create token`), so the
apiserver's RBAC authorizer judges every call. With that alone it drives every backend to its end:
a PretrainRun on the job backend, one on ray (RayJob) and a ShardedFinetune on jobset (TPU JobSet)
to Succeeded, a ScorerService (InferenceService) to Ready; child status patched as KubeRay, JobSet
and KServe would.

The negative control, per scope, on the same operator: one rule taken out of the chart's role
leaves a new resource visibly stuck (ChildrenApplied=False reason Forbidden, a Warning event), and
putting the rule back unsticks it, so these tests fail if the chart's RBAC is insufficient. The
token is also asked (SelfSubjectAccessReview) about what it must not do: nothing broader is granted."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from conftest import Operator
from test_lifecycle import NOW, cond, events, example, patch_status, pretrain, tpu_finetune, wait_phase

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "glassbox"
SCOPES = ("namespaced", "cluster")


@dataclass
class Scope:
    name: str
    op: Operator
    ns: str  # where the test's resources live (watched)
    op_ns: str
    sa: str
    docs: list[dict]  # the chart's ServiceAccount and RBAC objects as applied
    kubeconfig: Path

    def workload_role(self) -> dict:
        kind = "ClusterRole" if self.name == "cluster" else "Role"
        return next(d for d in self.docs if d["kind"] == kind and not d["metadata"]["name"].endswith(("-leases", "-scanning")))


def chart_rbac(cluster, release: str, release_ns: str, watch_ns: str | None) -> list[dict]:
    """The chart's ServiceAccount and RBAC objects, rendered by helm for one scope."""
    scope = ["--set", f"watchNamespaces={{{watch_ns}}}"] if watch_ns else []
    # --validate checks ownership of what the chart would install: the kept peering CRDs of another
    # release (test_helm_install) would refuse; the standalone operator needs no peering.
    out = cluster.helm("template", release, str(CHART), "--namespace", release_ns, "--validate", *scope,
                       "--set", "peering.installCRDs=false",
                       "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml").stdout
    return [d for d in yaml.safe_load_all(out) if d]


def token_kubeconfig(cluster, sa: str, ns: str, path: Path) -> Path:
    """A kubeconfig whose only credential is a token of system:serviceaccount:ns:sa."""
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = admin["clusters"][0]["cluster"]
    token = cluster.kubectl("create", "token", sa, "-n", ns, "--duration", "2h").stdout.strip()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": server}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": sa, "namespace": ns}}],
    }))
    return path


@pytest.fixture(scope="module", params=SCOPES)
def scope(request, cluster, s3, tmp_path_factory) -> Iterator[Scope]:
    """One operator per scope, shared by that scope's tests, running as the chart's ServiceAccount."""
    name, tmp = request.param, tmp_path_factory.mktemp(f"imp-{request.param}")
    suffix = uuid.uuid4().hex[:6]
    op_ns, ns, release = f"gbop-{suffix}", f"gbw-{suffix}", f"imp-{suffix}"
    for n in (op_ns, ns):
        cluster.kubectl("create", "namespace", n)
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.apply(f.read_text(), force_conflicts=True)
    docs = chart_rbac(cluster, release, op_ns, ns if name == "namespaced" else None)
    kinds = Counter((d["kind"], d["metadata"].get("namespace")) for d in docs)
    workload = [("Role", ns), ("RoleBinding", ns)] if name == "namespaced" else [("ClusterRole", None), ("ClusterRoleBinding", None)]
    leases_and_discovery = [("ServiceAccount", op_ns), ("Role", op_ns), ("RoleBinding", op_ns), ("ClusterRole", None), ("ClusterRoleBinding", None)]
    assert kinds == Counter(workload + leases_and_discovery), kinds
    for d in docs:  # no wildcards anywhere, no non-resource URLs
        for rule in d.get("rules", []):
            assert "nonResourceURLs" not in rule and not any("*" in v for f in ("apiGroups", "resources", "verbs") for v in rule[f]), rule
    cluster.apply(docs)
    sa = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    kubeconfig = token_kubeconfig(cluster, sa, op_ns, tmp / "sa-kubeconfig.yaml")
    who = cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert who == f"system:serviceaccount:{op_ns}:{sa}"
    client = s3.client()
    if not client.bucket_exists("glassbox"):
        client.make_bucket("glassbox")
    op = Operator(cluster, s3, tmp, kubeconfig=kubeconfig,
                  scope=["--namespace", ns] if name == "namespaced" else ["--all-namespaces"])
    op.start()
    try:
        yield Scope(name, op, ns, op_ns, sa, docs, kubeconfig)
    finally:
        op.kill()
        for d in docs:
            if "namespace" not in d["metadata"]:
                cluster.delete(d["kind"].lower(), d["metadata"]["name"])
        cluster.delete("namespace", ns, op_ns)


def rbac_denials(op: Operator, sa_user: str) -> str:
    """RBAC refusals of this identity in the operator's log (other refusals, e.g. a namespace
    being deleted by another test while a cluster-wide operator sees it, do not count)."""
    return "\n".join(line for line in op.log_tail().splitlines() if re.search(rf'User "{re.escape(sa_user)}" cannot', line))


def test_chart_service_account_drives_every_backend(cluster, scope):
    ns = scope.ns
    cluster.apply(pretrain("imp-job", ns, "job", 1, "h100"))
    cluster.apply(pretrain("imp-ray", ns, "ray", 2, "h100"))
    cluster.apply(tpu_finetune("imp-js", ns))
    sc = example("scorer-gpu.yaml")
    sc["metadata"] = {"name": "imp-sc", "namespace": ns}
    sc["spec"]["resources"].pop("priorityClassName", None)
    cluster.apply(sc)
    # Reading pods and events (PodsScheduled): a pod no node can take, a Job whose pods cannot be created.
    big = pretrain("imp-big", ns, "job", 1, None)
    big["spec"]["resources"]["cpu"] = "500"
    cluster.apply(big)
    npc = pretrain("imp-npc", ns, "job", 1, None)
    npc["spec"]["resources"]["priorityClassName"] = f"no-such-class-{scope.name}"
    cluster.apply(npc)

    cluster.wait_for(lambda: cluster.get("rayjob", "imp-ray-a0", ns), what="RayJob")
    patch_status(cluster, "rayjob", "imp-ray-a0", ns, {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"})
    wait_phase(cluster, "pretrainrun", "imp-ray", ns, "Running")
    patch_status(cluster, "rayjob", "imp-ray-a0", ns, {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete", "endTime": NOW})
    cluster.wait_for(lambda: cluster.get("jobset", "imp-js-a0", ns), what="JobSet")
    patch_status(cluster, "jobset", "imp-js-a0", ns,
                 {"conditions": [{"type": "Completed", "status": "True", "reason": "AllJobsCompleted", "message": "done", "lastTransitionTime": NOW}]})
    cluster.wait_for(lambda: cluster.get("inferenceservice", "imp-sc", ns), what="InferenceService")
    patch_status(cluster, "inferenceservice", "imp-sc", ns,
                 {"url": "http://imp-sc.example.com", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}]})

    ends = (("pretrainrun", "imp-job", "Succeeded"), ("pretrainrun", "imp-ray", "Succeeded"),
            ("shardedfinetune", "imp-js", "Succeeded"), ("scorerservice", "imp-sc", "Ready"))
    for kind, name, want in ends:
        wait_phase(cluster, kind, name, ns, want, timeout=90)
        c = cond(cluster.get(kind, name, ns), "ChildrenApplied")
        assert c is None or c["status"] == "True", (name, c)
        if want == "Succeeded":
            assert ("Normal", "Succeeded") in events(cluster, ns, name), (name, events(cluster, ns, name))
    for name, reason in (("imp-big", "Unschedulable"), ("imp-npc", "FailedCreate")):
        c = cluster.wait_for(lambda: (c := cond(cluster.get("pretrainrun", name, ns), "PodsScheduled")) and c["status"] == "False" and c,
                             timeout=60, what=f"{name} PodsScheduled=False")
        assert c["reason"] == reason, c
    assert rbac_denials(scope.op, f"system:serviceaccount:{scope.op_ns}:{scope.sa}") == ""


@contextmanager
def without_rule(cluster, scope: Scope, group: str) -> Iterator[str]:
    """The chart's workload role minus the rule of one API group, while inside; the chart's own after."""
    role = scope.workload_role()
    cut = copy.deepcopy(role)
    cut["rules"] = [r for r in role["rules"] if group not in r["apiGroups"]]
    assert len(cut["rules"]) == len(role["rules"]) - 1
    (resource,) = next(r for r in role["rules"] if group in r["apiGroups"])["resources"]
    cluster.apply(cut)  # rules is an atomic list: server-side apply replaces it
    try:
        yield resource
    finally:
        cluster.apply(role)


def test_missing_rule_fails_visibly_then_recovers(cluster, scope):
    # One rule per scope: the job backend's under the namespaced Role, the jobset backend's under
    # the ClusterRole.
    group = {"namespaced": "batch", "cluster": "jobset.x-k8s.io"}[scope.name]
    ns, name = scope.ns, f"no-{scope.name}"
    if group == "batch":
        d, kind, child = pretrain(name, ns, "job", 1, "h100"), "pretrainrun", "job"
    else:
        d, kind, child = tpu_finetune(name, ns, workers=4), "shardedfinetune", "jobset"
    with without_rule(cluster, scope, group) as resource:
        cluster.wait_for(lambda: not ssar(cluster, scope, [("create", group, resource, ns)])[0], timeout=10, what="rule gone")
        cluster.apply(d)
        obj = cluster.wait_for(lambda: (o := cluster.get(kind, name, ns)) and cond(o, "ChildrenApplied") and o,
                               timeout=60, what="ChildrenApplied condition")
        c = cond(obj, "ChildrenApplied")
        assert c["status"] == "False" and c["reason"] == "Forbidden" and resource in c["message"], c
        assert obj["status"]["phase"] != "Succeeded"
        assert ("Warning", "ChildApplyFailed") in events(cluster, ns, name)
        assert cluster.get(child, f"{name}-a0", ns) is None
        # the log check of the positive test sees such a refusal
        assert resource in rbac_denials(scope.op, f"system:serviceaccount:{scope.op_ns}:{scope.sa}")
    # Only that rule was missing: with the chart's role back the same resource gets its child.
    cluster.wait_for(lambda: cluster.get(child, f"{name}-a0", ns), timeout=60, what=f"{child} once the rule is back")
    cluster.wait_for(lambda: cond(cluster.get(kind, name, ns), "ChildrenApplied")["status"] == "True", timeout=30,
                     what="ChildrenApplied=True")


def ssar(cluster, scope: Scope, checks: list[tuple[str, str, str, str | None]]) -> list[bool]:
    """Ask the apiserver, as the token, whether it may (verb, group, resource[/sub], namespace|None=all)."""
    reviews = []
    for verb, group, resource, ns in checks:
        res, _, sub = resource.partition("/")
        attrs = {"verb": verb, "group": group, "resource": res, **({"subresource": sub} if sub else {}),
                 **({"namespace": ns} if ns else {})}
        reviews.append({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": attrs}})
    out = cluster.kubectl("--kubeconfig", str(scope.kubeconfig), "create", "-f", "-", "-o", "json",
                          input=yaml.safe_dump_all(reviews)).stdout
    items, pos, dec = [], 0, json.JSONDecoder()
    while out[pos:].strip():  # kubectl prints one JSON object per review
        item, pos = dec.raw_decode(out, len(out) - len(out[pos:].lstrip()))
        items.append(item)
    assert len(items) == len(checks)
    return [bool(i["status"].get("allowed")) for i in items]


def test_token_is_granted_nothing_broader(cluster, scope):
    ns, other = scope.ns, "default"
    allowed = [("create", "batch", "jobs", ns), ("create", "ray.io", "rayjobs", ns), ("create", "jobset.x-k8s.io", "jobsets", ns),
               ("patch", "glassbox.dev", "pretrainruns/status", ns), ("create", "", "serviceaccounts", ns),
               ("watch", "", "pods", ns), ("watch", "", "events", ns), ("patch", "batch", "jobs", ns), ("get", "ray.io", "rayjobs", ns)]
    denied = [
        ("get", "", "secrets", ns), ("list", "", "secrets", None), ("create", "", "secrets", None), ("delete", "", "secrets", None),
        ("create", "", "pods", ns), ("delete", "", "pods", ns), ("create", "", "pods/exec", ns), ("create", "", "pods/attach", ns),
        ("create", "", "pods/portforward", ns), ("create", "", "serviceaccounts/token", ns),
        ("create", "glassbox.dev", "pretrainruns", ns), ("delete", "glassbox.dev", "shardedfinetunes", ns),
        ("create", "apps", "deployments", ns), ("create", "rbac.authorization.k8s.io", "roles", ns),
        ("bind", "rbac.authorization.k8s.io", "clusterroles", None), ("escalate", "rbac.authorization.k8s.io", "clusterroles", None),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None), ("impersonate", "", "users", None),
        ("impersonate", "", "serviceaccounts", None), ("create", "apiextensions.k8s.io", "customresourcedefinitions", None),
        ("patch", "", "nodes", None), ("delete", "", "namespaces", None), ("create", "ray.io", "rayclusters", ns),
        # children are applied and read by name: never listed, watched or updated
        ("list", "batch", "jobs", ns), ("watch", "ray.io", "rayjobs", ns), ("update", "jobset.x-k8s.io", "jobsets", ns),
        ("list", "", "configmaps", ns), ("update", "serving.kserve.io", "inferenceservices", ns), ("get", "", "pods", ns),
        ("*", "*", "*", ns), ("*", "*", "*", None), ("get", "*", "*", None),
    ]
    if scope.name == "namespaced":  # confined to the watched namespace
        denied += [("create", "batch", "jobs", other), ("list", "glassbox.dev", "pretrainruns", None), ("list", "", "pods", None)]
    else:  # the same rules in every namespace, nothing more
        allowed += [("create", "batch", "jobs", other), ("list", "glassbox.dev", "pretrainruns", None)]
    answers = ssar(cluster, scope, allowed + denied)
    assert answers[:len(allowed)] == [True] * len(allowed), list(zip(allowed, answers))
    granted = [c for c, a in zip(denied, answers[len(allowed):]) if a]
    assert granted == [], granted
