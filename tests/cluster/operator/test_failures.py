"""Failure paths on the real control plane, with an operator of their own (namespaced) whose
configuration puts `glassbox.dev/kwok-exit: "1"` on every workload pod (defaults.podAnnotations),
so KWOK fails each Job's pod with exit code 1 (a transient failure): the Job fails
(BackoffLimitExceeded), the operator retries with a fresh attempt, then gives up with
RetriesExhausted. A second operator's pods exit with code 4 (bad input, permanent): the Job fails by
its pod failure policy and the resource is Stalled at once, never retried. And an unreadable store."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from glassbox_api.podcontract import ExitCode

from conftest import exiting_operator
from test_lifecycle import cond, events, example, patch_status, pretrain, wait_phase


@pytest.fixture(scope="module")
def failing(cluster, s3, tmp_path_factory):
    with exiting_operator(cluster, s3, tmp_path_factory, "opf", "1") as (op, ns):
        yield op, ns


@pytest.fixture(scope="module")
def bad_input(cluster, s3, tmp_path_factory):
    with exiting_operator(cluster, s3, tmp_path_factory, "opp", str(int(ExitCode.BAD_INPUT))) as (op, ns):
        yield op, ns


def test_a_permanent_exit_code_stalls_at_once_without_a_retry(cluster, failing, bad_input):
    """Exit code 4 (bad input: a data source that does not exist...) fails the Job through its pod
    failure policy; the resource is Failed and Stalled on the first attempt though retries are
    left, with no Retrying event, no second Job, and no ERROR line in the operator's log."""
    op, ns = bad_input
    cluster.apply(pretrain("pf", ns, "job", 1, None, retries=3))
    wait_phase(cluster, "pretrainrun", "pf", ns, "Failed", timeout=90)
    obj = cluster.get("pretrainrun", "pf", ns)
    assert cond(obj, "Failed")["reason"] == "PermanentFailure" and cond(obj, "Stalled")["status"] == "True", obj["status"]
    assert obj["status"]["retries"] == 0 and "code 4" in obj["status"]["message"]
    job = cluster.get("job", "pf-a0", ns)
    assert any(c["type"] == "Failed" and c["reason"] == "PodFailurePolicy" for c in job["status"]["conditions"]), job["status"]
    assert cluster.get("job", "pf-a1", ns) is None
    ev = events(cluster, ns, "pf")
    assert ("Warning", "PermanentFailure") in ev and ("Warning", "Retrying") not in ev, ev
    log = (op.workdir / f"operator-{op.starts}.log").read_text(errors="replace")
    # (a watch retry while a new CRD's storage initializes is Kopf's own ERROR line, not ours)
    assert [line for line in log.splitlines() if "ERROR" in line and "failed temporarily" in line] == [], log[-2000:]


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
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_unreadable_store_is_a_condition_not_a_crash(cluster, failing):
    """A resource whose store endpoint answers nothing: the pass still writes status (the Job
    runs; progress unknown) and says the manifest cannot be read, and the operator keeps serving."""
    op, ns = failing
    d = pretrain("us", ns, "job", 1, None)
    # Another endpoint than the configured one needs its own Secret (else EndpointNeedsCredentials).
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dead-store", "namespace": ns},
                   "stringData": {"AWS_ACCESS_KEY_ID": "dead", "AWS_SECRET_ACCESS_KEY": "dead-secret"}})
    d["spec"]["storage"] = {"endpoint": "http://127.0.0.1:9", "secretRef": {"name": "dead-store"}}
    cluster.apply(d)
    obj = cluster.wait_for(lambda: (o := cluster.get("pretrainrun", "us", ns)) and cond(o, "StoreReadable") and o,
                           timeout=60, what="StoreReadable condition")
    c = cond(obj, "StoreReadable")
    assert c["status"] == "False" and c["reason"] == "ManifestUnreadable", c
    assert op.proc.poll() is None
    cluster.apply(pretrain("ok", ns, "job", 1, None, retries=0))
    cluster.wait_for(lambda: cluster.get("job", "ok-a0", ns), what="the operator still reconciles others")


# ---- KGHarvest and MetricEval: every attempt fails; retries back off exponentially ---------------
HOLD = "glassbox.dev/test-hold"
"""A finalizer the test puts on each attempt's Job, so the retried (deleted) attempts stay readable."""


def ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_retries(d: dict, name: str, ns: str, retries: int, backoff: int) -> dict:
    d["metadata"] = {"name": name, "namespace": ns}
    d["spec"]["storage"] = {}
    d["spec"]["failurePolicy"] = {"maxRetries": retries, "backoffSeconds": backoff}
    return d


def assert_failed_after_retries(cluster, ns: str, kind: str, short: str, name: str, retries: int, child_reason: str,
                                progress: tuple[str, ...] = ()) -> None:
    """Failed with RetriesExhausted (the child's reason in the message), Warning events for each
    failed attempt (with the doubling delay) and for the end, and a `kubectl get` row that says so."""
    obj = cluster.get(kind, name, ns)
    c = cond(obj, "Failed")
    assert c["status"] == "True" and c["reason"] == "RetriesExhausted" and child_reason in c["message"], c
    assert cond(obj, "Progressing")["status"] == "False" and cond(obj, "Progressing")["reason"] == "RetriesExhausted"
    assert obj["status"]["retries"] == retries and obj["status"]["completionTime"]
    items = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    ev = [(e["type"], e["reason"], e["message"]) for e in items]
    warned = {r for t, r, _ in ev if t == "Warning"}
    assert {"AttemptFailed", "Retrying", "RetriesExhausted"} <= warned, ev
    delays = sorted(m for t, r, m in ev if r == "AttemptFailed")
    assert [m.split("retrying in ")[-1] for m in delays] == [f"{2 * 2 ** i}s" for i in range(retries)], delays
    rows = cluster.kubectl("get", short, name, "-n", ns, "-o", "wide").stdout.splitlines()
    assert rows[1].split()[:2] == [name, "Failed"], rows
    assert f"({retries} of {retries} retries used)" in rows[1] and child_reason in rows[1], rows
    row = cluster.kubectl("get", short, name, "-n", ns).stdout.splitlines()[1].split()
    # progress column: nothing done, so only what the spec fixes (0 of a KGHarvest's relations requested)
    assert row[:2] == [name, "Failed"] and row[2:-1] == list(progress), row
    listed = cluster.kubectl("get", "glassbox", "-n", ns).stdout
    assert any(line.split()[0].endswith(f"/{name}") and "Failed" in line for line in listed.splitlines()[1:]), listed


def test_metriceval_retry_backoff_on_kwok_exits_not_the_program(cluster, failing):
    """The operator's retries for a MetricEval, whose program does not exist yet (no evaluation
    runs): each attempt's Job fails (KWOK exits the pod with 3, backoffLimit 0): attempt n+1 is
    created no sooner than 2 * 2**n seconds after attempt n failed, and after 2 retries the run is
    Failed."""
    op, ns = failing
    d = with_retries(example("metriceval-gpu.yaml"), "mef", ns, retries=2, backoff=2)
    d["spec"]["resources"] = {"backend": "job", "workers": 1, "cpu": "1", "memory": "1Gi"}
    cluster.apply(d)
    held = []
    try:
        for a in range(3):
            cluster.wait_for(lambda: cluster.get("job", f"mef-a{a}", ns), timeout=60, what=f"Job mef-a{a}")
            cluster.kubectl("patch", "job", f"mef-a{a}", "-n", ns, "--type=merge", "-p", json.dumps({"metadata": {"finalizers": [HOLD]}}))
            held.append(f"mef-a{a}")
        wait_phase(cluster, "metriceval", "mef", ns, "Failed", timeout=60)
        jobs = [cluster.get("job", f"mef-a{a}", ns) for a in range(3)]
        for a in (0, 1):
            assert jobs[a]["metadata"].get("deletionTimestamp"), f"failed attempt a{a} was not removed"
            failed_at = min(ts(c["lastTransitionTime"]) for c in jobs[a]["status"]["conditions"]
                            if c["type"] in ("Failed", "FailureTarget") and c["status"] == "True")
            gap = (ts(jobs[a + 1]["metadata"]["creationTimestamp"]) - failed_at).total_seconds()
            assert 2 * 2 ** a <= gap <= 2 * 2 ** a + 20, (a, gap)
        assert_failed_after_retries(cluster, ns, "metriceval", "meval", "mef", 2, "BackoffLimitExceeded")
    finally:
        for j in held:
            cluster.kubectl("patch", "job", j, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)


def test_kgharvest_retry_backoff_on_patched_jobset_status_not_the_program(cluster, failing):
    """The operator's retries for a KGHarvest, whose program does not exist yet (no harvesting
    runs): each attempt's JobSet reports Failed as JobSet's controller would (status patched):
    attempt n+1 appears no sooner than 2 * 2**n seconds after that failure, the failed one is
    removed, then Failed."""
    op, ns = failing
    d = with_retries(example("kgharvest-gpu.yaml"), "kgf", ns, retries=2, backoff=2)
    d["spec"]["resources"] = {"backend": "jobset", "workers": 2, "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    cluster.apply(d)
    for a in range(3):
        cluster.wait_for(lambda: cluster.get("jobset", f"kgf-a{a}", ns), timeout=60, what=f"JobSet kgf-a{a}")
        failed_at = now_iso()
        failed = {"conditions": [{"type": "Failed", "status": "True", "reason": "FailedJobs",
                                  "message": f"jobset kgf-a{a} failed", "lastTransitionTime": failed_at}]}
        patch_status(cluster, "jobset", f"kgf-a{a}", ns, failed)
        if a < 2:
            nxt = cluster.wait_for(lambda: cluster.get("jobset", f"kgf-a{a + 1}", ns), timeout=60, what=f"JobSet kgf-a{a + 1}")
            gap = (ts(nxt["metadata"]["creationTimestamp"]) - ts(failed_at)).total_seconds()
            assert 2 * 2 ** a <= gap <= 2 * 2 ** a + 20, (a, gap)
            cluster.wait_for(lambda: cluster.get("jobset", f"kgf-a{a}", ns) is None, what=f"failed attempt kgf-a{a} removed")
    wait_phase(cluster, "kgharvest", "kgf", ns, "Failed", timeout=60)
    assert_failed_after_retries(cluster, ns, "kgharvest", "kgh", "kgf", 2, "FailedJobs", progress=("0/3",))
    assert cluster.get("kgharvest", "kgf", ns)["status"]["progress"] == {"relationsTotal": 3, "done": "0/3"}
