"""DialogBot: a training stage (a batch workload on torch, when spec.training is set), then a
serving stage that loads the latest checkpoint the training published."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import STAGE_SERVE, STAGE_TRAIN, KindHome, training_progress, trained


class DialogBotHome(KindHome):
    kind = "DialogBot"
    family = "torch"
    backends = ("ray", "jobset", "job", "local")
    service = True

    def first_stage(self, resource: Resource, conditions: list[dict[str, Any]]) -> str:
        return STAGE_TRAIN if resource.spec.training is not None and not trained(conditions) else STAGE_SERVE

    def resources(self, spec: Any, stage: str) -> Any:
        return spec.training.resources if stage == STAGE_TRAIN else spec.serving.resources

    def workload_prefix(self, stage: str) -> str:
        return "train-" if stage == STAGE_TRAIN else ""

    def replicas(self, spec: Any) -> int:
        return spec.serving.replicas

    def serves_own_checkpoint(self, spec: Any) -> bool:
        return spec.training is not None

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        if manifest is None:
            return None
        out = training_progress(manifest, run_uri, total=False, checkpoint=False)
        latest = manifest.latest
        if latest is not None and latest.evals:
            out["eval"] = dict(latest.evals)
        return out or None


HOME = DialogBotHome()
