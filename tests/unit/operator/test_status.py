"""Table tests of the status function: phases, conditions, events, retries with backoff, suspend,
fromRun waiting, services, terminal states; plus the operator config and the status patch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from glassbox_api.manifest import CheckpointEntry, Manifest
from glassbox_operator.config import ConfigError, load_config, parse_config
from glassbox_operator.context import STAGE_SERVE, STAGE_TRAIN, Plan
from glassbox_operator.reconcile import status_patch
from glassbox_operator.render.common import ChildState, RenderError
from glassbox_operator.status import Observation, compute, iso, plan_of

from opkit import ROOT, example, resource

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
PRETRAIN = example("pretrain-tiny.yaml")
ART = {"runUri": "s3://b/runs/ns/pretrainrun/r-1234abcd", "manifestUri": "s3://b/runs/ns/pretrainrun/r-1234abcd/manifest.json"}


def conds(status):
    return {c["type"]: c for c in status["conditions"]}


def run(res, old=None, ws=ChildState(), manifest=None, now=NOW, **obs):
    old = old or {}
    return compute(res, old, plan_of(res, old), Observation(workload=ws, artifacts=ART, **obs), manifest, now)


@pytest.mark.parametrize(
    "old_phase,ws,phase,progressing,event",
    [
        (None, ChildState(), "Pending", ("True", "Creating"), "Created"),
        ("Pending", ChildState("Pending", "PodsPending", "waiting"), "Pending", ("True", "PodsPending"), None),
        ("Pending", ChildState("Running", "PodsRunning"), "Running", ("True", "Running"), "Started"),
        ("Running", ChildState("Running", "PodsRunning"), "Running", ("True", "Running"), None),
        ("Running", ChildState("Succeeded", "Completed", finished_at="2026-01-01T11:59:00Z"), "Succeeded", ("False", "Completed"), "Succeeded"),
    ],
)
def test_batch_phases(old_phase, ws, phase, progressing, event):
    res = resource(PRETRAIN)
    out = run(res, {"phase": old_phase} if old_phase else None, ws)
    st = out.status
    assert st["phase"] == phase and st["observedGeneration"] == 1
    c = conds(st)
    assert (c["Progressing"]["status"], c["Progressing"]["reason"]) == progressing
    assert all(x["observedGeneration"] == 1 for x in st["conditions"])
    assert [e.reason for e in out.events] == ([event] if event else [])
    assert out.apply and out.plan == Plan()
    if phase == "Succeeded":
        assert st["completionTime"] == "2026-01-01T11:59:00Z" and c["Succeeded"]["status"] == "True"
    if phase == "Running":
        assert "startTime" in st


def test_condition_transition_time_moves_only_on_status_change():
    res = resource(PRETRAIN)
    first = run(res, {"phase": "Pending"}, ChildState("Running"), now=NOW).status
    later = run(res, first, ChildState("Running"), now=NOW + timedelta(minutes=5)).status
    assert conds(later)["Progressing"]["lastTransitionTime"] == iso(NOW)


def test_failed_attempt_backs_off_then_retries_then_fails():
    res = resource(PRETRAIN, failurePolicy={"maxRetries": 2, "backoffSeconds": 30})
    failed = ChildState("Failed", "BackoffLimitExceeded", "pod failed", finished_at=iso(NOW))
    # attempt 0 failed just now: back off 30s, keep the failed child, no new attempt yet
    out = run(res, {"phase": "Running", "retries": 0}, failed, now=NOW + timedelta(seconds=10))
    assert out.plan.attempt == 0 and not out.apply and 19 <= out.requeue_after <= 20
    assert conds(out.status)["Progressing"]["reason"] == "BackingOff"
    assert out.status["phase"] == "Pending" and "retry 1 of" in out.status["message"]  # nothing runs meanwhile
    assert [e.reason for e in out.events] == ["AttemptFailed"] and out.events[0].type == "Warning"
    # backoff elapsed: attempt 1, a Warning event names the reason and the checkpoint resumed from
    m = Manifest(checkpoints=[CheckpointEntry(step=40, tokens=1000, path="checkpoints/00000040")])
    out = run(res, out.status, failed, manifest=m, now=NOW + timedelta(seconds=31))
    assert out.plan.attempt == 1 and out.status["retries"] == 1 and out.apply
    assert out.events[-1].reason == "Retrying" and "resuming from step 40" in out.events[-1].message
    assert out.status["progress"]["latestCheckpoint"] == ART["runUri"] + "/checkpoints/00000040"
    # attempt 1 failed: the second backoff doubles (60s)
    out2 = run(res, out.status, failed, now=NOW + timedelta(seconds=59))
    assert out2.plan.attempt == 1 and not out2.apply
    # the last allowed attempt fails: Failed, reason in a condition and a Warning event
    out3 = run(res, {"phase": "Running", "retries": 2}, failed)
    assert out3.status["phase"] == "Failed"
    c = conds(out3.status)["Failed"]
    assert (c["status"], c["reason"]) == ("True", "RetriesExhausted") and "BackoffLimitExceeded" in c["message"]
    assert [(e.type, e.reason) for e in out3.events] == [("Warning", "RetriesExhausted")]


def test_no_retries_configured_fails_with_workload_failed():
    res = resource(PRETRAIN, failurePolicy={"maxRetries": 0, "backoffSeconds": 1})
    out = run(res, {"phase": "Running"}, ChildState("Failed", "AppFailed", "boom"))
    assert out.status["phase"] == "Failed" and conds(out.status)["Failed"]["reason"] == "WorkloadFailed"


def test_terminal_resources_stay_terminal_and_leave_children_alone():
    res = resource(PRETRAIN)
    done = run(res, {"phase": "Running"}, ChildState("Succeeded")).status
    out = run(res, done, ChildState())  # the child was garbage-collected: nothing is recreated
    assert out.status["phase"] == "Succeeded" and not out.apply and not out.events


def test_suspend_tears_down_and_resume_comes_back():
    res = resource(PRETRAIN, suspend=True)
    out = run(res, {"phase": "Running"}, ChildState("Running"))
    assert out.plan.teardown and out.status["phase"] == "Suspended"
    assert conds(out.status)["Suspended"]["status"] == "True"
    assert [e.reason for e in out.events] == ["Suspended"]
    back = run(resource(PRETRAIN), out.status, ChildState())
    assert not back.plan.teardown and back.status["phase"] == "Pending"
    assert "Resumed" in [e.reason for e in back.events]


def test_from_run_waits_then_resolves():
    doc = example("finetune-tiny.yaml")
    res = resource(doc, model={"fromRun": {"kind": "PretrainRun", "name": "src"}})
    wait = run(res, None, waiting="waiting for PretrainRun/src to publish a checkpoint")
    assert wait.status["phase"] == "Pending" and not wait.apply
    c = conds(wait.status)["ModelResolved"]
    assert (c["status"], c["reason"]) == ("False", "WaitingForCheckpoint")
    lineage = {"source": "PretrainRun/src@latest", "uri": "s3://b/src/checkpoints/00000010", "step": 10}
    ok = run(res, wait.status, lineage=lineage)
    assert ok.status["lineage"] == lineage and conds(ok.status)["ModelResolved"]["status"] == "True"
    assert "ModelResolved" in [e.reason for e in ok.events]


def test_refused_resource_is_failed_with_reason_condition_and_warning():
    res = resource(PRETRAIN)
    out = run(res, None, error=RenderError("UnknownNodePool", "accelerator 'a100' is not a configured node pool"))
    assert out.status["phase"] == "Failed" and not out.apply
    assert conds(out.status)["Failed"]["reason"] == "UnknownNodePool"
    assert [(e.type, e.reason) for e in out.events] == [("Warning", "UnknownNodePool")]


@pytest.mark.parametrize(
    "ws,phase,ready,endpoint",
    [
        (ChildState(), "Pending", "False", None),
        (ChildState("Pending", "RevisionMissing", "no revision"), "Pending", "False", None),
        (ChildState("Running", "Ready", ready=True, endpoint="http://s.ns.example.com"), "Ready", "True", "http://s.ns.example.com"),
    ],
)
def test_service_readiness_and_endpoint(ws, phase, ready, endpoint):
    res = resource(example("scorer-gpu.yaml"), replicas=2)
    out = run(res, None, ws, replicas=2, selector="serving.kserve.io/inferenceservice=r")
    st = out.status
    assert st["phase"] == phase and conds(st)["Ready"]["status"] == ready
    assert st.get("endpoint") == endpoint and st["replicas"] == 2
    assert st["readyReplicas"] == (2 if ready == "True" else 0) and st["selector"].endswith("=r")


def test_dialogbot_moves_from_training_to_serving():
    from glassbox_operator.render.common import artifacts

    from opkit import ctx

    res = resource(example("dialogbot-gpu.yaml"))
    assert plan_of(res, {}).stage == STAGE_TRAIN
    old = {"phase": "Running"}
    obs = Observation(workload=ChildState("Succeeded"), artifacts=artifacts(ctx(res)))
    out = compute(res, old, plan_of(res, old), obs, None, NOW)
    assert out.plan.stage == STAGE_SERVE and out.status["phase"] == "Pending"
    assert plan_of(res, out.status).stage == STAGE_SERVE


def test_status_validates_against_the_api_types():
    res = resource(PRETRAIN)
    m = Manifest(total_steps=100, checkpoints=[CheckpointEntry(step=10, tokens=5, loss=2.5, path="checkpoints/00000010")])
    st = run(res, {"phase": "Pending"}, ChildState("Running"), manifest=m).status
    res.info.status.model_validate(st)
    assert st["progress"] == {"totalSteps": 100, "step": 10, "loss": 2.5, "tokens": 5, "checkpoints": 1,
                              "latestCheckpoint": ART["runUri"] + "/checkpoints/00000010",
                              "done": "10/100", "checkpoint": "step-10"}


def test_status_patch_sends_changes_and_nulls():
    assert status_patch({"phase": "Ready", "endpoint": "x"}, {"phase": "Suspended"}) == {"phase": "Suspended", "endpoint": None}
    assert status_patch({"phase": "Running"}, {"phase": "Running"}) == {}


def test_config_reads_the_charts_values_format(tmp_path):
    import yaml

    values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "OperatorConfig",
           **{k: values[k] for k in ("nodePools", "storage", "defaults")}}
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(doc))
    cfg = load_config(p)
    assert cfg.pool("tpu-v5e-16").tpu.hosts == 4 and cfg.pool("h100").extended_resource == "nvidia.com/gpu"
    assert cfg.storage.credentials_secret == values["storage"]["credentialsSecret"]


@pytest.mark.parametrize(
    "doc,needle",
    [
        ({"nodePools": {"h100": {"resouce": "nvidia.com/gpu"}}}, "resouce"),
        ({"storage": {"secure": "maybe"}}, "storage.secure"),
        ({"defaults": {"backend": "slurm"}}, "defaults.backend"),
    ],
)
def test_config_errors_name_the_key(doc, needle):
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert needle in str(err.value)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.yaml")
