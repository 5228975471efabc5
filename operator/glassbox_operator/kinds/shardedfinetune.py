"""ShardedFinetune: one batch stage in JAX (a JobSet across hosts or TPU slices, a Job, or locally)."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest, StagePosition
from glassbox_api.resource import Resource

from .base import InputRef, KindHome, training_progress


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
        if latest is not None and latest.stage is not None:
            out["stage"] = stage_in_training(latest.stage, manifest.state)
        return out or None

    def inputs(self, spec: Any) -> list[InputRef]:
        """aspect-summarization's knowledge graph from a KGHarvest run."""
        a = spec.recipe.aspect_summarization
        fr = a.knowledge.from_run if a is not None and a.knowledge is not None else None
        if fr is None:
            return []
        return [InputRef("knowledge", "spec.recipe.aspectSummarization.knowledge.fromRun", fr.kind, fr.name)]

    def resolved_spec(self, spec: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The harvest's run folder as knowledge.fromRun.runUri: the workload reads its manifest there
        and checks kg.jsonl against the digest it lists."""
        k = inputs.get("knowledge")
        if not k or not k.get("runUri"):
            return spec
        a = spec["recipe"]["aspectSummarization"]
        knowledge = {**a["knowledge"], "fromRun": {**a["knowledge"]["fromRun"], "runUri": k["runUri"]}}
        return {**spec, "recipe": {**spec["recipe"], "aspectSummarization": {**a, "knowledge": knowledge}}}


def stage_in_training(pos: StagePosition, state: str) -> str:
    """`{stage}/{stages}`: the latest checkpoint's stage, or the next one once that stage ended
    (its last checkpoint is published and the run goes on)."""
    index = pos.index + 1 if pos.step >= pos.steps and pos.index < pos.count and state != "completed" else pos.index
    return f"{index}/{pos.count}"


HOME = ShardedFinetuneHome()
