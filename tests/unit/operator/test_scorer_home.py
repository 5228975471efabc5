"""ScorerService's home: the adaptation Job first, then the InferenceService on the adapted
checkpoint, each running its own `--stage`; status carries adaptation step, loss, eval and checkpoint."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from glassbox_api.manifest import CheckpointEntry, Manifest
from glassbox_api.podcontract import SPEC_FILE
from glassbox_operator.context import STAGE_SERVE, STAGE_TRAIN, Plan
from glassbox_operator.render import render
from glassbox_operator.render.common import ChildState
from glassbox_operator.status import Observation, compute, plan_of

from opkit import ctx, example, resource

ADAPT = example("scorer-adapt-gpu.yaml")
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
RUN = "s3://b/runs/ns/scorerservice/r-1234abcd"
ART = {"runUri": RUN, "manifestUri": f"{RUN}/manifest.json"}


def _res():
    return resource(ADAPT, resources__priorityClassName=None)


def test_adaptation_is_a_job_running_the_train_stage_on_its_own_pool():
    res = _res()
    assert plan_of(res, {}).stage == STAGE_TRAIN
    children = render(ctx(res, plan=Plan(stage=STAGE_TRAIN)))
    assert [c["kind"] for c in children] == ["ConfigMap", "Job"]
    job = children[-1]
    assert job["metadata"]["name"] == "r-adapt-a0"
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"][-4:] == ["--spec", SPEC_FILE, "--stage", "train"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"]["glassbox.dev/pool"] == "h100"


def test_serving_loads_the_adapted_checkpoint_in_kserve_container():
    res = _res()
    adapted = f"{RUN}/checkpoints/00000800"
    children = render(ctx(res, plan=Plan(stage=STAGE_SERVE), model_uri=adapted))
    isvc = children[-1]
    assert isvc["kind"] == "InferenceService" and isvc["metadata"]["name"] == "r"
    pred = isvc["spec"]["predictor"]
    c = pred["containers"][0]
    assert c["name"] == "kserve-container" and c["command"][-2:] == ["--stage", "serve"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v1/models/r", "port": 8080}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["STORAGE_URI"] == adapted and env["GLASSBOX_MODEL_DIR"] == "/mnt/models"
    assert pred["minReplicas"] == pred["maxReplicas"] == 4
    mounted = json.loads(children[0]["data"]["resource.yaml"])["spec"]
    assert mounted["model"] == {"uri": adapted} and mounted["adaptation"]["size"] == 102400


def test_a_scorer_without_adaptation_serves_at_once():
    res = resource(example("scorer-gpu.yaml"), resources__priorityClassName=None)
    assert plan_of(res, {}).stage == STAGE_SERVE
    assert [c["kind"] for c in render(ctx(res))][-1] == "InferenceService"


def test_the_local_backend_runs_each_stage_as_a_process_and_serves_on_a_free_port():
    res = resource(example("scorer-tiny.yaml"))
    train = render(ctx(res, plan=Plan(stage=STAGE_TRAIN)))[-1]
    assert train["kind"] == "LocalProcess" and train["metadata"]["name"] == "r-adapt-a0"
    assert train["spec"]["argv"][6:8] == ["--stage", "train"]
    serve = render(ctx(res, plan=Plan(stage=STAGE_SERVE)))[-1]
    assert serve["spec"]["argv"][6:8] == ["--stage", "serve"]


def _manifest(done: bool) -> Manifest:
    m = Manifest(kind="ScorerService", name="r", namespace="ns", uid="1234abcd", total_steps=800)
    if done:
        m = m.with_checkpoint(CheckpointEntry(step=800, tokens=102400, loss=0.0412345, path="checkpoints/00000800",
                                              evals={"rougeL": 0.9123456, "rougeL_first": 0.31}, resumable=False))
    return m


def test_status_moves_from_adapting_to_serving_with_progress():
    res = _res()
    running = compute(res, {}, plan_of(res, {}), Observation(workload=ChildState("Running"), artifacts=ART),
                      _manifest(False), NOW)
    assert running.status["phase"] == "Running"
    assert running.status["progress"] == {"totalSteps": 800, "done": "0/800"}
    old = running.status
    done = compute(res, old, plan_of(res, old), Observation(workload=ChildState("Succeeded"), artifacts=ART),
                   _manifest(True), NOW)
    assert done.plan.stage == STAGE_SERVE and done.status["phase"] == "Pending"
    prog = done.status["progress"]
    assert prog["adaptationStep"] == 800 and prog["done"] == "800/800" and prog["adaptationLoss"] == 0.0412
    assert prog["adaptationEval"] == {"rougeL": 0.9123, "rougeL_first": 0.31}
    assert prog["latestCheckpoint"] == f"{RUN}/checkpoints/00000800" and prog["checkpoint"] == "step-800"
    old = done.status
    assert plan_of(res, old).stage == STAGE_SERVE
    ready = compute(res, old, plan_of(res, old), Observation(
        workload=ChildState("Running", "Ready", ready=True, endpoint="http://r.ns.example.com"), artifacts=ART,
        replicas=4, selector="serving.kserve.io/inferenceservice=r"), _manifest(True), NOW)
    st = ready.status
    assert st["phase"] == "Ready" and st["readyReplicas"] == 4 and st["endpoint"] == "http://r.ns.example.com"
    assert st["progress"]["adaptationEval"]["rougeL"] == 0.9123


def test_a_failed_adaptation_is_retried_under_the_failure_policy():
    res = _res()
    out = compute(res, {"phase": "Running"}, plan_of(res, {}), Observation(
        workload=ChildState("Failed", "BackoffLimitExceeded", finished_at="2026-01-01T11:00:00Z"), artifacts=ART), None, NOW)
    assert out.plan.stage == STAGE_TRAIN and out.plan.attempt == 1 and out.status["retries"] == 1


def test_the_pod_contract_names_a_service_stage():
    import pytest

    from glassbox_api.podcontract import argv

    assert argv("ScorerService", "/s.yaml", "serve")[-4:] == ["--spec", "/s.yaml", "--stage", "serve"]
    assert argv("PretrainRun", "/s.yaml")[-2:] == ["--spec", "/s.yaml"]
    with pytest.raises(ValueError, match="stage"):
        argv("ScorerService", "/s.yaml", "deploy")


def test_the_generator_endpoint_key_comes_from_its_secret_by_reference():
    res = resource(example("scorer-gpu.yaml"), resources__priorityClassName=None,
                   generator={"endpoint": {"url": "http://vllm.llm:8000/v1", "model": "flan", "apiKeySecret": "llm-key"}})
    c = render(ctx(res))[-1]["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["OPENAI_API_KEY"] == {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm-key", "key": "OPENAI_API_KEY"}}}
    plain = render(ctx(resource(example("scorer-gpu.yaml"), resources__priorityClassName=None)))[-1]
    assert "OPENAI_API_KEY" not in {e["name"] for e in plain["spec"]["predictor"]["containers"][0]["env"]}
