"""Status: one pure function of (resource, its last status, what was observed, the run manifest,
now) -> the new status, the events to post and the plan of children. Nothing else writes status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .context import STAGE_RUN, STAGE_SERVE, STAGE_TRAIN, Plan
from .render.common import MISSING, ChildState, RenderError

TERMINAL = ("Succeeded", "Failed")
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
    """The resource cannot run with this operator configuration (terminal)."""
    replicas: Optional[int] = None
    selector: Optional[str] = None


@dataclass
class Outcome:
    status: dict[str, Any]
    plan: Plan
    events: list[Event] = field(default_factory=list)
    apply: bool = True
    """Apply the plan's children (False: leave the children as they are)."""
    requeue_after: Optional[float] = None


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: Optional[str]) -> Optional[datetime]:
    if not s:
        return None
    try:
        return datetime.strptime(s.replace(".000000", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))


def is_service(resource: Resource) -> bool:
    return resource.info.is_service


def plan_of(resource: Resource, old: dict[str, Any]) -> Plan:
    """The plan the last status implies: the attempt (retries so far) and the stage."""
    attempt = int(old.get("retries") or 0)
    if resource.info.kind == "ScorerService":
        stage = STAGE_SERVE
    elif resource.info.kind == "DialogBot":
        trained = any(c.get("type") == "Trained" and c.get("status") == "True" for c in old.get("conditions") or [])
        stage = STAGE_TRAIN if resource.spec.training is not None and not trained else STAGE_SERVE
    else:
        stage = STAGE_RUN
    return Plan(attempt=attempt, stage=stage, teardown=bool(resource.spec.suspend))


class _Conditions:
    """metav1 conditions keyed by type; lastTransitionTime moves only when status changes."""

    def __init__(self, old: list[dict[str, Any]], now: str, generation: Optional[int]):
        self.old = {c["type"]: c for c in old if "type" in c}
        self.new: dict[str, dict[str, Any]] = {}
        self.now, self.gen = now, generation

    def set(self, ctype: str, status: bool, reason: str, message: str = "") -> None:
        s = "True" if status else "False"
        prev = self.old.get(ctype)
        ltt = prev["lastTransitionTime"] if prev and prev.get("status") == s and prev.get("lastTransitionTime") else self.now
        c = {"type": ctype, "status": s, "reason": reason, "message": message[:32768], "lastTransitionTime": ltt}
        if self.gen is not None:
            c["observedGeneration"] = self.gen
        self.new[ctype] = c

    def since(self, ctype: str, status: str, reason: str) -> Optional[datetime]:
        prev = self.old.get(ctype)
        if prev and prev.get("status") == status and prev.get("reason") == reason:
            return parse_time(prev.get("lastTransitionTime"))
        return None

    def get(self, ctype: str) -> Optional[dict[str, Any]]:
        return self.new.get(ctype) or self.old.get(ctype)

    def listed(self) -> list[dict[str, Any]]:
        keep = {**{k: v for k, v in self.old.items()}, **self.new}
        return [keep[k] for k in sorted(keep)]


def backoff_seconds(resource: Resource, attempt: int) -> float:
    policy = resource.spec.failure_policy
    return min(float(policy.backoff_seconds) * (2 ** attempt), MAX_BACKOFF)


def progress(resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
    """Kind-specific progress from the run manifest (None when nothing is published)."""
    kind = resource.info.kind
    if kind == "KGHarvest":
        out = {"relationsTotal": len(resource.spec.relations)}
        if manifest:
            out.update({k: manifest.final[k] for k in ("relationsDone", "tuples") if k in manifest.final})
        return out
    if manifest is None:
        return None
    latest = manifest.latest
    final = manifest.final
    if kind == "MetricEval":
        out = {k: final[k] for k in ("examplesScored", "examplesTotal") if k in final}
        if isinstance(final.get("results"), dict):
            out["results"] = final["results"]
        return out or None
    if kind == "ScorerService":
        return None
    out: dict[str, Any] = {}
    if manifest.total_steps is not None and kind in ("PretrainRun", "ShardedFinetune"):
        out["totalSteps"] = manifest.total_steps
    if latest is not None:
        out["step"] = latest.step
        if latest.loss is not None:
            out["loss"] = latest.loss
        if kind == "PretrainRun":
            out.update(tokens=latest.tokens, checkpoints=len(manifest.checkpoints))
        if kind in ("ShardedFinetune", "DialogBot") and latest.evals:
            out["eval"] = dict(latest.evals)
        if kind in ("PretrainRun", "ShardedFinetune") and run_uri:
            out["latestCheckpoint"] = f"{run_uri}/{latest.path}"
    if kind == "ShardedFinetune" and isinstance(final.get("modelShards"), int):
        out["modelShards"] = final["modelShards"]
    return out or None


def compute(resource: Resource, old: dict[str, Any], plan: Plan, obs: Observation,
            manifest: Optional[Manifest], now: datetime) -> Outcome:
    """The new status and plan. `plan` is plan_of(resource, old); obs was observed for it."""
    gen = resource.metadata.get("generation")
    now_s = iso(now)
    conds = _Conditions(old.get("conditions") or [], now_s, gen)
    old_phase = old.get("phase")
    service = is_service(resource)
    st: dict[str, Any] = {"observedGeneration": gen} if gen is not None else {}
    for k in ("retries", "startTime", "completionTime", "lineage"):
        if old.get(k) is not None:
            st[k] = old[k]
    st["retries"] = plan.attempt
    if obs.artifacts:
        st["artifacts"] = obs.artifacts
    if obs.lineage:
        st["lineage"] = obs.lineage
    run_uri = (obs.artifacts or {}).get("runUri")
    prog = progress(resource, manifest, run_uri)
    if prog is not None:
        st["progress"] = prog
    if service:
        st["replicas"] = 0 if plan.teardown else (obs.replicas if obs.replicas is not None else old.get("replicas"))
        if obs.selector:
            st["selector"] = obs.selector
    out = Outcome(status=st, plan=plan)
    events = out.events

    def finish(phase: str, message: str, etype: str = "Normal", reason: Optional[str] = None) -> Outcome:
        st["phase"] = phase
        st["message"] = message[:4096]
        if phase != old_phase and reason:
            events.append(Event(etype, reason, message))
        st["conditions"] = conds.listed()
        return out

    # Refused by this operator's configuration: terminal, nothing created.
    if obs.error is not None:
        conds.set("Failed", True, obs.error.reason, obs.error.message)
        conds.set("Progressing", False, obs.error.reason, obs.error.message)
        out.apply = False
        st.setdefault("completionTime", now_s)
        return finish("Failed", obs.error.message, "Warning", obs.error.reason)

    # A finished batch resource stays finished (like a Job): its children are left alone.
    if old_phase in TERMINAL and not service:
        st["conditions"] = conds.listed()
        st["phase"], st["message"] = old_phase, old.get("message") or ""
        out.apply = False
        return out

    conds.set("Suspended", plan.teardown, "Suspended" if plan.teardown else "NotSuspended",
              "suspended by spec.suspend: children removed, published artifacts kept" if plan.teardown else "")
    if plan.teardown:
        conds.set("Progressing", False, "Suspended", "")
        if service:
            conds.set("Ready", False, "Suspended", "")
            st["readyReplicas"] = 0
            st.pop("endpoint", None)
        return finish("Suspended", "suspended: children removed; set spec.suspend to false to resume", reason="Suspended")
    if old_phase == "Suspended":
        events.append(Event("Normal", "Resumed", "resumed from the latest published checkpoint"))

    from_run = getattr(getattr(resource.spec, "model", None), "from_run", None)
    if from_run is not None:
        if obs.waiting:
            conds.set("ModelResolved", False, "WaitingForCheckpoint", obs.waiting)
            conds.set("Progressing", True, "WaitingForCheckpoint", obs.waiting)
            out.apply = False
            return finish("Pending", obs.waiting, reason="WaitingForCheckpoint")
        if obs.lineage:
            prev = conds.get("ModelResolved")
            conds.set("ModelResolved", True, "Resolved", f"{obs.lineage.get('source')} -> {obs.lineage.get('uri')}")
            if not prev or prev.get("status") != "True":
                events.append(Event("Normal", "ModelResolved", f"resolved {obs.lineage.get('source')} to {obs.lineage.get('uri')}"))

    ws = obs.workload
    if plan.stage == STAGE_SERVE:
        conds.set("Progressing", not ws.ready, "Deploying" if not ws.ready else "Serving", ws.message)
        conds.set("Failed", False, "NoFailure", "")
        if ws.endpoint:
            st["endpoint"] = ws.endpoint
        st["readyReplicas"] = (st.get("replicas") or 0) if ws.ready else 0
        if ws.ready:
            conds.set("Ready", True, "Ready", f"serving at {ws.endpoint}" if ws.endpoint else "serving")
            return finish("Ready", f"serving at {ws.endpoint}" if ws.endpoint else "serving", reason="Ready")
        conds.set("Ready", False, ws.reason or "Deploying", ws.message)
        return finish("Pending", ws.message or "waiting for the service", reason=None)

    # Batch work (and DialogBot training).
    conds.set("Failed", False, "NoFailure", "")
    if resource.info.kind != "DialogBot":
        conds.set("Succeeded", False, "NotFinished", "")
    if ws.state in ("Missing", "Pending"):
        reason = "Creating" if ws.state == "Missing" else (ws.reason or "Pending")
        conds.set("Progressing", True, reason, ws.message)
        return finish("Pending", ws.message or f"creating attempt {plan.attempt}", reason="Created" if old_phase is None else None)
    if ws.state == "Running":
        st.setdefault("startTime", now_s)
        conds.set("Progressing", True, "Running", "")
        step = (prog or {}).get("step")
        return finish("Running", f"running (attempt {plan.attempt}{f', step {step}' if step is not None else ''})", reason="Started")
    if ws.state == "Succeeded":
        if plan.stage == STAGE_TRAIN:
            conds.set("Trained", True, "TrainingSucceeded", "training finished; starting the service")
            out.plan = Plan(attempt=0, stage=STAGE_SERVE, teardown=False)
            st["retries"] = 0
            conds.set("Progressing", True, "Deploying", "")
            events.append(Event("Normal", "Trained", "training finished; starting the service"))
            return finish("Pending", "trained; starting the service")
        conds.set("Succeeded", True, "Completed", "")
        conds.set("Progressing", False, "Completed", "")
        st["completionTime"] = ws.finished_at or now_s
        return finish("Succeeded", "succeeded", reason="Succeeded")

    # Failed attempt: retry with exponential backoff, resuming from the latest checkpoint.
    detail = f"attempt {plan.attempt} failed: {ws.reason}{': ' + ws.message if ws.message else ''}"
    limit = resource.spec.failure_policy.max_retries
    if plan.attempt >= limit:
        reason = "RetriesExhausted" if limit else "WorkloadFailed"
        msg = f"{detail} ({plan.attempt} of {limit} retries used)"
        conds.set("Failed", True, reason, msg)
        conds.set("Progressing", False, reason, msg)
        st["completionTime"] = ws.finished_at or now_s
        return finish("Failed", msg, "Warning", reason)
    delay = backoff_seconds(resource, plan.attempt)
    failed_at = parse_time(ws.finished_at) or conds.since("Progressing", "False", "BackingOff") or now
    due = failed_at + timedelta(seconds=delay)
    if now < due:
        conds.set("Progressing", False, "BackingOff", f"{detail}; retrying at {iso(due)}")
        prev = conds.old.get("Progressing")
        if not prev or prev.get("reason") != "BackingOff":
            events.append(Event("Warning", "AttemptFailed", f"{detail}; retrying in {int(delay)}s"))
        out.requeue_after = max((due - now).total_seconds(), 0.1)
        out.apply = False
        # Nothing runs while backing off: Pending (not the failed attempt's Running) until the retry.
        return finish("Pending", f"{detail}; retry {plan.attempt + 1} of {limit} at {iso(due)}")
    nxt = plan.attempt + 1
    out.plan = Plan(attempt=nxt, stage=plan.stage, teardown=False)
    st["retries"] = nxt
    resume = (prog or {}).get("step")
    conds.set("Progressing", True, "Retrying", f"{detail}; attempt {nxt}")
    events.append(Event("Warning", "Retrying", f"{detail}; starting attempt {nxt} of {limit + 1}"
                        + (f", resuming from step {resume}" if resume is not None else "")))
    return finish("Pending", f"retrying: attempt {nxt} of {limit + 1}")
