"""A pass over a stale body (Kopf's timer racing the event handler, or a watch that lags the status
the previous pass wrote) must not undo that pass. The test is the body's resourceVersion against
the one our own last status write produced: an older body is not acted on (the object is read
afresh instead); ours, or anything newer (someone else's write after ours), is acted on; after a
restart (nothing remembered) every body is."""

from __future__ import annotations

import copy
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import pytest
from kubernetes.client.exceptions import ApiException

from glassbox_api.store import RetryPolicy
from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.reconcile import Reconciler

from opkit import UID, config, example
from test_reconcile_errors import FakeKube, NOW, _api, body as job_body, reconciler


def body() -> dict:
    d = example("pretrain-tiny.yaml")
    d["metadata"] = {"name": "r", "namespace": "ns", "uid": UID, "generation": 1}
    d["spec"]["failurePolicy"] = {"maxRetries": 2, "backoffSeconds": 1}
    return d


def wait_exit(d: Path) -> None:
    deadline = time.monotonic() + 10
    while not (d / "exit").exists():
        assert time.monotonic() < deadline, f"no exit file in {d}"
        time.sleep(0.02)


def test_a_stale_body_does_not_restart_the_replaced_attempt(tmp_path: Path):
    """The local runner forgets a stopped process: a pass over the body from before the retry would
    start attempt 0 again next to attempt 1 (two workloads on one run)."""
    now = [NOW]
    cfg = config(endpoint="").model_copy(update={"local_store": str(tmp_path / "store")})
    state = tmp_path / "state"
    kube = Live(body())
    r = Reconciler(kube, cfg, LocalRunner(state, python="/bin/false"), clock=lambda: now[0],
                   store_retry=RetryPolicy(deadline=0.2, initial=0.05, maximum=0.1))
    a0, a1 = state / "ns" / UID / "r-a0", state / "ns" / UID / "r-a1"

    r.reconcile(kube.current())  # starts attempt 0, which fails (exit 1)
    wait_exit(a0)
    r.reconcile(kube.current())
    before = kube.current()
    assert before["status"]["retries"] == 0 and "attempt 0 failed" in before["status"]["message"]  # backing off
    now[0] += timedelta(seconds=5)
    r.reconcile(copy.deepcopy(before))
    assert kube.resource["status"]["retries"] == 1 and not (a0 / "pid").exists() and (a1 / "pid").exists()

    stale = r.reconcile(copy.deepcopy(before))  # the body from before the retry, again
    assert not (a0 / "pid").exists(), "attempt 0 was started again from a stale body"
    assert kube.reads == 1 and stale.status["retries"] == 1

    wait_exit(a1)
    r.reconcile(kube.current())  # the current body goes on as usual
    assert kube.resource["status"]["retries"] == 1 and "attempt 1 failed" in kube.resource["status"]["message"]
    assert not (a0 / "pid").exists()


class Live(FakeKube):
    """Also holds our resource, as the apiserver would: status writes land on it, reads return it."""

    def __init__(self, resource: dict):
        super().__init__()
        self.resource: Optional[dict] = resource
        self.resource["metadata"]["resourceVersion"] = str(self.rv)
        self.reads = 0

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, patch: dict) -> str:
        rv = super().patch_status(api_version, kind, namespace, name, patch)
        if self.resource is not None:
            st = {k: v for k, v in {**(self.resource.get("status") or {}), **patch}.items() if v is not None}
            self.resource = {**self.resource, "status": st, "metadata": {**self.resource["metadata"], "resourceVersion": rv}}
        return rv

    def get_glassbox(self, kind: str, namespace: str, name: str) -> Optional[dict]:
        self.reads += 1
        r = self.resource
        return copy.deepcopy(r) if r and r["kind"] == kind and r["metadata"]["name"] == name else None

    def current(self) -> dict:
        return copy.deepcopy(self.resource)


def failed(kube: FakeKube, name: str) -> None:
    kube.objs[("Job", name)]["status"] = {"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "pod exited 3",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}]}


def at(rv: str, status: Optional[dict] = None) -> dict:
    d = job_body()
    d["spec"]["failurePolicy"] = {"maxRetries": 2, "backoffSeconds": 1}
    d["metadata"]["resourceVersion"] = rv
    return {**d, "status": status} if status is not None else d


def retried(tmp_path: Path) -> tuple[Reconciler, Live, dict, str]:
    """A run whose attempt 0 failed and was replaced by attempt 1, each pass over the current body:
    (reconciler, its kube, the body the retry pass acted on)."""
    now = [NOW]
    kube = Live(at("0"))
    r = reconciler(kube, tmp_path, endpoint="127.0.0.1:9")
    r.clock = lambda: now[0]
    r.reconcile(kube.current())
    failed(kube, "r-a0")
    r.reconcile(kube.current())
    before = kube.current()
    assert before["status"]["retries"] == 0 and "retry 1 of 2 at" in before["status"]["message"]
    now[0] += timedelta(seconds=5)
    r.reconcile(before)
    assert kube.resource["status"]["retries"] == 1 and ("Job", "r-a1") in kube.objs and ("Job", "r-a0") not in kube.objs
    assert kube.reads == 0
    return r, kube, before


def test_body_older_than_our_write_is_not_acted_on(tmp_path: Path):
    r, kube, before = retried(tmp_path)
    res = r.reconcile(copy.deepcopy(before))  # the body from before the retry, again
    assert kube.reads == 1, "the object was not read afresh"
    assert ("Job", "r-a0") not in kube.objs, "attempt 0 was started again from a stale body"
    assert not res.stale and res.status["retries"] == 1 and res.events == []
    older = copy.deepcopy(before)
    older["metadata"]["resourceVersion"] = "1"  # anything older, too
    failed(kube, "r-a1")
    res = r.reconcile(older)
    assert ("Job", "r-a0") not in kube.objs and res.status["retries"] == 2  # the current body's next step


def test_stale_body_of_a_resource_that_is_gone(tmp_path: Path):
    r, kube, before = retried(tmp_path)
    kube.resource, writes = None, len(kube.status_writes)
    res = r.reconcile(copy.deepcopy(before))
    assert res.stale and res.patch == {} and res.events == [] and not res.requeue_after
    assert ("Job", "r-a0") not in kube.objs and len(kube.status_writes) == writes


def test_stale_body_and_a_read_that_lags_too(tmp_path: Path):
    r, kube, before = retried(tmp_path)
    kube.resource = copy.deepcopy(before)  # a read served from somewhere behind our write
    res = r.reconcile(copy.deepcopy(before))
    assert res.stale and res.patch == {} and res.requeue_after and ("Job", "r-a0") not in kube.objs


def test_body_at_or_after_our_write_is_acted_on(tmp_path: Path):
    r, kube, _ = retried(tmp_path)
    failed(kube, "r-a1")
    res = r.reconcile(kube.current())  # exactly the version our write produced
    assert not res.stale and kube.resource["status"]["retries"] == 2 and ("Job", "r-a2") in kube.objs  # its backoff is past
    failed(kube, "r-a2")
    newer = kube.current()
    newer["metadata"]["resourceVersion"] = str(kube.rv + 7)  # newer (another writer's annotations, say)
    res = r.reconcile(newer)
    assert not res.stale and res.status["phase"] == "Failed" and res.patch and kube.reads == 0


def test_status_reset_by_someone_else_after_our_write_is_acted_on(tmp_path: Path):
    """A person clears the status after our write (a newer version showing attempt 0): that is the
    state to act on, even though it shows an earlier plan than the one we moved to."""
    r, kube, _ = retried(tmp_path)
    kube.rv += 1
    kube.resource = at(str(kube.rv), {})
    res = r.reconcile(kube.current())
    assert not res.stale and res.status["retries"] == 0 and ("Job", "r-a0") in kube.objs and kube.reads == 0


def test_after_a_restart_every_body_is_acted_on(tmp_path: Path):
    """The memory is the process's own: a new operator acts on the first body it gets, whatever
    its version (the one that was here would have read the object afresh)."""
    r, kube, before = retried(tmp_path)
    fresh = reconciler(kube, tmp_path, endpoint="127.0.0.1:9")  # a new process: nothing remembered
    stale_looking = {**kube.current(), "metadata": before["metadata"]}
    failed(kube, "r-a1")
    res = fresh.reconcile(stale_looking)
    assert not res.stale and kube.reads == 0 and "attempt 1 failed" in res.status["message"] and res.patch


def test_versions_that_do_not_parse_are_not_compared(tmp_path: Path):
    r, kube, before = retried(tmp_path)
    opaque = {**kube.current(), "metadata": {**before["metadata"], "resourceVersion": "opaque-token"}}
    assert not r.reconcile(opaque).stale and kube.reads == 0  # the body's version is no number
    kube.patch_status = lambda *a: "opaque-token"
    failed(kube, "r-a1")
    assert r.reconcile(kube.current()).patch  # written, at a version that cannot be ordered
    r.reconcile(before)
    assert kube.reads == 0  # so nothing is compared against it


def test_forget_drops_what_a_deleted_resource_left(tmp_path: Path):
    r, kube, before = retried(tmp_path)
    r.forget(UID)
    r.reconcile(before)
    assert kube.reads == 0


def test_a_refused_status_write_raises_and_the_next_pass_writes_it(tmp_path: Path):
    """The apiserver refuses the write (a status the schema rejects, RBAC): the pass fails (Kopf
    retries it; no events are posted for a status that was not written), and the next pass over
    the same body is not judged stale by a write that never happened."""
    r, kube, _ = retried(tmp_path)
    write, writes = kube.patch_status, len(kube.status_writes)

    def refuse(*_a):
        raise _api(422, {"reason": "Invalid", "message": "status.progress.step: Invalid value"})

    kube.patch_status = refuse
    failed(kube, "r-a1")
    body = kube.current()
    with pytest.raises(ApiException):
        r.reconcile(copy.deepcopy(body))
    kube.patch_status = write
    res = r.reconcile(body)
    assert not res.stale and res.patch and kube.reads == 0 and len(kube.status_writes) == writes + 1
