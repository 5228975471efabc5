"""MetricEval: one batch stage on torch (a Job or locally); progress counts examples scored."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import KindHome, done_of


class MetricEvalHome(KindHome):
    kind = "MetricEval"
    family = "torch"
    backends = ("job", "local")

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        if manifest is None:
            return None
        final = manifest.final
        out = {k: final[k] for k in ("examplesScored", "examplesTotal") if k in final}
        if "examplesScored" in out or "examplesTotal" in out:
            out["done"] = done_of(out.get("examplesScored"), out.get("examplesTotal"))
        if isinstance(final.get("results"), dict):
            out["results"] = final["results"]
        return out or None


HOME = MetricEvalHome()
