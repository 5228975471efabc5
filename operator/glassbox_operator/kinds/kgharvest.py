"""KGHarvest: one batch stage on torch; progress counts relations done of those requested."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import KindHome, done_of


class KGHarvestHome(KindHome):
    kind = "KGHarvest"
    family = "torch"
    backends = ("jobset", "job", "local")

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        total = len(resource.spec.relations)
        out: dict[str, Any] = {"relationsTotal": total}
        if manifest:
            out.update({k: manifest.final[k] for k in ("relationsDone", "tuples") if k in manifest.final})
        out["done"] = done_of(out.get("relationsDone"), total)
        return out


HOME = KGHarvestHome()
