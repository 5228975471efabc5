"""The operator's side of KGHarvest: an Indexed Job with one relation per index when workers > 1,
one plain Job otherwise, and progress read from the manifest the workload writes."""

from __future__ import annotations

import pytest

from glassbox_api.manifest import Manifest
from glassbox_operator.kinds.kgharvest import HOME
from glassbox_operator.render import render
from tests.unit.operator.opkit import ctx, example, resource


def _job(children):
    (job,) = [c for c in children if c["kind"] == "Job"]
    return job


def test_several_workers_render_an_indexed_job_with_one_relation_per_index():
    res = resource(example("kgharvest-gpu.yaml"), resources__workers=2)
    spec = _job(render(ctx(res)))["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == len(res.spec.relations) == 3
    assert spec["parallelism"] == 2
    assert spec["backoffLimit"] == 0 and spec["podFailurePolicy"]["rules"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_parallelism_is_capped_at_the_relations():
    spec = _job(render(ctx(resource(example("kgharvest-gpu.yaml"), resources__workers=8))))["spec"]
    assert (spec["completions"], spec["parallelism"]) == (3, 3)


def test_one_worker_renders_a_plain_job():
    spec = _job(render(ctx(resource(example("kgharvest-gpu.yaml")))))["spec"]
    assert "completionMode" not in spec and "completions" not in spec


def test_other_kinds_still_refuse_several_workers_on_job():
    from glassbox_api.resource import InvalidResource

    doc = example("pretrain-gpu.yaml")
    doc["spec"]["resources"] = {**doc["spec"]["resources"], "backend": "job", "workers": 2}
    with pytest.raises(InvalidResource, match="single node"):
        resource(doc)


def test_progress_reads_relations_tuples_and_the_current_relation():
    res = resource(example("kgharvest-gpu.yaml"))
    m = Manifest(final={"relationsDone": 1, "relationsTotal": 3, "tuples": 40, "currentRelation": "ingredient_of",
                        "stage": "search"})
    assert HOME.progress(res, m, "s3://b/run") == {"relationsTotal": 3, "relationsDone": 1, "tuples": 40,
                                                   "currentRelation": "ingredient_of", "stage": "search", "done": "1/3"}
    done = Manifest(state="completed", final={"relationsDone": 3, "tuples": 99, "kg": "s3://b/run/kg.jsonl"})
    got = HOME.progress(res, done, "s3://b/run")
    assert got["done"] == "3/3" and got["knowledgeGraph"] == "s3://b/run/kg.jsonl" and "currentRelation" not in got
    assert HOME.progress(res, None, None) == {"relationsTotal": 3, "done": "0/3"}
