"""GitOps health of the status contract (DESIGN.md section 3), asked of the real libraries: Flux's
kstatus (sigs.k8s.io/cli-utils status.Compute) and Argo CD's way of running the chart's health
script (gopher-lua, no string library), both in hack/gitops' glassbox-health. Synthetic objects, one
per situation; tests/cluster/operator/test_gitops.py asks the same of real objects."""

from __future__ import annotations

import json

import pytest

from tests.support import gitops

T = "2026-01-01T00:00:00Z"


def cond(ctype: str, status: str, reason: str, message: str = "") -> dict:
    return {"type": ctype, "status": status, "reason": reason, "message": message, "lastTransitionTime": T}


def resource(kind: str = "PretrainRun", generation: int = 1, observed: int | None = 1, phase: str = "Pending",
             conditions: tuple[dict, ...] = (), message: str = "", **meta) -> dict:
    status: dict = {"phase": phase, "conditions": list(conditions)}
    if observed is not None:
        status["observedGeneration"] = observed
    if message:
        status["message"] = message
    return {"apiVersion": "glassbox.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "r", "namespace": "ns", "generation": generation, **meta}, "status": status}


def reconciling(reason: str, message: str) -> tuple[dict, ...]:
    return (cond("Reconciling", "True", reason, message), cond("Ready", "False", reason, message),
            cond("Stalled", "False", reason))


def stalled(reason: str, message: str) -> tuple[dict, ...]:
    return (cond("Stalled", "True", reason, message), cond("Ready", "False", reason, message),
            cond("Reconciling", "False", reason))


RUNNING = (cond("Ready", "True", "Running", "2 workers running"), cond("Reconciling", "False", "Running"),
           cond("Stalled", "False", "Running"))

# situation -> (object, kstatus, Argo CD health, a part of each tool's message)
TABLE = {
    "spec just changed": (resource(generation=2, observed=1, phase="Running", conditions=RUNNING),
                          "InProgress", "Progressing", "generation"),
    "children being created": (resource(conditions=reconciling("Creating", "creating the RayJob")),
                               "InProgress", "Progressing", "creating the RayJob"),
    "queued by Kueue": (resource(conditions=reconciling("Queued", "the Job is suspended (queued by Kueue)")),
                        "InProgress", "Progressing", "queued by Kueue"),
    "retrying after a transient failure": (
        resource(conditions=reconciling("BackingOff", "attempt 0 failed (BackoffLimitExceeded); retrying in 2s")),
        "InProgress", "Progressing", "retrying in 2s"),
    "running": (resource(phase="Running", conditions=RUNNING), "Current", "Healthy", ""),
    "succeeded": (resource(phase="Succeeded", conditions=(
                      cond("Ready", "True", "Succeeded", "finished"), cond("Complete", "True", "Succeeded", "finished"),
                      cond("Reconciling", "False", "Succeeded"), cond("Stalled", "False", "Succeeded"))),
                  "Current", "Healthy", ""),
    "failed for good": (resource(phase="Failed", conditions=stalled("RetriesExhausted", "attempt 2 failed: BackoffLimitExceeded")),
                        "Failed", "Degraded", "BackoffLimitExceeded"),
    "invalid spec": (resource(phase="Failed", conditions=stalled("InvalidSpec", "spec.resources.accelerator: unknown pool a100")),
                     "Failed", "Degraded", "unknown pool a100"),
    "suspended": (resource(kind="ScorerService", generation=3, observed=3, phase="Suspended", conditions=(
                      cond("Suspended", "True", "Suspended", "spec.suspend is true"),
                      cond("Ready", "True", "Suspended", "spec.suspend is true"),
                      cond("Reconciling", "False", "Suspended"), cond("Stalled", "False", "Suspended"))),
                  "Current", "Suspended", ""),
    "serving": (resource(kind="ScorerService", phase="Ready", conditions=(
                    cond("Ready", "True", "Serving", "2/2 replicas ready at http://sc.ns.example.com"),
                    cond("Reconciling", "False", "Serving"), cond("Stalled", "False", "Serving"))),
                "Current", "Healthy", ""),
}


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, str]]:
    """Every row through one run of the helper (it is built on first use; a failure is an error)."""
    out = gitops.health(obj for obj, *_ in TABLE.values())
    print("\n" + gitops.table(zip(TABLE, out)))
    return dict(zip(TABLE, out))


@pytest.mark.parametrize("situation", list(TABLE))
def test_both_tools_read_the_status_contract(results, situation):
    _, kstatus, argo, words = TABLE[situation]
    r = results[situation]
    assert (r["kstatus"], r["argo"]) == (kstatus, argo), r
    assert words in r["kstatusMessage"] and words in r["argoMessage"], r


def test_argocd_picks_the_script_from_the_argocd_cm_snippet_for_every_kind(results):
    """The snippet users add (examples/gitops/argocd/argocd-cm.yaml, key `glassbox.dev/*`) gives
    every glassbox kind this script, found by group/kind as Argo CD finds it; other groups get none."""
    assert gitops.health((obj for obj, *_ in TABLE.values()), argocd_cm=gitops.ARGOCD_CM) == list(results.values())
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "ns"}}
    other = gitops.health([job], argocd_cm=gitops.ARGOCD_CM)[0]
    assert other["argo"] == "" and "leaves it out" in other["argoMessage"]


def test_progressing_says_which_generation_it_waits_for(results):
    assert results["spec just changed"]["argoMessage"] == "waiting for the operator to observe generation 2"


def test_messages_come_from_the_deciding_condition_or_status_message():
    running = resource(phase="Running", conditions=RUNNING)
    failed = resource(phase="Failed", message="PermanentFailure: data source s3://b/x does not exist",
                      conditions=(cond("Stalled", "True", "PermanentFailure"), cond("Ready", "False", "PermanentFailure")))
    pending = resource(message="waiting for the operator", conditions=(cond("Ready", "False", "Pending"),))
    r = gitops.health([running, failed, pending])
    assert r[0]["argoMessage"] == "2 workers running"
    assert (r[1]["kstatus"], r[1]["argo"]) == ("Failed", "Degraded")
    assert r[1]["argoMessage"] == "PermanentFailure: data source s3://b/x does not exist"
    assert (r[2]["kstatus"], r[2]["argo"]) == ("InProgress", "Progressing")
    assert r[2]["argoMessage"] == "waiting for the operator"


def test_stalled_wins_over_ready_and_suspended_over_ready():
    """A terminal failure is never Healthy, and a suspended resource (Ready=True, reason Suspended,
    as the contract has it) is Suspended in Argo CD even without its Suspended condition."""
    both = resource(phase="Failed", conditions=(cond("Ready", "True", "Running"), cond("Stalled", "True", "WorkloadFailed", "exit 2")))
    ready_suspended = resource(phase="Suspended", conditions=(cond("Ready", "True", "Suspended", "suspended"),))
    assert gitops.verdict([both, ready_suspended]) == [("Failed", "Degraded"), ("Current", "Suspended")]


def test_before_the_operators_first_pass():
    """No status yet: Argo CD waits (Progressing); kstatus has nothing to go on and says Current
    (cli-utils treats a resource without status or conditions as current), so Flux's `wait` relies
    on the operator writing status promptly."""
    fresh = resource()
    del fresh["status"]
    no_observed = resource(observed=None, conditions=RUNNING)
    r = gitops.health([fresh, no_observed])
    assert (r[0]["kstatus"], r[0]["argo"]) == ("Current", "Progressing")
    assert r[0]["argoMessage"] == "waiting for the operator to observe generation 1"
    assert (r[1]["kstatus"], r[1]["argo"]) == ("Current", "Progressing")


def test_deleting():
    gone = resource(phase="Running", conditions=RUNNING, deletionTimestamp=T, finalizers=["glassbox.dev/artifact-cleanup"])
    r = gitops.health([gone])[0]
    assert (r["kstatus"], r["argo"]) == ("Terminating", "Progressing") and r["argoMessage"] == "Pending deletion"


def test_every_kind_alike():
    """One script for the whole group: the verdict depends on the status, never on the kind."""
    kinds = ("PretrainRun", "ShardedFinetune", "KGHarvest", "MetricEval", "ScorerService", "DialogBot")
    objs = [resource(kind=k, phase="Running", conditions=RUNNING) for k in kinds]
    objs += [resource(kind=k, phase="Failed", conditions=stalled("InvalidSpec", "bad")) for k in kinds]
    assert gitops.verdict(objs) == [("Current", "Healthy")] * len(kinds) + [("Failed", "Degraded")] * len(kinds)


def test_lists_as_kubectl_prints_them_and_lua_arrays_from_one():
    """A `kubectl get -o json` List is expanded; conditions reach Lua as a 1-based array."""
    items = [resource(phase="Running", conditions=RUNNING), resource(phase="Failed", conditions=stalled("InvalidSpec", "bad"))]
    assert gitops.verdict([{"apiVersion": "v1", "kind": "List", "items": items}]) == [("Current", "Healthy"), ("Failed", "Degraded")]


def test_a_script_error_is_unknown_and_fails_the_helper(tmp_path):
    """As Argo CD shows a broken script: health Unknown with the error; the helper exits 1. The
    string library is not there, as in Argo CD without useOpenLibs."""
    script = tmp_path / "health.lua"
    script.write_text('return {status = string.format("%s", "Healthy")}\n')
    proc = gitops.run_health([resource()], script)
    assert proc.returncode == 1
    r = json.loads(proc.stdout)
    assert r["argo"] == "Unknown" and "string" in r["argoMessage"], r
    script.write_text('return {status = "Fine"}\n')
    r = gitops.health([resource()], script)[0]
    assert (r["argo"], r["argoMessage"]) == ("Unknown", "Lua returned an invalid health status")
