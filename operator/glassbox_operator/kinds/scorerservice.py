"""ScorerService: an adaptation stage (a batch Job that finetunes the scorer on the task, when
spec.adaptation is set), then a serving stage (a KServe InferenceService) on the adapted weights."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import STAGE_SERVE, STAGE_TRAIN, KindHome, done_of, rounded, short_checkpoint, trained


OPENAI_API_KEY = "OPENAI_API_KEY"
"""The Secret key and the variable the workload reads (RunContext.openai_api_key)."""


class ScorerServiceHome(KindHome):
    kind = "ScorerService"
    family = "torch"
    backends = ("job", "local")

    service = True
    served = ("pairs", "pairsScored")

    def first_stage(self, resource: Resource, conditions: list[dict[str, Any]]) -> str:
        return STAGE_TRAIN if resource.spec.adaptation is not None and not trained(conditions) else STAGE_SERVE

    def resources(self, spec: Any, stage: str) -> Any:
        return spec.adaptation.resources if stage == STAGE_TRAIN else spec.resources

    def workload_prefix(self, stage: str) -> str:
        return "adapt-" if stage == STAGE_TRAIN else ""

    def replicas(self, spec: Any) -> int:
        return spec.replicas

    def serves_own_checkpoint(self, spec: Any) -> bool:
        return spec.adaptation is not None

    def secret_env(self, spec: Any) -> list[dict[str, Any]]:
        """The generator endpoint's API key, from the Secret generator.endpoint.apiKeySecret names."""
        endpoint = spec.generator.endpoint if spec.generator is not None else None
        if endpoint is None or not endpoint.api_key_secret:
            return []
        return [{"name": OPENAI_API_KEY, "valueFrom": {"secretKeyRef": {"name": endpoint.api_key_secret, "key": OPENAI_API_KEY}}}]

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        """Adaptation step/total, its loss and eval, and the adapted checkpoint (published once, at the end)."""
        if manifest is None:
            return None
        out: dict[str, Any] = {}
        total = manifest.total_steps
        if total is not None:
            out["totalSteps"] = total
        latest = manifest.latest
        out["done"] = done_of(latest.step if latest else None, total)
        if latest is None:
            return out if total is not None else None
        out["adaptationStep"] = latest.step
        if latest.loss is not None:
            out["adaptationLoss"] = rounded(latest.loss)
        if latest.evals:
            out["adaptationEval"] = {k: rounded(v) for k, v in latest.evals.items()}
        out["checkpoint"] = short_checkpoint(latest.step)
        if run_uri:
            out["latestCheckpoint"] = f"{run_uri}/{latest.path}"
        return out


HOME = ScorerServiceHome()
