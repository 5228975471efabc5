"""Prometheus metrics of the operator: reconciles by kind and result, reconcile duration, resources by phase."""

from __future__ import annotations

import threading
from typing import Any, Optional

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("glassbox_reconciles_total", "Reconcile passes by kind and result (ok, waiting, refused, stale, error).", ["kind", "result"])
DURATION = Histogram("glassbox_reconcile_duration_seconds", "Duration of one reconcile pass.", ["kind"],
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RESOURCES = Gauge("glassbox_resources", "glassbox resources by kind and phase.", ["kind", "phase"])

_lock = threading.Lock()
_phases: dict[str, tuple[str, str]] = {}


def _recount() -> None:
    counts: dict[tuple[str, str], int] = {}
    for kp in _phases.values():
        counts[kp] = counts.get(kp, 0) + 1
    for kind, phase in {*counts, *[tuple(lbl) for lbl in _labels()]}:
        RESOURCES.labels(kind=kind, phase=phase).set(counts.get((kind, phase), 0))


def _labels() -> list[tuple[str, str]]:
    return [(s.labels["kind"], s.labels["phase"]) for m in RESOURCES.collect() for s in m.samples]


def observe_phase(body: Any, phase: Optional[str]) -> None:
    uid = (body.get("metadata") or {}).get("uid")
    if not uid:
        return
    with _lock:
        _phases[uid] = (body.get("kind", "?"), phase or "Unknown")
        _recount()


def forget(body: Any) -> None:
    with _lock:
        _phases.pop((body.get("metadata") or {}).get("uid"), None)
        _recount()
