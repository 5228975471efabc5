"""The operator runs with only the chart's ServiceAccount identity: the chart's RBAC (rendered by the
real helm, applied to the real apiserver) is enough to drive a PretrainRun (job backend) to
Succeeded and a ScorerService to Ready. The operator authenticates with a token of that
ServiceAccount (`kubectl create token`), so the apiserver's RBAC authorizer judges every call.

The negative control: the same chart with the batch/jobs rule removed leaves the PretrainRun
visibly stuck (condition ChildrenApplied=False reason Forbidden, a Warning event), so this test
would fail if the chart's RBAC were insufficient."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from conftest import Operator
from test_lifecycle import NOW, cond, events, patch_status, pretrain, wait_phase, example

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "glassbox"


def chart_rbac(cluster, release: str, release_ns: str, watch_ns: str) -> list[dict]:
    """The chart's ServiceAccount and RBAC objects for an operator scoped to watch_ns."""
    out = cluster.helm("template", release, str(CHART), "--namespace", release_ns, "--validate",
                       "--set", f"watchNamespaces={{{watch_ns}}}",
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


def start_as_chart_sa(cluster, s3, tmp_path: Path, drop_group: str | None = None) -> tuple[Operator, str]:
    suffix = uuid.uuid4().hex[:6]
    op_ns, watch_ns, release = f"gbop-{suffix}", f"gbw-{suffix}", f"imp-{suffix}"
    for ns in (op_ns, watch_ns):
        cluster.kubectl("create", "namespace", ns)
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.apply(f.read_text(), force_conflicts=True)
    docs = chart_rbac(cluster, release, op_ns, watch_ns)
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "Role", "RoleBinding"} <= kinds and "ClusterRoleBinding" in kinds
    if drop_group:
        for d in docs:
            if d["kind"] == "Role" and d["metadata"]["namespace"] == watch_ns:
                before = len(d["rules"])
                d["rules"] = [r for r in d["rules"] if drop_group not in r.get("apiGroups", [])]
                assert len(d["rules"]) == before - 1
    cluster.apply(docs)
    sa = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    kubeconfig = token_kubeconfig(cluster, sa, op_ns, tmp_path / "sa-kubeconfig.yaml")
    who = cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert who == f"system:serviceaccount:{op_ns}:{sa}"
    client = s3.client()
    if not client.bucket_exists("glassbox"):
        client.make_bucket("glassbox")
    op = Operator(cluster, s3, tmp_path, kubeconfig=kubeconfig, scope=["--namespace", watch_ns])
    op.start()
    return op, watch_ns


def test_chart_service_account_is_enough(cluster, s3, tmp_path):
    op, ns = start_as_chart_sa(cluster, s3, tmp_path)
    try:
        cluster.apply(pretrain("imp", ns, "job", 1, "h100"))
        d = example("scorer-gpu.yaml")
        d["metadata"] = {"name": "isc", "namespace": ns}
        d["spec"]["resources"].pop("priorityClassName", None)
        cluster.apply(d)
        wait_phase(cluster, "pretrainrun", "imp", ns, "Succeeded", timeout=90)
        assert ("Normal", "Succeeded") in events(cluster, ns, "imp")
        cluster.wait_for(lambda: cluster.get("inferenceservice", "isc", ns), what="InferenceService")
        patch_status(cluster, "inferenceservice", "isc", ns,
                     {"url": "http://isc.example.com", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}]})
        wait_phase(cluster, "scorerservice", "isc", ns, "Ready")
        for name, kind in (("imp", "pretrainrun"), ("isc", "scorerservice")):
            c = cond(cluster.get(kind, name, ns), "ChildrenApplied")
            assert c is None or c["status"] == "True", c
        log = op.log_tail()
        assert "Forbidden" not in log and "forbidden" not in log, log
    finally:
        op.kill()


def test_missing_rule_fails_visibly(cluster, s3, tmp_path):
    op, ns = start_as_chart_sa(cluster, s3, tmp_path, drop_group="batch")
    try:
        cluster.apply(pretrain("nojob", ns, "job", 1, "h100"))
        obj = cluster.wait_for(lambda: (o := cluster.get("pretrainrun", "nojob", ns)) and cond(o, "ChildrenApplied") and o,
                               timeout=60, what="ChildrenApplied condition")
        c = cond(obj, "ChildrenApplied")
        assert c["status"] == "False" and c["reason"] == "Forbidden" and "jobs" in c["message"], c
        assert obj["status"]["phase"] != "Succeeded"
        assert ("Warning", "ChildApplyFailed") in events(cluster, ns, "nojob")
        assert cluster.get("job", "nojob-a0", ns) is None
    finally:
        op.kill()
