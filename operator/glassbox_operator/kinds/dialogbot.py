"""DialogBot: a training stage (a batch workload on torch, when spec.training is set), then a
serving stage (the model server, `--stage serve`, in a KServe InferenceService) on the checkpoint
the training published: the one with the best dev loss, with its test metrics in the manifest.

Promotion (spec.serving.promotion): a candidate checkpoint replaces the serving one only if its
test metric is no worse; `promotion()` is that decision, pure, with the message status shows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import STAGE_SERVE, STAGE_TRAIN, KindHome, rounded, training_progress, trained


@dataclass(frozen=True)
class Decision:
    """Whether the candidate serves, and why (both numbers)."""

    promote: bool
    message: str


def promotion(metric: str, direction: str, serving: Optional[Mapping[str, float]],
              candidate: Mapping[str, float]) -> Decision:
    """A candidate is promoted when nothing serves yet, or its test `metric` is no worse than the
    serving model's in `direction` (lower or higher is better). A candidate without the metric
    (or with NaN) is refused; a serving model without it is replaced."""
    new = candidate.get(metric)
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return Decision(False, f"the candidate has no test {metric}: the serving model stays")
    old = serving.get(metric) if serving else None
    if old is None or (isinstance(old, float) and math.isnan(old)):
        return Decision(True, f"candidate promoted: test {metric} {new:.4g} (nothing to compare with)")
    better = new <= old if direction == "lower" else new >= old
    verb = "promoted" if better else "refused"
    cmp = "no worse than" if better else "worse than"
    return Decision(better, f"candidate {verb}: test {metric} {new:.4g} is {cmp} the serving model's {old:.4g} "
                            f"({direction} is better)")


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
        """Steps done of planned, loss, the test metrics and dev loss of the published (best)
        checkpoint, and that checkpoint as the one served."""
        if manifest is None:
            return None
        out = training_progress(manifest, run_uri, total=True, checkpoint=False)
        out.pop("done", None)
        latest = manifest.latest
        if latest is not None and latest.evals:
            out["eval"] = {k: rounded(v) for k, v in latest.evals.items() if k != "devLoss"}
            if "devLoss" in latest.evals:
                out["bestDevLoss"] = rounded(latest.evals["devLoss"])
        if latest is not None and run_uri:
            out["servingCheckpoint"] = f"{run_uri}/{latest.path}"
        return out or None


HOME = DialogBotHome()
