"""ScorerService: a serving stage only (a KServe InferenceService with the scorer's model server)."""

from __future__ import annotations

from typing import Any

from .base import KindHome


class ScorerServiceHome(KindHome):
    kind = "ScorerService"
    family = "serving"
    backends = ()
    service = True

    def replicas(self, spec: Any) -> int:
        return spec.replicas


HOME = ScorerServiceHome()
