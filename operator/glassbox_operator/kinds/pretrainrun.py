"""PretrainRun: one batch stage on torch (Ray Train, torchrun on a JobSet, a Job, or locally)."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import KindHome, rounded, training_progress


class PretrainRunHome(KindHome):
    kind = "PretrainRun"
    family = "torch"
    backends = ("ray", "jobset", "job", "local")

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        if manifest is None:
            return None
        out = training_progress(manifest, run_uri)
        latest = manifest.latest
        if latest is not None:
            out.update(tokens=latest.tokens, checkpoints=len(manifest.checkpoints))
            ppl = latest.evals.get("perplexity")
            if isinstance(ppl, (int, float)):
                out["perplexity"] = rounded(ppl, 2)
        return out or None


HOME = PretrainRunHome()
