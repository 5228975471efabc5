"""The four conditions GitOps tools read (Ready, Reconciling, Stalled, Complete), from the pure status
function, in every situation a resource can be in; and the permanent-failure path that makes a
resource Stalled at once instead of retrying it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from glassbox_api.conditions import Cond, Phase, Reason
from glassbox_api.manifest import CheckpointEntry, Manifest
from glassbox_operator.render.common import ChildState, RenderError
from glassbox_operator.status import Observation, compute, plan_of

from opkit import example, resource
from test_status import ART, NOW, PRETRAIN, conds, run

T, F = "True", "False"


def gitops(status):
    c = conds(status)
    return tuple((c[t]["status"], c[t]["reason"]) if t in c else None for t in ("Ready", "Reconciling", "Stalled", "Complete"))


FAILED_AT = (NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("old,ws,kw,phase,expect", [
    # children being created: Reconciling (kstatus InProgress, Argo Progressing)
    ({}, ChildState(), {}, "Pending", ((F, "Creating"), (T, "Creating"), (F, "NotStalled"), (F, "NotFinished"))),
    # queued by Kueue (a suspended Job)
    ({"phase": "Pending"}, ChildState("Pending", "Queued", "the Job is suspended (queued by Kueue)"), {}, "Pending",
     ((F, "Queued"), (T, "Queued"), (F, "NotStalled"), (F, "NotFinished"))),
    # running normally: Ready (kstatus Current, Argo Healthy)
    ({"phase": "Pending"}, ChildState("Running", "PodsRunning"), {}, "Running",
     ((T, "Running"), (F, "Reconciled"), (F, "NotStalled"), (F, "NotFinished"))),
    # succeeded: Ready and Complete
    ({"phase": "Running"}, ChildState("Succeeded", "Completed", finished_at="2026-01-01T11:59:00Z"), {}, "Succeeded",
     ((T, "Completed"), (F, "Reconciled"), (F, "NotStalled"), (T, "Completed"))),
    # a failed attempt backing off before its retry: still reconciling, not stalled
    ({"phase": "Running"}, ChildState("Failed", "BackoffLimitExceeded", finished_at=FAILED_AT), {}, "Pending",
     ((F, "BackingOff"), (T, "BackingOff"), (F, "NotStalled"), (F, "NotFinished"))),
    # failed for good (retries used up): Stalled (kstatus Failed, Argo Degraded)
    ({"phase": "Running", "retries": 3}, ChildState("Failed", "BackoffLimitExceeded", finished_at=FAILED_AT), {}, "Failed",
     ((F, "RetriesExhausted"), (F, "Reconciled"), (T, "RetriesExhausted"), (F, "NotFinished"))),
    # a permanent failure on the first attempt: Stalled at once, no retry
    ({"phase": "Running"}, ChildState("Failed", "PodFailurePolicy", "exit code 4", permanent=True), {}, "Failed",
     ((F, "PermanentFailure"), (F, "Reconciled"), (T, "PermanentFailure"), (F, "NotFinished"))),
    # refused by the operator's configuration
    ({}, ChildState(), {"error": RenderError("UnknownNodePool", "no such pool")}, "Failed",
     ((F, "UnknownNodePool"), (F, "Reconciled"), (T, "UnknownNodePool"), (F, "NotFinished"))),
    # the apiserver refuses a child: reconciling, with its reason
    ({"phase": "Pending"}, ChildState(), {"refused": ("Forbidden", "denied")}, "Pending",
     ((F, "Forbidden"), (T, "Forbidden"), (F, "NotStalled"), (F, "NotFinished"))),
    # pods cannot be placed
    ({"phase": "Pending"}, ChildState("Pending", "PodsPending"), {"unscheduled": ("Unschedulable", "0/3 nodes")}, "Pending",
     ((F, "Unschedulable"), (T, "Unschedulable"), (F, "NotStalled"), (F, "NotFinished"))),
])
def test_batch_gitops_conditions(old, ws, kw, phase, expect):
    st = run(resource(PRETRAIN), old, ws, **kw).status
    assert st["phase"] == phase
    assert gitops(st) == expect
    assert st["observedGeneration"] == 1 and all(c["observedGeneration"] == 1 for c in st["conditions"])


def test_suspended_is_ready_and_says_suspended():
    st = run(resource(PRETRAIN, suspend=True), {"phase": "Running"}).status
    assert st["phase"] == "Suspended"
    c = conds(st)
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == (T, "Suspended")
    assert c["Suspended"]["status"] == T and c["Reconciling"]["status"] == F and c["Stalled"]["status"] == F


def test_invalid_spec_is_stalled_with_the_reason():
    out = compute(None, {"phase": "Running"}, plan_of(resource(PRETRAIN), {}),
                  Observation(error=RenderError(Reason.INVALID_SPEC, "spec.x: bad"), generation=4), None, NOW)
    c = conds(out.status)
    assert out.status["phase"] == "Failed" and out.status["observedGeneration"] == 4
    assert (c["Stalled"]["status"], c["Stalled"]["reason"]) == (T, "InvalidSpec")
    assert c["Ready"]["status"] == F and not out.apply
    assert [(e.type, e.reason) for e in out.events] == [("Warning", "InvalidSpec")]


def test_a_permanent_failure_is_not_retried_even_with_retries_left():
    res = resource(PRETRAIN)
    assert res.spec.failure_policy.max_retries > 0
    out = run(res, {"phase": "Running"}, ChildState("Failed", "ProcessFailed", "exit code 4", permanent=True))
    assert out.plan.attempt == 0 and out.status["retries"] == 0 and out.requeue_after is None
    assert "not retried" in out.status["message"]
    transient = run(res, {"phase": "Running"}, ChildState("Failed", "ProcessFailed", "exit code 1", finished_at=FAILED_AT))
    assert transient.status["phase"] == "Pending" and transient.requeue_after


def test_a_dialogbot_training_is_reconciling_not_ready_then_serving_is_ready():
    bot = resource(example("dialogbot-tiny.yaml"))
    training = run(bot, {"phase": "Pending"}, ChildState("Running", "PodsRunning")).status
    assert training["phase"] == "Running"
    assert gitops(training)[:3] == ((F, "Training"), (T, "Training"), (F, "NotStalled"))
    assert gitops(training)[3] is None  # a service is never Complete
    old = {"phase": "Pending", "conditions": [{"type": "Trained", "status": T, "reason": "TrainingSucceeded",
                                               "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    serving = run(bot, old, ChildState("Running", "Ready", ready=True, endpoint="http://x")).status
    assert serving["phase"] == "Ready"
    assert gitops(serving)[:3] == ((T, "Serving"), (F, "Reconciled"), (F, "NotStalled"))
    deploying = run(bot, old, ChildState("Pending", "Deploying", "waiting")).status
    assert gitops(deploying)[:2] == ((F, "Deploying"), (T, "Deploying"))


def test_a_finished_run_from_before_gets_the_gitops_conditions_without_changing_phase():
    old = {"phase": "Succeeded", "message": "succeeded", "conditions": [
        {"type": "Succeeded", "status": T, "reason": "Completed", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    out = run(resource(PRETRAIN), old, ChildState("Succeeded"))
    assert out.status["phase"] == "Succeeded" and not out.apply
    assert gitops(out.status) == ((T, "Completed"), (F, "Reconciled"), (F, "NotStalled"), (T, "Completed"))


def test_a_spec_change_moves_observed_generation_on_a_pass_that_changes_nothing_else():
    first = run(resource(PRETRAIN), {"phase": "Pending"}, ChildState("Running", "PodsRunning")).status
    again = run(resource(PRETRAIN, generation=2), first, ChildState("Running", "PodsRunning")).status
    assert first["observedGeneration"] == 1 and again["observedGeneration"] == 2
    assert {c["observedGeneration"] for c in again["conditions"]} == {2}


def test_progress_reads_as_a_person_reads_it():
    m = Manifest(total_steps=104, checkpoints=[CheckpointEntry(step=78, tokens=5, loss=5.853981201465313,
                                                               evals={"perplexity": 341.23456}, path="checkpoints/00000078")])
    prog = run(resource(PRETRAIN), {"phase": "Running"}, ChildState("Running"), manifest=m).status["progress"]
    assert prog["done"] == "78/104" and prog["loss"] == 5.854 and prog["checkpoint"] == "step-78"
    assert prog["perplexity"] == 341.23 and prog["latestCheckpoint"] == ART["runUri"] + "/checkpoints/00000078"


def test_every_phase_and_condition_written_is_in_the_vocabulary():
    st = run(resource(PRETRAIN), {}, ChildState()).status
    assert Phase(st["phase"])
    assert {c["type"] for c in st["conditions"]} <= {c.value for c in Cond}


def test_reconciling_always_says_what_it_waits_for():
    """kstatus shows the Reconciling message: it is the status message when the cause has none."""
    st = run(resource(PRETRAIN), {}, ChildState()).status
    assert conds(st)["Reconciling"]["message"] == st["message"] == "creating attempt 0"
