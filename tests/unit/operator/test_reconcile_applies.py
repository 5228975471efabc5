"""A pass whose rendered children did not change writes nothing to them: the timers of many
resources must not turn into a stream of server-side applies. Every case where a child must be
applied again still applies it: a changed body, a workload found missing, a teardown then a
resume, a restart, and the periodic re-assertion."""

from __future__ import annotations

from typing import Any

import pytest

import glassbox_operator.reconcile as rec
from test_reconcile_errors import FakeKube, body, reconciler


class CountingKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.applied: list[tuple[str, str]] = []

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied.append((obj["kind"], obj["metadata"]["name"]))
        return super().apply(obj)


def again(r, doc: dict, res) -> Any:
    return r.reconcile({**doc, "status": res.status})


def test_unchanged_passes_apply_nothing(tmp_path) -> None:
    kube = CountingKube()
    r = reconciler(kube, tmp_path)
    doc = body()
    res = r.reconcile(doc)
    assert kube.applied == [("ConfigMap", "r-spec"), ("Job", "r-a0")]
    for _ in range(3):
        res = again(r, doc, res)
    assert len(kube.applied) == 2 and res.status["phase"] == "Pending"


def test_a_changed_body_or_a_missing_workload_is_applied_again(tmp_path) -> None:
    kube = CountingKube()
    r = reconciler(kube, tmp_path)
    doc = body()
    res = r.reconcile(doc)
    kube.objs.pop(("Job", "r-a0"))  # someone deleted the workload
    res = again(r, doc, res)
    assert kube.applied[2:] == [("Job", "r-a0")] and ("Job", "r-a0") in kube.objs
    changed = body(cpu="2")  # resources are mutable: the rendered Job changes
    changed["metadata"]["generation"] = 2
    again(r, changed, res)
    assert ("Job", "r-a0") in kube.applied[3:]


def test_teardown_then_resume_applies_every_child_again(tmp_path) -> None:
    kube = CountingKube()
    r = reconciler(kube, tmp_path)
    doc = body()
    res = r.reconcile(doc)
    suspended = dict(doc, spec=dict(doc["spec"], suspend=True))
    res = again(r, suspended, res)
    assert res.status["phase"] == "Suspended" and not kube.objs
    n = len(kube.applied)
    res = again(r, doc, res)
    assert sorted(kube.applied[n:]) == [("ConfigMap", "r-spec"), ("Job", "r-a0")]
    assert {("ConfigMap", "r-spec"), ("Job", "r-a0")} <= set(kube.objs)


def test_restart_and_reassertion_apply_again(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    kube = CountingKube()
    doc = body()
    res = reconciler(kube, tmp_path).reconcile(doc)
    again(reconciler(kube, tmp_path), doc, res)  # a new operator process remembers nothing
    assert len(kube.applied) == 4
    r = reconciler(kube, tmp_path)
    res = r.reconcile(doc)
    monkeypatch.setattr(rec, "REASSERT_SECONDS", 0.0)
    again(r, doc, res)
    assert len(kube.applied) == 8


def test_forget_drops_what_was_applied(tmp_path) -> None:
    kube = CountingKube()
    r = reconciler(kube, tmp_path)
    doc = body()
    res = r.reconcile(doc)
    r.forget(doc["metadata"]["uid"])
    again(r, doc, res)
    assert len(kube.applied) == 4
