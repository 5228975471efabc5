"""Eval-gated promotion through whole reconcile passes, without a cluster: a fake apiserver (the
children applied, Job and InferenceService status set as their controllers would) and run manifests
in memory. A changed spec.training trains into a run of its own while the InferenceService keeps
serving the old checkpoint; the new checkpoint replaces it only if its test metric is no worse, and
the Promoted condition says what was decided with both numbers."""

from __future__ import annotations

import copy
from typing import Any, Optional

import pytest

from glassbox_api.manifest import CheckpointEntry, Manifest
from glassbox_api.podcontract import Env
from test_reconcile_errors import FakeKube, cond, reconciler

from opkit import UID, example


def bot(**training: Any) -> dict:
    d = example("dialogbot-gpu.yaml")
    d["metadata"] = {"name": "db", "namespace": "ns", "uid": UID, "generation": 1}
    d["spec"]["model"] = {"uri": "s3://glassbox/models/base"}
    d["spec"]["training"].update({"resources": {"backend": "job", "cpu": "1", "memory": "1Gi"}, **training})
    d["spec"]["serving"]["resources"] = {"backend": "kserve", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    return d


def trained(step: int, perplexity: float, state: str = "completed") -> Manifest:
    """What the training program publishes: its best checkpoint with the test metrics."""
    return Manifest(kind="DialogBot", name="db", namespace="ns", total_steps=step, state=state,
                    checkpoints=[CheckpointEntry(step=step, tokens=10 * step, loss=2.0, path=f"checkpoints/{step:08d}",
                                                 evals={"perplexity": perplexity, "bleu2": 1.0, "devLoss": 3.0},
                                                 resumable=False)])


class Bot:
    """One DialogBot driven pass by pass: its spec, its last status, the fake cluster and store."""

    def __init__(self, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kube = FakeKube()
        self.r = reconciler(self.kube, tmp_path)
        self.store: dict[str, Manifest] = {}
        self.reads: list[str] = []
        self.unreadable: set[str] = set()

        def read(ctx: Any, uri: str) -> tuple[Optional[Manifest], Optional[str]]:
            self.reads.append(uri)
            return (None, "StoreError: down") if uri in self.unreadable else (self.store.get(uri), None)

        monkeypatch.setattr(self.r, "_read_manifest", read)
        self.doc, self.status, self.events = bot(), {}, []

    def change(self, **training: Any) -> None:
        gen = self.doc["metadata"]["generation"] + 1
        self.doc = bot(**training)
        self.doc["metadata"]["generation"] = gen

    def reconcile(self) -> dict:
        res = self.r.reconcile({**copy.deepcopy(self.doc), "status": self.status})
        self.status = {**self.status, **res.patch}
        self.status = {k: v for k, v in self.status.items() if v is not None}
        self.events += [(e.type, e.reason, e.message) for e in res.events]
        return self.status

    @property
    def run(self) -> str:
        return self.status["artifacts"]["runUri"]

    def job(self) -> Optional[dict]:
        return next((o for (k, _), o in self.kube.objs.items() if k == "Job"), None)

    def isvc(self) -> Optional[dict]:
        return self.kube.objs.get(("InferenceService", "db"))

    def storage_uri(self) -> Optional[str]:
        isvc = self.isvc()
        env = isvc["spec"]["predictor"]["containers"][0]["env"] if isvc else []
        return next((e["value"] for e in env if e["name"] == "STORAGE_URI"), None)

    def finish_training(self, manifest: Optional[Manifest]) -> None:
        """The program publishes its manifest; the Job controller marks the Job complete."""
        if manifest is not None:
            self.store[self.run] = manifest
        self.job()["status"] = {"conditions": [{"type": "Complete", "status": "True",
                                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}

    def serve(self) -> None:
        self.isvc()["status"] = {"url": "http://db.ns.example.com",
                                 "conditions": [{"type": "Ready", "status": "True"}]}


def first_model(b: Bot, perplexity: float = 40.0) -> str:
    """Train, publish and serve the first model; returns its checkpoint URI."""
    b.reconcile()
    b.finish_training(trained(6, perplexity))
    b.reconcile()
    b.serve()
    st = b.reconcile()
    assert st["phase"] == "Ready" and b.job() is None
    return st["progress"]["servingCheckpoint"]


def test_first_training_serves_its_checkpoint_and_decides_nothing(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    st = b.reconcile()
    assert b.isvc() is None and b.job()["metadata"]["name"].startswith("db-train-")
    served = first_model(b)
    assert served == f"{b.run}/checkpoints/00000006" == b.storage_uri()
    assert cond(b.status, "Promoted") is None and "candidateCheckpoint" not in b.status["progress"]
    assert st["artifacts"]["runUri"] == b.run


def test_changed_training_trains_a_new_run_while_the_old_checkpoint_keeps_serving(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    served = first_model(b)
    first_run, isvc_before = b.run, copy.deepcopy(b.isvc())
    b.change(epochs=7)
    st = b.reconcile()
    assert b.run != first_run and b.run.rsplit("-", 1)[0] == first_run.rsplit("-", 1)[0]  # db-<run8>: a new folder
    job = b.job()
    assert job is not None and job["metadata"]["name"] == f"db-train-{b.run.rsplit('-', 1)[1]}-a0"
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[Env.RUN_ID].startswith(b.run.rsplit("-", 1)[1]) and env[Env.RUN_ID].endswith(UID)
    assert b.storage_uri() == served and b.isvc()["spec"]["predictor"]["minReplicas"] == isvc_before["spec"]["predictor"]["minReplicas"]
    assert cond(st, "Trained")["status"] == "False" and cond(st, "Trained")["reason"] == "Retraining"
    assert st["progress"]["servingCheckpoint"] == served and st["endpoint"] == "http://db.ns.example.com"
    assert ("InferenceService", "db") in {(c["kind"], c["name"]) for c in st["children"]}
    job["status"] = {"ready": 1}
    st = b.reconcile()
    assert st["phase"] == "Running" and st["readyReplicas"] == 2 and b.storage_uri() == served


def test_a_worse_candidate_is_refused_and_the_old_model_keeps_serving(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    served = first_model(b, perplexity=40.0)
    b.change(epochs=7)
    b.reconcile()
    b.finish_training(trained(8, 45.5))
    st = b.reconcile()
    candidate = f"{b.run}/checkpoints/00000008"
    assert b.storage_uri() == served and b.job() is None
    p = cond(st, "Promoted")
    assert p["status"] == "False" and p["reason"] == "CandidateWorse"
    assert "45.5" in p["message"] and "40" in p["message"] and served in p["message"]
    assert st["progress"]["servingCheckpoint"] == served and st["progress"]["candidateCheckpoint"] == candidate
    assert ("Warning", "CandidateWorse", p["message"]) in b.events
    # later passes keep the decision without reading the serving run again, and post nothing new
    b.serve()
    reads, events = len(b.reads), len(b.events)
    st = b.reconcile()
    assert st["phase"] == "Ready" and b.storage_uri() == served and cond(st, "Promoted") == p
    assert b.reads[reads:] == [b.run] and [e[1] for e in b.events[events:]] == ["Ready"]


def test_a_candidate_no_worse_is_promoted(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    served = first_model(b, perplexity=40.0)
    b.change(epochs=7)
    b.reconcile()
    b.finish_training(trained(8, 39.0))
    st = b.reconcile()
    candidate = f"{b.run}/checkpoints/00000008"
    assert b.storage_uri() == candidate != served
    p = cond(st, "Promoted")
    assert p["status"] == "True" and p["reason"] == "Promoted" and "39" in p["message"] and "40" in p["message"]
    assert st["progress"]["servingCheckpoint"] == candidate and "candidateCheckpoint" not in st["progress"]
    b.serve()
    assert b.reconcile()["phase"] == "Ready" and b.storage_uri() == candidate


def test_higher_is_better_follows_the_spec_direction(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    b.doc["spec"]["serving"]["promotion"] = {"metric": "perplexity", "direction": "higher"}
    served = first_model(b, perplexity=40.0)
    b.change(epochs=7)
    b.doc["spec"]["serving"]["promotion"] = {"metric": "perplexity", "direction": "higher"}
    b.reconcile()
    b.finish_training(trained(8, 39.0))
    st = b.reconcile()
    assert b.storage_uri() == served and cond(st, "Promoted")["reason"] == "CandidateWorse"


def test_a_run_that_completed_no_checkpoint_is_refused_as_no_candidate(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    served = first_model(b)
    b.change(epochs=7)
    b.reconcile()
    b.finish_training(Manifest(kind="DialogBot", name="db", namespace="ns", total_steps=8, state="running"))
    st = b.reconcile()
    assert b.storage_uri() == served and cond(st, "Promoted")["reason"] == "NoCandidate"


def test_an_unreadable_serving_run_decides_nothing_until_it_can_be_read(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    served = first_model(b, perplexity=40.0)
    first_run = b.run
    b.change(epochs=7)
    b.reconcile()
    b.unreadable.add(first_run)
    b.finish_training(trained(8, 30.0))
    st = b.reconcile()
    assert b.storage_uri() == served and cond(st, "Promoted") is None
    b.unreadable.clear()
    st = b.reconcile()
    assert cond(st, "Promoted")["status"] == "True" and b.storage_uri() == f"{b.run}/checkpoints/00000008"


def test_other_spec_changes_do_not_retrain(tmp_path, monkeypatch):
    b = Bot(tmp_path, monkeypatch)
    served = first_model(b)
    run = b.run
    b.doc["spec"]["decoding"]["numBeams"] = 4
    b.doc["spec"]["serving"]["replicas"] = 3
    b.doc["metadata"]["generation"] += 1
    st = b.reconcile()
    assert b.run == run and b.job() is None and b.storage_uri() == served and cond(st, "Trained")["status"] == "True"
