"""ShardedFinetune: one batch stage in JAX (a JobSet across hosts or TPU slices, a Job, or locally)."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import KindHome, training_progress


class ShardedFinetuneHome(KindHome):
    kind = "ShardedFinetune"
    family = "jax"
    backends = ("jobset", "job", "local")

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        if manifest is None:
            return None
        out = training_progress(manifest, run_uri)
        latest = manifest.latest
        if latest is not None and latest.evals:
            out["eval"] = dict(latest.evals)
        if isinstance(manifest.final.get("modelShards"), int):
            out["modelShards"] = manifest.final["modelShards"]
        return out or None


HOME = ShardedFinetuneHome()
