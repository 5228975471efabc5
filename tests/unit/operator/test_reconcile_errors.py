"""Reconcile error paths without a cluster: an apiserver refusal, an unreadable store and pods
that cannot be created or placed become conditions and events, never exceptions."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional

import pytest
from kubernetes.client.exceptions import ApiException

from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.observed import MemoryView
from glassbox_operator.reconcile import Reconciler
from glassbox_api.store import RetryPolicy

from opkit import UID, config, example

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeKube:
    def __init__(self, refuse: Optional[str] = None, pods: list[dict] | None = None, events: list[dict] | None = None):
        self.objs: dict[tuple[str, str], dict] = {}
        self.refuse, self.pods, self.events = refuse, pods or [], events or []
        self.rv, self.status_writes = 100, []  # our resource's resourceVersion; the status patches written

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == self.refuse:
            body = {"reason": "Forbidden", "message": f'{obj["kind"].lower()}s is forbidden: User "sa" cannot patch'}
            raise _api(403, body)
        stored = dict(obj, metadata=dict(obj["metadata"], uid=f"uid-{obj['metadata']['name']}"))
        prev = self.objs.get((obj["kind"], obj["metadata"]["name"]))
        if prev and "status" in prev:
            stored["status"] = prev["status"]  # apply does not touch a child's status subresource
        self.objs[(obj["kind"], obj["metadata"]["name"])] = stored
        return stored

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> str:
        self.rv += 1
        self.status_writes.append(patch)
        return str(self.rv)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Optional[dict[str, Any]]:
        return self.objs.get((kind, name))

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        return self.objs.pop((kind, name), None) is not None

    def get_glassbox(self, kind: str, namespace: str, name: str) -> None:
        return None


def _api(status: int, body: dict) -> ApiException:
    e = ApiException(status=status, reason=body["reason"])
    e.body = json.dumps(body)
    return e


def body(**resources: Any) -> dict:
    d = example("pretrain-gpu.yaml")
    d["metadata"] = {"name": "r", "namespace": "ns", "uid": UID, "generation": 1}
    d["spec"]["resources"] = {"backend": "job", "workers": 1, "cpu": "1", "memory": "1Gi", **resources}
    d["spec"]["storage"] = {}
    return d


class KubeView:
    """What the operator's watches would hold: the fake cluster's pods and events at call time."""

    def __init__(self, kube: FakeKube):
        self.kube = kube

    def pods(self, namespace: str, uid: str, attempt: int):
        return MemoryView(self.kube.pods, self.kube.events).pods(namespace, uid, attempt)

    def failed_creates(self, namespace: str, uid: str):
        return MemoryView(self.kube.pods, self.kube.events).failed_creates(namespace, uid)


def reconciler(kube: FakeKube, tmp_path, **storage: Any) -> Reconciler:
    return Reconciler(kube, config(**storage), LocalRunner(tmp_path), clock=lambda: NOW,
                      store_retry=RetryPolicy(deadline=0.2, initial=0.05, maximum=0.1), watched=KubeView(kube))


def cond(status: dict, ctype: str) -> dict | None:
    return next((c for c in status.get("conditions", []) if c["type"] == ctype), None)


def test_refused_child_is_a_condition_and_one_event(tmp_path):
    r = reconciler(FakeKube(refuse="Job"), tmp_path, endpoint="127.0.0.1:9")
    res = r.reconcile(body())
    c = cond(res.status, "ChildrenApplied")
    assert c["status"] == "False" and c["reason"] == "Forbidden" and "jobs is forbidden" in c["message"]
    assert [(e.type, e.reason) for e in res.events] == [("Warning", "ChildApplyFailed")]
    assert res.requeue_after and res.status["phase"] == "Pending" and res.status["observedGeneration"] == 1
    again = r.reconcile({**body(), "status": res.status})
    assert again.events == [] and cond(again.status, "ChildrenApplied")["lastTransitionTime"] == c["lastTransitionTime"]


def test_unreadable_store_is_a_condition(tmp_path):
    r = reconciler(FakeKube(), tmp_path, endpoint="127.0.0.1:9")
    res = r.reconcile(body())
    # The first pass (no status yet) does not read the store: nothing can have published under
    # this uid before a pass applied the workload.
    assert cond(res.status, "StoreReadable") is None and ("Job", "r-a0") in r.kube.objs
    res = r.reconcile({**body(), "status": res.status})
    c = cond(res.status, "StoreReadable")
    assert c["status"] == "False" and c["reason"] == "ManifestUnreadable" and c["message"]
    assert ("Job", "r-a0") in r.kube.objs  # the workload is applied anyway


def test_unschedulable_pod_and_failed_create(tmp_path):
    labels = {"glassbox.dev/uid": UID, "glassbox.dev/attempt": "0"}
    pod = unschedulable("r-a0-x", labels, "0/9 nodes are available: Insufficient cpu.")
    other = unschedulable("r-a1-x", dict(labels, **{"glassbox.dev/attempt": "1"}), "another attempt's pod")
    res = reconciler(FakeKube(pods=[other]), tmp_path, endpoint="127.0.0.1:9").reconcile(body())
    assert cond(res.status, "PodsScheduled") is None  # only this attempt's pods count
    res = reconciler(FakeKube(pods=[other, pod]), tmp_path, endpoint="127.0.0.1:9").reconcile(body())
    c = cond(res.status, "PodsScheduled")
    assert c["status"] == "False" and c["reason"] == "Unschedulable" and "Insufficient cpu" in c["message"]
    assert ("Warning", "Unschedulable") in [(e.type, e.reason) for e in res.events]
    ev = {"reason": "FailedCreate", "type": "Warning", "message": "no PriorityClass with name x was found",
          "involvedObject": {"uid": "uid-r-a0", "namespace": "ns"}, "lastTimestamp": "2026-01-01T00:00:00Z"}
    r = reconciler(FakeKube(events=[ev]), tmp_path, endpoint="127.0.0.1:9")
    res = r.reconcile(body())  # creates the Job: only a pass that finds it knows its uid
    assert cond(res.status, "PodsScheduled") is None
    res = r.reconcile({**body(), "status": res.status})
    c = cond(res.status, "PodsScheduled")
    assert c["status"] == "False" and c["reason"] == "FailedCreate" and "PriorityClass" in c["message"]


def unschedulable(name: str, labels: dict[str, str], message: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}, "status": {"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}


def scorer() -> dict:
    d = example("scorer-gpu.yaml")
    d["metadata"] = {"name": "sc", "namespace": "ns", "uid": UID, "generation": 1}
    d["spec"]["storage"] = {}
    return d


def test_unschedulable_predictor_pod_of_a_service(tmp_path):
    """KServe labels predictor pods with its own labels and the InferenceService's predictor labels."""
    isvc = {"serving.kserve.io/inferenceservice": "sc", "component": "predictor", "glassbox.dev/uid": UID, "glassbox.dev/attempt": "0"}
    pod = unschedulable("sc-predictor-7d9f-x", isvc, "0/9 nodes are available: 2 Insufficient nvidia.com/gpu.")
    other = {"serving.kserve.io/inferenceservice": "other", "glassbox.dev/uid": "another-uid"}
    elsewhere = unschedulable("other-predictor-1", dict(isvc, **other), "not ours")
    res = reconciler(FakeKube(pods=[elsewhere]), tmp_path, endpoint="127.0.0.1:9").reconcile(scorer())
    assert cond(res.status, "PodsScheduled") is None
    r = reconciler(FakeKube(pods=[elsewhere, pod]), tmp_path, endpoint="127.0.0.1:9")
    res = r.reconcile(scorer())
    c = cond(res.status, "PodsScheduled")
    assert c["status"] == "False" and c["reason"] == "Unschedulable" and "sc-predictor-7d9f-x" in c["message"], c
    assert "Insufficient nvidia.com/gpu" in c["message"] and res.status["phase"] == "Pending"
    assert ("Warning", "Unschedulable") in [(e.type, e.reason) for e in res.events]
    # placed once capacity appears; and a Ready service keeps watching its pods (a scale-up can stick)
    r.kube.pods = [dict(pod, status={"conditions": [{"type": "PodScheduled", "status": "True"}]})]
    r.kube.objs[("InferenceService", "sc")]["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    res = r.reconcile({**scorer(), "status": res.status})
    assert res.status["phase"] == "Ready" and cond(res.status, "PodsScheduled")["status"] == "True"
    r.kube.pods = [pod]
    res = r.reconcile({**scorer(), "status": res.status})
    assert res.status["phase"] == "Ready" and cond(res.status, "PodsScheduled")["reason"] == "Unschedulable"


def exited(name: str, labels: dict[str, str], code: int) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}, "status": {"phase": "Failed", "containerStatuses": [
        {"name": "workload", "state": {"terminated": {"exitCode": code, "reason": "Error"}}}]}}


def failed_job(kube: FakeKube) -> None:
    job = kube.objs[("Job", "r-a0")]
    job["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                     "message": "Job has reached the specified backoff limit",
                                     "lastTransitionTime": "2026-01-01T00:00:00Z"}]}


@pytest.mark.parametrize("code,phase,reason", [(4, "Failed", "PermanentFailure"), (2, "Failed", "PermanentFailure"),
                                               (1, "Pending", "BackingOff"), (137, "Pending", "BackingOff")])
def test_a_pod_exit_code_decides_between_retry_and_stalled(tmp_path, code, phase, reason):
    """Whatever the backend, the exit code of the attempt's pod (from the operator's pod watch)
    tells a permanent failure (bad input, invalid spec: not retried) from a transient one."""
    labels = {"glassbox.dev/uid": UID, "glassbox.dev/attempt": "0"}
    kube = FakeKube()
    r = reconciler(kube, tmp_path)
    first = r.reconcile(body())
    failed_job(kube)
    kube.pods = [exited("r-a0-x", labels, code)]
    res = r.reconcile({**body(), "status": first.status})
    assert res.status["phase"] == phase and cond(res.status, "Progressing")["reason"] == reason
    assert (cond(res.status, "Stalled")["status"] == "True") == (phase == "Failed")
    if phase == "Failed":
        assert f"exited with code {code}" in res.status["message"] and res.status["retries"] == 0


def test_the_job_fails_fast_on_a_permanent_exit_code_and_says_so():
    from glassbox_api.podcontract import PERMANENT_EXIT_CODES
    from glassbox_operator.render import job

    rule = job.pod_failure_policy("workload")["rules"][0]
    assert rule["action"] == "FailJob" and set(rule["onExitCodes"]["values"]) == set(PERMANENT_EXIT_CODES)
    obj = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
                                      "message": "Container workload for pod ns/x failed with exit code 4 matching FailJob rule at index 0"}]}}
    assert job.observe(obj).permanent
    obj["status"]["conditions"][0]["reason"] = "BackoffLimitExceeded"
    assert not job.observe(obj).permanent
