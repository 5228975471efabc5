"""Conditions keyed by type, and the four that GitOps tools read, derived from the rest.

Flux (kstatus) and Argo CD (the chart's health script, charts/glassbox/files/argocd-health.lua)
read the same four: Stalled=True -> Failed/Degraded; Reconciling=True -> InProgress/Progressing;
Ready=True -> Current/Healthy (a suspended resource: Current/Suspended); a status whose
observedGeneration lags the spec is InProgress/Progressing in both. Complete=True is for batch
kinds what a Job's Complete is: `kubectl wait --for=condition=Complete` works.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from glassbox_api.conditions import Cond, Phase, Reason

from .kinds.base import STAGE_RUN


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: Optional[str]) -> Optional[datetime]:
    if not s:
        return None
    try:
        return datetime.strptime(s.replace(".000000", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))


class Conditions:
    """metav1 conditions keyed by type; lastTransitionTime moves only when status changes."""

    def __init__(self, old: list[dict[str, Any]], now: str, generation: Optional[int]):
        self.old = {c["type"]: c for c in old if "type" in c}
        self.new: dict[str, dict[str, Any]] = {}
        self.now, self.gen = now, generation

    def set(self, ctype: str, status: bool, reason: str, message: str = "") -> None:
        s = "True" if status else "False"
        prev = self.old.get(ctype)
        ltt = prev["lastTransitionTime"] if prev and prev.get("status") == s and prev.get("lastTransitionTime") else self.now
        c = {"type": str(ctype), "status": s, "reason": str(reason), "message": message[:32768], "lastTransitionTime": ltt}
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

    def is_false(self, ctype: str) -> bool:
        return (self.get(ctype) or {}).get("status") == "False"

    def listed(self) -> list[dict[str, Any]]:
        keep = {**self.old, **self.new}
        return [keep[k] for k in sorted(keep)]


def _reconciling(conds: Conditions, phase: Phase, stage: str) -> Optional[tuple[str, str]]:
    """(reason, message) while the operator still works toward the spec, else None."""
    for ctype in (Cond.CHILDREN_APPLIED, Cond.PODS_SCHEDULED):
        c = conds.get(ctype)
        if c and c.get("status") == "False" and phase in (Phase.PENDING, Phase.RUNNING, Phase.READY):
            return c.get("reason") or ctype, c.get("message") or ""
    if phase == Phase.PENDING:
        c = conds.get(Cond.PROGRESSING) or {}
        return c.get("reason") or Reason.PENDING, c.get("message") or ""
    if phase == Phase.RUNNING and stage != STAGE_RUN:
        return Reason.TRAINING, "training before serving"
    return None


def gitops_conditions(conds: Conditions, phase: Phase, *, batch: bool, stage: str, message: str = "") -> None:
    """Set Stalled, Reconciling, Ready (and Complete for batch kinds) from the phase and the rest."""
    failed = conds.get(Cond.FAILED) or {}
    if phase == Phase.FAILED:
        conds.set(Cond.STALLED, True, failed.get("reason") or Reason.WORKLOAD_FAILED, failed.get("message") or "")
    else:
        conds.set(Cond.STALLED, False, Reason.NOT_STALLED, "")
    busy = _reconciling(conds, phase, stage)
    if busy is not None and not busy[1]:
        busy = (busy[0], message)  # kstatus shows the condition's message: never leave it empty
    conds.set(Cond.RECONCILING, busy is not None, busy[0] if busy else Reason.RECONCILED, busy[1] if busy else "")
    if busy is None and phase == Phase.RUNNING:
        conds.set(Cond.READY, True, Reason.RUNNING, message or "running")
    elif busy is None and phase == Phase.SUCCEEDED:
        conds.set(Cond.READY, True, Reason.COMPLETED, "finished; artifacts published")
    elif busy is None and phase == Phase.READY:
        conds.set(Cond.READY, True, Reason.SERVING, message or "serving")
    elif phase == Phase.SUSPENDED:
        conds.set(Cond.READY, True, Reason.SUSPENDED, "suspended as the spec asks")
    elif phase == Phase.FAILED:
        conds.set(Cond.READY, False, failed.get("reason") or Reason.WORKLOAD_FAILED, failed.get("message") or "")
    else:
        conds.set(Cond.READY, False, busy[0] if busy else Reason.PENDING, busy[1] if busy else "")
    if batch:
        done = phase == Phase.SUCCEEDED
        conds.set(Cond.COMPLETE, done, Reason.COMPLETED if done else Reason.NOT_FINISHED, "")
