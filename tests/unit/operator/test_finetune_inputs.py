"""ShardedFinetune's aspect recipe fed by a KGHarvest: the operator waits until the harvest's
manifest lists kg.jsonl, records {source, uri, sha256, runUri} in status.lineage.knowledge (beside
a model.fromRun lineage when there is one), and hands the harvest's run folder to the workload as
knowledge.fromRun.runUri."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import parse_resource
from glassbox_api.store import LocalStore
from glassbox_operator import kinds
from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.reconcile import Reconciler
from glassbox_operator.render.common import ChildState, spec_document
from glassbox_operator.status import Observation, compute, plan_of

from opkit import config, ctx, example, resource

ASPECTS = example("finetune-aspects-gpu.yaml")
KG = {"path": "kg.jsonl", "sha256": "ab" * 32, "size": 10}


class Kube:
    """The sources by kind: a KGHarvest (and a ShardedFinetune for model.fromRun), with run folders."""

    def __init__(self, objs: dict[str, dict[str, Any]]):
        self.objs = objs

    def get_glassbox(self, kind: str, namespace: str, name: str) -> Optional[dict[str, Any]]:
        return self.objs.get(kind)


def _harvest(tmp_path) -> tuple[dict[str, Any], Any]:
    src = example("kgharvest-tiny.yaml")
    src["metadata"] = {"name": "conceptnet-harvest", "namespace": "ns", "uid": "abcd1234"}
    run_dir = tmp_path / "ns" / "kgharvest" / "conceptnet-harvest-abcd1234"
    src["status"] = {"artifacts": {"runUri": str(run_dir)}}
    return src, run_dir


def _model_source(tmp_path) -> dict[str, Any]:
    src = example("finetune-tiny.yaml")
    src["metadata"] = {"name": "cnndm-bart-large", "namespace": "ns", "uid": "b0b0b0b0"}
    run_dir = tmp_path / "ns" / "shardedfinetune" / "cnndm-bart-large-b0b0b0b0"
    src["status"] = {"artifacts": {"runUri": str(run_dir)}}
    m = Manifest(kind="ShardedFinetune", name="cnndm-bart-large").model_copy(update={"state": "completed"})
    from glassbox_api.manifest import CheckpointEntry

    LocalStore(run_dir).write_json("manifest.json", m.with_checkpoint(CheckpointEntry(step=9, tokens=0, path="checkpoints/00000009")).to_json())
    return src


def test_the_knowledge_harvest_is_waited_for_then_recorded_beside_the_model(tmp_path) -> None:
    harvest, run_dir = _harvest(tmp_path)
    r = Reconciler(Kube({"KGHarvest": harvest, "ShardedFinetune": _model_source(tmp_path)}),  # type: ignore[arg-type]
                   config(endpoint=""), LocalRunner(tmp_path / "state"))
    c = ctx(resource(ASPECTS), config(endpoint=""))
    lineage, waiting = r._resolve(c, {})
    assert lineage is None and "KGHarvest/conceptnet-harvest" in (waiting or "") and "knowledge.fromRun" in waiting
    running = Manifest(kind="KGHarvest", name="conceptnet-harvest")
    LocalStore(run_dir).write_json("manifest.json", running.to_json())
    assert r._resolve(c, {})[0] is None  # running: no kg.jsonl yet
    done = running.model_copy(update={"state": "completed"})
    LocalStore(run_dir).write_json("manifest.json", {**done.to_json(), "kg": KG})
    lineage, waiting = r._resolve(c, {})
    assert waiting is None
    assert lineage["knowledge"] == {"source": "KGHarvest/conceptnet-harvest", "uri": f"{run_dir}/kg.jsonl",
                                    "sha256": "ab" * 32, "runUri": str(run_dir)}
    assert lineage["source"] == "ShardedFinetune/cnndm-bart-large@latest" and lineage["step"] == 9
    # resolved once: a later pass keeps it even if the source went away
    again, _ = Reconciler(Kube({}), config(endpoint=""), LocalRunner(tmp_path / "s2"))._resolve(c, {"lineage": lineage})  # type: ignore[arg-type]
    assert again == lineage


def test_status_shows_the_knowledge_lineage_and_the_workload_gets_the_harvest_folder(tmp_path) -> None:
    harvest, run_dir = _harvest(tmp_path)
    res = resource(ASPECTS, model={"architecture": "bart", "config": {"hiddenSize": 64, "numHeads": 4}})
    lineage = {"knowledge": {"source": "KGHarvest/conceptnet-harvest", "uri": f"{run_dir}/kg.jsonl", "sha256": "ab" * 32,
                             "runUri": str(run_dir)}}
    wait = compute(res, {}, plan_of(res, {}), Observation(workload=ChildState(), artifacts={"runUri": "s3://b/run"},
                                                          waiting="waiting for KGHarvest/conceptnet-harvest"),
                   None, datetime.now(timezone.utc))
    c = next(c for c in wait.status["conditions"] if c["type"] == "ModelResolved")
    assert wait.status["phase"] == "Pending" and not wait.apply and (c["status"], c["reason"]) == ("False", "WaitingForCheckpoint")
    obs = Observation(workload=ChildState(), artifacts={"runUri": "s3://b/run"}, lineage=lineage)
    out = compute(res, {}, plan_of(res, {}), obs, None, datetime.now(timezone.utc))
    assert out.status["lineage"] == lineage
    cond = next(c for c in out.status["conditions"] if c["type"] == "ModelResolved")
    assert cond["status"] == "True" and "KGHarvest/conceptnet-harvest ->" in cond["message"]
    assert kinds.home("ShardedFinetune").inputs(res.spec)[0].key == "knowledge"
    doc = spec_document(ctx(res, inputs=lineage))
    assert doc["spec"]["recipe"]["aspectSummarization"]["knowledge"] == {
        "fromRun": {"kind": "KGHarvest", "name": "conceptnet-harvest", "runUri": str(run_dir)}}
    parse_resource(json.loads(json.dumps(doc)))  # the workload reads it: still a valid ShardedFinetune
    from glassbox_api.kinds.shardedfinetune import ShardedFinetuneStatus

    ShardedFinetuneStatus.model_validate(out.status)  # the CRD's status schema keeps lineage.knowledge


def test_a_knowledge_uri_and_other_kinds_read_no_inputs() -> None:
    res = resource(example("finetune-aspects-tiny.yaml"))
    assert kinds.home("ShardedFinetune").inputs(res.spec) == []
    assert kinds.home("ShardedFinetune").inputs(resource(example("finetune-tiny.yaml")).spec) == []
    m = Manifest(kind="KGHarvest", name="x").model_copy(update={"state": "completed"})
    assert kinds.home("KGHarvest").published(m, "s3://b/run") is None  # completed without kg.jsonl
    assert kinds.home("PretrainRun").published(m, "s3://b/run") is None
