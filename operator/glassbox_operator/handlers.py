"""Kopf entry points, the same for every kind: each hands off to Reconciler.reconcile in one line.

create/resume/update(spec) and a timer while the resource is active all run the same level-based
pass; the pass writes its status once itself (a merge patch of the status subresource), so it knows
the resourceVersion that write produced and can tell a body older than it (see Reconciler).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

import kopf

from glassbox_api.conditions import ACTIVE_PHASES
from glassbox_api.constants import GROUP, VERSION
from glassbox_api.kinds import KINDS

from . import metrics, observed
from .reconcile import Reconciler

WAITING = "not ready yet: "
"""Prefix of the TemporaryError a waiting pass raises (QuietWaiting finds it by this)."""


def _is_active(status: Any, **_: Any) -> bool:
    phase = (status or {}).get("phase")
    return phase is None or phase in ACTIVE_PHASES


class QuietWaiting(logging.Filter):
    """Normal waiting (for a source checkpoint, a retry's backoff, a refused child) is not an error.
    Kopf logs every TemporaryError at ERROR on its per-object logger, which also posts it as an
    Error event; a pass that waits raises one only to be run again later, so its record is lowered
    to DEBUG here: no ERROR line in the log, no Error event on the resource."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and f"failed temporarily: {WAITING}" in record.getMessage():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def retry_delay(requeue_after: Optional[float], retry: int, resync_seconds: float) -> float:
    """When Kopf should run a pass that is not done yet again. A due time (a retry's backoff) is kept
    exactly; plain waiting (for a source checkpoint, a refused child) backs off 1, 2, 4 ... s up to
    the resync interval, so a resource that waits for hours is not reconciled every second."""
    if requeue_after:
        return max(requeue_after, 1.0)
    return max(1.0, min(float(resync_seconds), 2.0 ** min(retry, 16)))


def run_pass(reconciler: Reconciler, body: Any, *, retry_errors: bool, retry: int = 0,
             resync_seconds: float = 10.0, watched: Optional[observed.Watched] = None) -> None:
    """One pass: reconcile (which writes the status), post the events; map outcomes to Kopf errors."""
    kind = body.get("kind", "?")
    started = time.perf_counter()
    result_label = "error"
    try:
        result = reconciler.reconcile(dict(body), watched)
        for ev in result.events:
            kopf.event(body, type=ev.type, reason=ev.reason, message=ev.message[:1024])
        metrics.observe_phase(body, result.status.get("phase"))
        result_label = "stale" if result.stale else "refused" if result.error else ("waiting" if result.waiting else "ok")
        if result.error is not None and retry_errors:
            raise kopf.PermanentError(f"{result.error.reason}: {result.error.message}")
        if retry_errors and (result.waiting or result.requeue_after):
            # Not ready yet: the pass is retried (the timer also keeps it fresh).
            raise kopf.TemporaryError(WAITING + (result.status.get("message") or "waiting"),
                                      delay=retry_delay(result.requeue_after, retry, resync_seconds))
    finally:
        metrics.RECONCILES.labels(kind=kind, result=result_label).inc()
        metrics.DURATION.labels(kind=kind).observe(time.perf_counter() - started)


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler, resync_seconds: float) -> None:
    """Register the handlers of every kind on the registry, and the watches of workload pods and
    FailedCreate events they read (observed.py)."""
    observed.register(registry)
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietWaiting) for f in objects.filters):
        objects.addFilter(QuietWaiting())
    for info in KINDS.values():
        res = dict(group=GROUP, version=VERSION, plural=info.plural, registry=registry)

        def on_change(body: Any, retry: int = 0, **kwargs: Any) -> None:
            run_pass(reconciler, body, retry_errors=True, retry=retry, resync_seconds=resync_seconds,
                     watched=observed.from_kwargs(kwargs))

        def on_timer(body: Any, **kwargs: Any) -> None:
            run_pass(reconciler, body, retry_errors=False, watched=observed.from_kwargs(kwargs))

        def on_delete(body: Any, **_: Any) -> None:
            metrics.forget(body)
            reconciler.forget((body.get("metadata") or {}).get("uid") or "")

        kopf.on.resume(**res, id="reconcile")(on_change)
        kopf.on.create(**res, id="reconcile")(on_change)
        kopf.on.update(**res, id="reconcile", field="spec")(on_change)
        # idle: no timer pass while the object keeps changing (each pass that changes the status
        # restarts the wait), so a busy resource is not reconciled twice as often.
        kopf.timer(**res, id="refresh", interval=resync_seconds, initial_delay=resync_seconds, idle=resync_seconds,
                   when=_is_active)(on_timer)
        kopf.on.delete(**res, id="forget", optional=True)(on_delete)


def peering_priority(pod_id: Optional[str]) -> int:
    """A distinct Kopf peering priority per replica (equal priorities would all pause)."""
    import zlib

    return zlib.crc32((pod_id or "").encode()) % 10_000 + 1
