"""KGHarvest: one batch stage on torch; progress counts relations done of those requested.

With several workers on backend job the harvest is an Indexed Job, one relation per index: the
relations are independent, and each pod publishes its own (glassbox_workloads.kgharvest.publish).
"""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import KindHome, done_of

LIVE = ("relationsDone", "tuples", "currentRelation", "stage")
"""What the workload writes into the manifest's `final` block as it goes."""


class KGHarvestHome(KindHome):
    kind = "KGHarvest"
    family = "torch"
    backends = ("jobset", "job", "local")

    def indexed_completions(self, spec: Any, stage: str) -> Optional[int]:
        return len(spec.relations)

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        total = len(resource.spec.relations)
        out: dict[str, Any] = {"relationsTotal": total}
        if manifest:
            out.update({k: manifest.final[k] for k in LIVE if manifest.final.get(k) is not None})
            if manifest.state == "completed":
                out.pop("currentRelation", None)
                out.pop("stage", None)
                if manifest.final.get("kg"):
                    out["knowledgeGraph"] = manifest.final["kg"]
        out["done"] = done_of(out.get("relationsDone"), total)
        return out

    def published(self, manifest: Manifest, run_uri: str) -> Optional[dict[str, Any]]:
        """The knowledge graph (kg.jsonl) once the harvest completed, with its digest."""
        kg = (manifest.model_extra or {}).get("kg")
        if manifest.state != "completed" or not isinstance(kg, dict) or not kg.get("path"):
            return None
        return {"uri": f"{run_uri.rstrip('/')}/{kg['path']}", "sha256": kg.get("sha256")}


HOME = KGHarvestHome()
