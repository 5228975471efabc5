"""Failure paths on the real control plane, with an operator of their own (namespaced) whose
configuration puts `glassbox.dev/kwok-exit: "3"` on every workload pod (defaults.podAnnotations),
so KWOK fails each Job's pod with exit code 3: the Job fails (BackoffLimitExceeded), the operator
retries with a fresh attempt, then gives up with RetriesExhausted. And an unreadable store."""

from __future__ import annotations

import uuid

import pytest

from conftest import ROOT, Operator
from test_lifecycle import cond, events, pretrain, wait_phase


@pytest.fixture(scope="module")
def failing(cluster, s3, tmp_path_factory):
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.apply(f.read_text(), force_conflicts=True)
    ns = f"opf-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    client = s3.client()
    if not client.bucket_exists("glassbox"):
        client.make_bucket("glassbox")
    op = Operator(cluster, s3, tmp_path_factory.mktemp("failing-operator"), scope=["--namespace", ns],
                  defaults={"podAnnotations": {"glassbox.dev/kwok-exit": "3"}})
    op.start()
    yield op, ns
    op.kill()
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_failing_job_is_retried_then_retries_exhausted(cluster, failing):
    op, ns = failing
    cluster.apply(pretrain("fj", ns, "job", 1, None, retries=1))
    cluster.wait_for(lambda: cluster.get("job", "fj-a1", ns), timeout=60, what="retry attempt a1")
    wait_phase(cluster, "pretrainrun", "fj", ns, "Failed", timeout=90)
    obj = cluster.get("pretrainrun", "fj", ns)
    c = cond(obj, "Failed")
    assert c["reason"] == "RetriesExhausted" and "BackoffLimitExceeded" in c["message"], c
    assert obj["status"]["retries"] == 1
    ev = events(cluster, ns, "fj")
    assert ("Warning", "Retrying") in ev and ("Warning", "RetriesExhausted") in ev
    pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l", "batch.kubernetes.io/job-name=fj-a1")["items"]
    assert pods and pods[0]["status"]["phase"] == "Failed"
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


def test_unreadable_store_is_a_condition_not_a_crash(cluster, failing):
    """A resource whose store endpoint answers nothing: the pass still writes status (the Job
    runs; progress unknown) and says the manifest cannot be read, and the operator keeps serving."""
    op, ns = failing
    d = pretrain("us", ns, "job", 1, None)
    d["spec"]["storage"] = {"endpoint": "http://127.0.0.1:9"}
    cluster.apply(d)
    obj = cluster.wait_for(lambda: (o := cluster.get("pretrainrun", "us", ns)) and cond(o, "StoreReadable") and o,
                           timeout=60, what="StoreReadable condition")
    c = cond(obj, "StoreReadable")
    assert c["status"] == "False" and c["reason"] == "ManifestUnreadable", c
    assert op.proc.poll() is None
    cluster.apply(pretrain("ok", ns, "job", 1, None, retries=0))
    cluster.wait_for(lambda: cluster.get("job", "ok-a0", ns), what="the operator still reconciles others")
