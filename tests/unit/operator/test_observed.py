"""The watched view of workload pods and FailedCreate events (observed.py), and the contract it rests
on: every pod a workload child makes carries the labels the operator's pod watch selects on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import SecretStr

from glassbox_api.constants import LABEL_ATTEMPT, LABEL_UID
from glassbox_api.store import RetryPolicy, S3Settings
from glassbox_operator.context import STAGE_SERVE, STAGE_TRAIN, Plan
from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.observed import (
    EVENT_FIELD_SELECTOR, POD_LABEL_SELECTOR, FailedCreate, MemoryView, PodInfo, event_entry, from_kwargs, pod_entry,
)
from glassbox_operator.reconcile import MAX_S3_CLIENTS, Reconciler
from glassbox_operator.render import render, workload

from opkit import ROOT, UID, config, ctx, example, resource


def pod(name: str, uid: str = UID, attempt: str = "0", scheduled: Any = None, ns: str = "ns") -> dict:
    conds = [] if scheduled is None else [
        {"type": "PodScheduled", "status": "True" if scheduled is True else "False",
         **({} if scheduled is True else {"reason": "Unschedulable", "message": scheduled})}]
    return {"metadata": {"name": name, "namespace": ns, "labels": {LABEL_UID: uid, LABEL_ATTEMPT: attempt}},
            "status": {"conditions": conds}}


def event(uid: str = "job-uid", reason: str = "FailedCreate", type_: str = "Warning", when: str = "2026-01-01T00:00:00Z",
          message: str = "quota exceeded") -> dict:
    return {"metadata": {"namespace": "ns"}, "type": type_, "reason": reason, "message": message, "lastTimestamp": when,
            "involvedObject": {"kind": "Job", "name": "r-a0", "uid": uid}}


def test_pod_entry_keys_by_namespace_uid_attempt_and_reads_unschedulable():
    assert pod_entry(pod("p", scheduled="0/3 nodes: Insufficient cpu")) == {
        ("ns", UID, "0"): PodInfo("p", ("Unschedulable", "0/3 nodes: Insufficient cpu"))}
    assert pod_entry(pod("p", attempt="2", scheduled=True)) == {("ns", UID, "2"): PodInfo("p")}
    assert pod_entry({"metadata": {"name": "x", "namespace": "ns", "labels": {"app": "other"}}}) == {}


def test_event_entry_only_failed_create_warnings_with_an_object_uid():
    assert event_entry(event()) == {("ns", "job-uid"): FailedCreate("2026-01-01T00:00:00Z", "quota exceeded")}
    assert event_entry(event(reason="SuccessfulCreate")) == {}
    assert event_entry(event(type_="Normal")) == {}
    assert event_entry(event(uid="")) == {}
    # the kubernetes client's snake_case form and an involvedObject namespace both work
    ev = {"type": "Warning", "reason": "FailedCreate", "message": "m", "eventTime": "t",
          "involved_object": {"uid": "u", "namespace": "other"}}
    assert event_entry(ev) == {("other", "u"): FailedCreate("t", "m")}


def test_view_separates_attempts_resources_and_namespaces():
    v = MemoryView([pod("b"), pod("a"), pod("c", attempt="1"), pod("d", uid="other"), pod("e", ns="ns2")],
                   [event(), event(when="2026-01-02T00:00:00Z", message="newer"), event(uid="x")])
    assert [p.name for p in v.pods("ns", UID, 0)] == ["a", "b"]
    assert [p.name for p in v.pods("ns", UID, 1)] == ["c"]
    assert v.pods("ns", UID, 7) == [] and v.pods("ns3", UID, 0) == []
    assert sorted(e.message for e in v.failed_creates("ns", "job-uid")) == ["newer", "quota exceeded"]
    assert v.failed_creates("ns", "nope") == []


def test_view_from_kopf_keyword_arguments():
    assert from_kwargs({"retry": 0}) is None
    view = from_kwargs({"glassbox_pods": {("ns", UID, "0"): [PodInfo("p")]}, "glassbox_failed_creates": {}})
    assert view is not None and view.pods("ns", UID, 0) == [PodInfo("p")]


def test_selectors_are_what_the_entries_need():
    assert POD_LABEL_SELECTOR == LABEL_UID  # existence: every pod of ours, whatever the uid
    assert set(dict(kv.split("=") for kv in EVENT_FIELD_SELECTOR.split(","))) == {"type", "reason"}


def _pod_label_sets(child: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The labels of every pod a workload child makes: each pod template's, an InferenceService
    predictor's (KServe copies spec.predictor.labels onto its pods)."""
    if child["kind"] == "InferenceService":
        yield child["spec"]["predictor"].get("labels") or {}
        return

    def walk(node: Any) -> Iterator[dict[str, str]]:
        if isinstance(node, dict):
            if "containers" in (node.get("spec") or {}) and "metadata" in node:
                yield (node["metadata"] or {}).get("labels") or {}
            for v in node.values():
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)

    yield from walk(child["spec"])


CLUSTER_EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.yaml") if "backend: local" not in p.read_text())


@pytest.mark.parametrize("name", CLUSTER_EXAMPLES)
@pytest.mark.parametrize("attempt", [0, 3])
def test_every_workload_pod_carries_the_watched_labels(name, attempt):
    res = resource(example(name))
    base = ctx(res)
    stages = [STAGE_TRAIN, STAGE_SERVE] if res.info.kind == "DialogBot" else [base.plan.stage]
    for stage in stages:
        c = base.with_plan(Plan(attempt=attempt, stage=stage))
        if stage == STAGE_SERVE and res.info.kind == "DialogBot":
            c = ctx(res, plan=c.plan, model_uri="s3://b/run/checkpoints/00000010")
        wl = workload(render(c))
        assert wl is not None and wl["kind"] != "LocalProcess", name
        sets = list(_pod_label_sets(wl))
        assert sets, f"no pod template found in {wl['kind']}"
        for labels in sets:
            assert labels.get(LABEL_UID) == UID and labels.get(LABEL_ATTEMPT) == str(attempt), (name, wl["kind"], labels)


def test_store_clients_are_shared_per_settings(tmp_path: Path, monkeypatch):
    """One minio client (and so one connection pool) per distinct S3 settings; new credentials get
    a new client; the cache stays bounded."""
    r = Reconciler(kube=None, config=config(), local=LocalRunner(tmp_path),  # type: ignore[arg-type]
                   store_retry=RetryPolicy(deadline=0.1))
    s1 = S3Settings(endpoint="s3.example:9000", secure=False, access_key="a", secret_key=SecretStr("x"))
    a, b = r._store("s3://bucket/ns/run-1", s1), r._store("s3://bucket/ns/run-2", s1)
    assert a.client is b.client and (a.prefix, b.prefix) == ("ns/run-1", "ns/run-2")
    rotated = S3Settings(endpoint="s3.example:9000", secure=False, access_key="b", secret_key=SecretStr("y"))
    assert r._store("s3://bucket/ns/run-1", rotated).client is not a.client
    for i in range(MAX_S3_CLIENTS + 2):
        r._store("s3://bucket/x", S3Settings(endpoint=f"h{i}:9000", secure=False))
    assert len(r._s3_clients) <= MAX_S3_CLIENTS
    assert type(r._store(str(tmp_path / "local"), None)).__name__ == "LocalStore"
