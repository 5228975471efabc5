"""MetricEval's home: progress from the run manifest (examples scored, the metric being computed,
results, the curve's latest and best), the result files in status.artifacts, and model.fromRun with
checkpoint: each resolved to the source run's folder, handed to the workload as fromRun.runUri."""

from __future__ import annotations

import json
from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import parse_resource
from glassbox_api.store import LocalStore
from glassbox_operator import kinds
from glassbox_operator import render as R
from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.reconcile import Reconciler
from glassbox_operator.render.common import spec_document

from opkit import config, ctx, example, resource

HOME = kinds.home("MetricEval")
CURVE = example("metriceval-curve.yaml")


def manifest(state: str = "running", **final: Any) -> Manifest:
    return Manifest(kind="MetricEval", name="r", namespace="ns", uid="u", state=state, final=final)


def test_progress_counts_examples_names_the_metric_and_rounds_results() -> None:
    res = resource(example("metriceval-tiny.yaml"))
    got = HOME.progress(res, manifest(examplesScored=4, examplesTotal=6, currentMetric="relevance",
                                      results={"rouge-l": 0.379866536, "bleu-4": None}), "s3://b/run")
    assert got == {"examplesScored": 4, "examplesTotal": 6, "done": "4/6", "currentMetric": "relevance",
                   "results": {"rouge-l": 0.379867}}
    done = HOME.progress(res, manifest("completed", examplesScored=6, examplesTotal=6, currentMetric="relevance"), None)
    assert "currentMetric" not in done and done["done"] == "6/6"
    assert HOME.progress(res, None, None) is None


def test_progress_shows_the_curve_latest_and_best_for_kubectl_get() -> None:
    res = resource(CURVE)
    curve = {"metric": "perplexity", "mode": "min", "points": 3, "latest": 305.123456, "checkpoint": "step-78",
             "best": 301.5, "bestCheckpoint": "step-52"}
    got = HOME.progress(res, manifest(examplesScored=8, examplesTotal=8, curve=curve), None)
    assert got["checkpoints"] == 3 and got["checkpoint"] == "step-78" and got["latest"] == 305.1235
    assert got["best"] == 301.5 and got["bestCheckpoint"] == "step-52"
    # No point yet: no curve columns at all (not zeros).
    assert HOME.progress(res, manifest(curve={"points": 0}), None) is None


def test_status_artifacts_name_the_result_files() -> None:
    arts = R.artifacts(ctx(resource(example("metriceval-gpu.yaml"))))
    run = arts["runUri"]
    assert arts["perExampleUri"] == f"{run}/scores.jsonl" and arts["summaryUri"] == f"{run}/summary.json"
    assert arts["curveUri"] == f"{run}/curve.jsonl"


def test_each_keeps_the_reference_and_hands_over_the_source_run_folder() -> None:
    res = resource(CURVE)
    doc = spec_document(ctx(res, model_uri="s3://b/ns/pretrainrun/tiny-coder-abcd1234"))
    fr = doc["spec"]["model"]["fromRun"]
    assert fr == {"kind": "PretrainRun", "name": "tiny-coder", "checkpoint": "each",
                  "runUri": "s3://b/ns/pretrainrun/tiny-coder-abcd1234"}
    parse_resource(json.loads(json.dumps(doc)))  # the workload reads it: still a valid MetricEval
    one = resource(CURVE, model={"fromRun": {"kind": "PretrainRun", "name": "tiny-coder", "checkpoint": "latest"}})
    doc = spec_document(ctx(one, model_uri="s3://b/run/checkpoints/00000010"))
    assert doc["spec"]["model"] == {"uri": "s3://b/run/checkpoints/00000010"}


class SourceKube:
    """Just enough of a cluster: the source PretrainRun, with the run folder its status names."""

    def __init__(self, source: Optional[dict[str, Any]]):
        self.source = source

    def get_glassbox(self, kind: str, namespace: str, name: str) -> Optional[dict[str, Any]]:
        return self.source


def test_each_waits_for_the_source_manifest_then_resolves_to_its_run_folder(tmp_path) -> None:
    src = example("pretrain-tiny.yaml")
    src["metadata"] = {"name": "tiny-coder", "namespace": "ns", "uid": "abcd1234"}
    run_dir = tmp_path / "ns" / "pretrainrun" / "tiny-coder-abcd1234"
    src["status"] = {"artifacts": {"runUri": str(run_dir)}}
    r = Reconciler(SourceKube(src), config(endpoint=""), LocalRunner(tmp_path / "state"))  # type: ignore[arg-type]
    c = ctx(resource(CURVE), config(endpoint=""))
    lineage, waiting = r._resolve(c, {})
    assert lineage is None and "to publish a checkpoint" in (waiting or "")
    LocalStore(run_dir).write_json("manifest.json", Manifest(kind="PretrainRun", name="tiny-coder").to_json())
    lineage, waiting = r._resolve(c, {})
    assert waiting is None and lineage == {"source": "PretrainRun/tiny-coder@each", "uri": str(run_dir)}
    lineage, waiting = Reconciler(SourceKube(None), config(endpoint=""), LocalRunner(tmp_path / "s")) \
        ._resolve(c, {})  # type: ignore[arg-type]
    assert lineage is None and "to exist" in (waiting or "")
