"""Status: one pure function of (resource, its last status, what the pass observed, the run manifest,
now) -> the new status (conditions included), the events to post and the plan of children. Nothing
else writes status; the reconcile pass observes, calls compute, acts, and writes the result once.

Every kind gets the four conditions GitOps tools read without configuration (gitops.py says how
they follow from the rest); what is specific to a kind comes from its home (kinds/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from glassbox_api.conditions import ACTIVE_PHASES, TERMINAL_PHASES, Cond, Phase, Reason
from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .gitops import Conditions, gitops_conditions, iso, parse_time
from .kinds import home
from .kinds.base import STAGE_SERVE, STAGE_TRAIN, Choice, Plan, Rival
from .render.common import MISSING, ChildState, RenderError

MAX_BACKOFF = 3600.0


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the resource: Normal or Warning, CamelCase reason."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    """What a pass saw before deciding."""

    workload: ChildState = MISSING
    """The plan's workload child (or the InferenceService of a service)."""
    artifacts: Optional[dict[str, str]] = None
    lineage: Optional[dict[str, Any]] = None
    """fromRun resolved: {source, uri, step}."""
    waiting: Optional[str] = None
    """Why the model reference cannot be resolved yet (the source has no such checkpoint)."""
    error: Optional[RenderError] = None
    """The resource cannot run with this operator configuration, or its spec is invalid (terminal)."""
    generation: Optional[int] = None
    """metadata.generation, for a resource whose spec could not be parsed (resource is None)."""
    replicas: Optional[int] = None
    selector: Optional[str] = None
    unreadable: Optional[str] = None
    """Why the run manifest could not be read (store down, bad endpoint, corrupt JSON)."""
    refused: Optional[tuple[str, str]] = None
    """(reason, message) of an apiserver refusal of a child read or write (Forbidden, Invalid, ...)."""
    unscheduled: Optional[tuple[str, str]] = None
    """(reason, message) when the workload's pods cannot be created (FailedCreate) or placed."""
    served: Optional[int] = None
    """Items the ready replicas' /metrics count (KindHome.served), when any replica answered."""
    rival: Optional[Rival] = None
    """The serving model's run manifest, read to compare a newly trained candidate (KindHome.rival_run)."""
    kept: Optional[ChildState] = None
    """A service retraining: its InferenceService, which keeps serving the old model meanwhile."""


@dataclass
class Outcome:
    status: dict[str, Any]
    plan: Plan
    events: list[Event] = field(default_factory=list)
    apply: bool = True
    """Apply the plan's children (False: leave the children as they are)."""
    requeue_after: Optional[float] = None
    choice: Optional[Choice] = None
    """Services that retrain: the checkpoint to serve under the outcome's plan (KindHome.choose)."""


def is_service(resource: Resource) -> bool:
    return home(resource.info.kind).service


def plan_of(resource: Resource, old: dict[str, Any]) -> Plan:
    """The plan the last status implies: the attempt (retries so far) and the stage."""
    stage = home(resource.info.kind).stage_of(resource, old)
    return Plan(attempt=int(old.get("retries") or 0), stage=stage, teardown=bool(resource.spec.suspend))


def backoff_seconds(resource: Resource, attempt: int) -> float:
    policy = resource.spec.failure_policy
    return min(float(policy.backoff_seconds) * (2 ** attempt), MAX_BACKOFF)


def progress(resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
    """Kind-specific progress from the run manifest (None when nothing is published)."""
    return home(resource.info.kind).progress(resource, manifest, run_uri)


class _Pass:
    """The status under construction: the carried-over fields, the conditions, the events."""

    def __init__(self, old: dict[str, Any], generation: Optional[int], plan: Plan, now: datetime):
        self.old, self.now, self.now_s = old, now, iso(now)
        self.old_phase = old.get("phase")
        self.conds = Conditions(old.get("conditions") or [], self.now_s, generation)
        self.st: dict[str, Any] = {"observedGeneration": generation} if generation is not None else {}
        self.out = Outcome(status=self.st, plan=plan)

    def event(self, etype: str, reason: str, message: str) -> None:
        self.out.events.append(Event(etype, reason, message))

    def finish(self, phase: Phase, message: str, etype: str = "Normal", reason: Optional[str] = None) -> Outcome:
        self.st["phase"] = phase.value
        self.st["message"] = message[:4096]
        if phase != self.old_phase and reason:
            self.event(etype, reason, message)
        return self.out


def compute(resource: Optional[Resource], old: dict[str, Any], plan: Plan, obs: Observation,
            manifest: Optional[Manifest], now: datetime) -> Outcome:
    """The new status and plan. `plan` is plan_of(resource, old); obs was observed for it.
    resource is None only when its spec could not be parsed (obs.error says why)."""
    gen = resource.metadata.get("generation") if resource is not None else obs.generation
    p = _Pass(old, gen, plan, now)
    if resource is None:
        assert obs.error is not None, "an unparsed resource comes with the reason"
        out = _invalid(p, obs.error)
        service = False
    else:
        service = is_service(resource)
        _carry(p, resource, plan, obs, manifest)
        out = _refused(p, obs.refused) if obs.refused else _decide(p, resource, plan, obs)
        if not obs.refused and obs.error is None:
            _promotion(p, resource, obs, manifest)
    _store_condition(p, obs.unreadable)
    _applied_condition(p, obs.refused)
    active = out.apply and out.plan == plan and out.status.get("phase") in ACTIVE_PHASES
    _scheduled_condition(p, obs.unscheduled if active and not plan.teardown else None)
    if "progress" not in p.st and old.get("progress"):
        p.st["progress"] = old["progress"]  # the store was unreadable: keep what we knew
    gitops_conditions(p.conds, Phase(p.st["phase"]), batch=not service, stage=out.plan.stage, message=p.st.get("message") or "")
    p.st["conditions"] = p.conds.listed()
    return out


def _carry(p: _Pass, resource: Resource, plan: Plan, obs: Observation, manifest: Optional[Manifest]) -> None:
    """What every status of a parsed resource has: retries, times, artifacts, lineage, progress, replicas."""
    for k in ("startTime", "completionTime", "lineage"):
        if p.old.get(k) is not None:
            p.st[k] = p.old[k]
    p.st["retries"] = plan.attempt
    if obs.artifacts:
        p.st["artifacts"] = obs.artifacts
    if obs.lineage:
        p.st["lineage"] = obs.lineage
    prog = progress(resource, manifest, (obs.artifacts or {}).get("runUri"))
    if prog is not None:
        p.st["progress"] = prog
    served = home(resource.info.kind).served
    if served is not None:
        key = served[1]
        count = obs.served if obs.served is not None else (p.old.get("progress") or {}).get(key)
        if count is not None:  # the last count stays while no replica answers
            p.st["progress"] = {**(prog if prog is not None else p.old.get("progress") or {}), key: count}
    if is_service(resource):
        p.st["replicas"] = 0 if plan.teardown else (obs.replicas if obs.replicas is not None else p.old.get("replicas"))
        if obs.selector:
            p.st["selector"] = obs.selector


def _promotion(p: _Pass, resource: Resource, obs: Observation, manifest: Optional[Manifest]) -> None:
    """Services that retrain: which checkpoint serves under the outcome's plan, the refused candidate
    (progress.servingCheckpoint, candidateCheckpoint), the Promoted condition when this pass decided,
    and, while a new model trains, the endpoint of the InferenceService that keeps serving."""
    run_uri = (obs.artifacts or {}).get("runUri") or ""
    choice = home(resource.info.kind).choose(resource, p.out.plan.stage, p.old, manifest, run_uri, obs.rival)
    if choice is None:
        return
    p.out.choice = choice
    prog = dict(p.st["progress"] if "progress" in p.st else p.old.get("progress") or {})
    prog.pop("servingCheckpoint", None)
    prog.pop("candidateCheckpoint", None)
    if choice.checkpoint:
        prog["servingCheckpoint"] = choice.checkpoint
    if choice.candidate:
        prog["candidateCheckpoint"] = choice.candidate
    if prog:
        p.st["progress"] = prog
    v = choice.verdict
    if v is not None:
        prev = p.conds.old.get(Cond.PROMOTED) or {}
        p.conds.set(Cond.PROMOTED, v.promoted, v.reason, v.message)
        if (prev.get("status"), prev.get("reason"), prev.get("message")) != ("True" if v.promoted else "False", v.reason, v.message):
            p.event("Normal" if v.promoted else "Warning", v.reason, v.message)
    kept = obs.kept
    if kept is not None and not p.out.plan.teardown and "endpoint" not in p.st:
        if kept.endpoint:
            p.st["endpoint"] = kept.endpoint
        p.st["readyReplicas"] = (p.st.get("replicas") or 0) if kept.ready else 0


def _invalid(p: _Pass, err: RenderError) -> Outcome:
    """A spec the API refuses (possible when the CRD in the cluster is older than the operator)."""
    p.st.update({k: v for k, v in p.old.items() if k not in ("phase", "message", "conditions", "observedGeneration")})
    p.conds.set(Cond.FAILED, True, err.reason, err.message)
    p.out.apply = False
    return p.finish(Phase.FAILED, err.message, "Warning", err.reason)


def _refused(p: _Pass, refused: tuple[str, str]) -> Outcome:
    """The apiserver refused a child: keep what the last status said; retried with backoff."""
    for k, v in p.old.items():
        p.st.setdefault(k, v)
    p.out.apply = False
    p.out.requeue_after = 5.0
    phase = Phase(p.old.get("phase") or Phase.PENDING)
    p.st["phase"], p.st["message"] = phase.value, refused[1][:4096]
    return p.out


def _decide(p: _Pass, resource: Resource, plan: Plan, obs: Observation) -> Outcome:
    conds = p.conds
    # Refused by this operator's configuration: terminal, nothing created.
    if obs.error is not None:
        conds.set(Cond.FAILED, True, obs.error.reason, obs.error.message)
        conds.set(Cond.PROGRESSING, False, obs.error.reason, obs.error.message)
        p.out.apply = False
        p.st.setdefault("completionTime", p.now_s)
        return p.finish(Phase.FAILED, obs.error.message, "Warning", obs.error.reason)
    service = is_service(resource)
    # A finished batch resource stays finished (like a Job): its children are left alone.
    if p.old_phase in TERMINAL_PHASES and not service:
        p.st["phase"], p.st["message"] = p.old_phase, p.old.get("message") or ""
        p.out.apply = False
        return p.out
    if plan.teardown:
        return _suspended(p, service)
    conds.set(Cond.SUSPENDED, False, Reason.NOT_SUSPENDED, "")
    if p.old_phase == Phase.SUSPENDED:
        p.event("Normal", Reason.RESUMED, "resumed from the latest published checkpoint")
    from_run = getattr(getattr(resource.spec, "model", None), "from_run", None)
    if from_run is not None or home(resource.info.kind).inputs(resource.spec):  # references to resolve first
        if obs.waiting:
            conds.set(Cond.MODEL_RESOLVED, False, Reason.WAITING_FOR_CHECKPOINT, obs.waiting)
            conds.set(Cond.PROGRESSING, True, Reason.WAITING_FOR_CHECKPOINT, obs.waiting)
            p.out.apply = False
            return p.finish(Phase.PENDING, obs.waiting, reason=Reason.WAITING_FOR_CHECKPOINT)
        if obs.lineage:
            _resolved(p, obs.lineage)
    if plan.stage == STAGE_SERVE:
        return _serving(p, obs.workload)
    return _batch(p, resource, plan, obs.workload, service)


def _suspended(p: _Pass, service: bool) -> Outcome:
    p.conds.set(Cond.SUSPENDED, True, Reason.SUSPENDED, "suspended by spec.suspend: children removed, published artifacts kept")
    p.conds.set(Cond.PROGRESSING, False, Reason.SUSPENDED, "")
    if service:
        p.st["readyReplicas"] = 0
        p.st.pop("endpoint", None)
    return p.finish(Phase.SUSPENDED, "suspended: children removed; set spec.suspend to false to resume", reason=Reason.SUSPENDED)


def _resolved(p: _Pass, lineage: dict[str, Any]) -> None:
    prev = p.conds.get(Cond.MODEL_RESOLVED)
    p.conds.set(Cond.MODEL_RESOLVED, True, Reason.RESOLVED, resolved_text(lineage))
    if not prev or prev.get("status") != "True":
        p.event("Normal", Reason.MODEL_RESOLVED, f"resolved {resolved_text(lineage)}")


def resolved_text(lineage: dict[str, Any]) -> str:
    """`source -> uri` of the model's fromRun and of each resolved input (status.lineage[key])."""
    parts = [lineage] if lineage.get("source") else []
    parts += [v for v in lineage.values() if isinstance(v, dict) and v.get("source")]
    return "; ".join(f"{d['source']} -> {d.get('uri')}" for d in parts)


def _serving(p: _Pass, ws: ChildState) -> Outcome:
    p.conds.set(Cond.PROGRESSING, not ws.ready, Reason.SERVING if ws.ready else (ws.reason or Reason.DEPLOYING), ws.message)
    p.conds.set(Cond.FAILED, False, Reason.NO_FAILURE, "")
    if ws.endpoint:
        p.st["endpoint"] = ws.endpoint
    p.st["readyReplicas"] = (p.st.get("replicas") or 0) if ws.ready else 0
    if ws.ready:
        message = f"serving at {ws.endpoint}" if ws.endpoint else "serving"
        return p.finish(Phase.READY, message, reason=Reason.READY)
    return p.finish(Phase.PENDING, ws.message or "waiting for the service")


def _batch(p: _Pass, resource: Resource, plan: Plan, ws: ChildState, service: bool) -> Outcome:
    """Batch work (and a service's training stage)."""
    conds = p.conds
    if plan.stage == STAGE_TRAIN and (conds.get(Cond.TRAINED) or {}).get("status") == "True":
        # Trained for the last spec (KindHome.stage_of saw the training spec change): retraining.
        conds.set(Cond.TRAINED, False, Reason.RETRAINING, "the training spec changed: training a new model; "
                  "the serving one stays until the new one is promoted")
    conds.set(Cond.FAILED, False, Reason.NO_FAILURE, "")
    if not service:
        conds.set(Cond.SUCCEEDED, False, Reason.NOT_FINISHED, "")
    if ws.state in ("Missing", "Pending"):
        reason = Reason.CREATING if ws.state == "Missing" else (ws.reason or Reason.PENDING)
        conds.set(Cond.PROGRESSING, True, reason, ws.message)
        return p.finish(Phase.PENDING, ws.message or f"creating attempt {plan.attempt}",
                        reason=Reason.CREATED if p.old_phase is None else None)
    if ws.state == "Running":
        p.st.setdefault("startTime", p.now_s)
        conds.set(Cond.PROGRESSING, True, Reason.RUNNING, "")
        prog = p.st.get("progress") or {}
        step, stage = prog.get("step"), prog.get("stage")
        where = (f", stage {stage}" if stage is not None else "") + (f", step {step}" if step is not None else "")
        return p.finish(Phase.RUNNING, f"running (attempt {plan.attempt}{where})", reason=Reason.STARTED)
    if ws.state == "Succeeded":
        if plan.stage == STAGE_TRAIN:
            conds.set(Cond.TRAINED, True, Reason.TRAINING_SUCCEEDED, "training finished; starting the service")
            p.out.plan = Plan(attempt=0, stage=STAGE_SERVE, teardown=False)
            p.st["retries"] = 0
            conds.set(Cond.PROGRESSING, True, Reason.DEPLOYING, "")
            p.event("Normal", Reason.TRAINED, "training finished; starting the service")
            return p.finish(Phase.PENDING, "trained; starting the service")
        conds.set(Cond.SUCCEEDED, True, Reason.COMPLETED, "")
        conds.set(Cond.PROGRESSING, False, Reason.COMPLETED, "")
        p.st["completionTime"] = ws.finished_at or p.now_s
        return p.finish(Phase.SUCCEEDED, "succeeded", reason=Reason.SUCCEEDED)
    return _failed_attempt(p, resource, plan, ws)


def _failed_attempt(p: _Pass, resource: Resource, plan: Plan, ws: ChildState) -> Outcome:
    """Retry with exponential backoff, resuming from the latest checkpoint; a permanent failure (the
    workload said retrying cannot help) or the last retry fails the resource at once."""
    conds = p.conds
    detail = f"attempt {plan.attempt} failed: {ws.reason}{': ' + ws.message if ws.message else ''}"
    limit = resource.spec.failure_policy.max_retries
    if ws.permanent or plan.attempt >= limit:
        if ws.permanent:
            reason, msg = Reason.PERMANENT_FAILURE, f"{detail} (a permanent failure: not retried)"
        else:
            reason = Reason.RETRIES_EXHAUSTED if limit else Reason.WORKLOAD_FAILED
            msg = f"{detail} ({plan.attempt} of {limit} retries used)"
        conds.set(Cond.FAILED, True, reason, msg)
        conds.set(Cond.PROGRESSING, False, reason, msg)
        p.st["completionTime"] = ws.finished_at or p.now_s
        return p.finish(Phase.FAILED, msg, "Warning", reason)
    delay = backoff_seconds(resource, plan.attempt)
    failed_at = parse_time(ws.finished_at) or conds.since(Cond.PROGRESSING, "False", Reason.BACKING_OFF) or p.now
    due = failed_at + timedelta(seconds=delay)
    if p.now < due:
        conds.set(Cond.PROGRESSING, False, Reason.BACKING_OFF, f"{detail}; retrying at {iso(due)}")
        prev = conds.old.get(Cond.PROGRESSING)
        if not prev or prev.get("reason") != Reason.BACKING_OFF:
            p.event("Warning", Reason.ATTEMPT_FAILED, f"{detail}; retrying in {int(delay)}s")
        p.out.requeue_after = max((due - p.now).total_seconds(), 0.1)
        p.out.apply = False
        # Nothing runs while backing off: Pending (not the failed attempt's Running) until the retry.
        return p.finish(Phase.PENDING, f"{detail}; retry {plan.attempt + 1} of {limit} at {iso(due)}")
    nxt = plan.attempt + 1
    p.out.plan = Plan(attempt=nxt, stage=plan.stage, teardown=False)
    p.st["retries"] = nxt
    resume = (p.st.get("progress") or {}).get("step")
    conds.set(Cond.PROGRESSING, True, Reason.RETRYING, f"{detail}; attempt {nxt}")
    p.event("Warning", Reason.RETRYING, f"{detail}; starting attempt {nxt} of {limit + 1}"
            + (f", resuming from step {resume}" if resume is not None else ""))
    return p.finish(Phase.PENDING, f"retrying: attempt {nxt} of {limit + 1}")


# ---- conditions about the pass itself ----------------------------------------------------------
def _store_condition(p: _Pass, unreadable: Optional[str]) -> None:
    """StoreReadable=False while the manifest cannot be read; True again once it can (only after a
    failure: a store that never failed has no such condition)."""
    if unreadable or (p.conds.old.get(Cond.STORE_READABLE) or {}).get("status") == "False":
        p.conds.set(Cond.STORE_READABLE, not unreadable,
                    Reason.MANIFEST_UNREADABLE if unreadable else Reason.MANIFEST_READ, unreadable or "")


def _applied_condition(p: _Pass, refused: Optional[tuple[str, str]]) -> None:
    """ChildrenApplied=False with the apiserver's reason (a Warning event on the first refusal)."""
    prev = p.conds.old.get(Cond.CHILDREN_APPLIED)
    if refused:
        reason, message = refused
        p.conds.set(Cond.CHILDREN_APPLIED, False, reason, message)
        if not prev or prev.get("status") != "False" or prev.get("reason") != reason:
            p.event("Warning", Reason.CHILD_APPLY_FAILED, f"{reason}: {message}")
    elif prev and prev.get("status") == "False":
        p.conds.set(Cond.CHILDREN_APPLIED, True, Reason.APPLIED, "")


def _scheduled_condition(p: _Pass, problem: Optional[tuple[str, str]]) -> None:
    """PodsScheduled=False while the pods cannot be created or placed; True again once they are."""
    prev = p.conds.old.get(Cond.PODS_SCHEDULED)
    if problem is None and not prev:
        return
    reason, message = problem or (Reason.SCHEDULED, "")
    p.conds.set(Cond.PODS_SCHEDULED, problem is None, reason, message)
    if problem:
        p.st["message"] = f"{reason}: {message}"[:4096]
        if not prev or prev.get("status") != "False" or prev.get("reason") != reason:
            p.event("Warning", reason, message)
