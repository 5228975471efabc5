"""DialogBot: a training stage (a batch workload on torch, when spec.training is set), then a
serving stage (the model server, `--stage serve`, in a KServe InferenceService) on the checkpoint
the training published: the one with the best dev loss, with its test metrics in the manifest.

Each training spec trains into a run of its own (run_id: a digest of the uid and the spec's model,
language and training), so a changed spec.training trains a new model while the InferenceService
keeps serving the old checkpoint, whose run stays published. Promotion (spec.serving.promotion):
when the new run completes, its checkpoint replaces the serving one only if its test metric is no
worse; `promotion()` is that decision, pure, with the message the Promoted condition shows.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from glassbox_api.conditions import Cond, Reason
from glassbox_api.manifest import CheckpointEntry, Manifest, run_prefix
from glassbox_api.resource import Resource

from .base import (
    STAGE_SERVE, STAGE_TRAIN, Choice, KindHome, Rival, Verdict, rounded, training_progress, trained,
)

SERVING, CANDIDATE = "servingCheckpoint", "candidateCheckpoint"
"""status.progress keys: the checkpoint the endpoint serves, and a refused candidate."""


@dataclass(frozen=True)
class Decision:
    """Whether the candidate serves, and why (both numbers)."""

    promote: bool
    message: str
    reason: str = ""
    """Promoted, CandidateWorse or NoCandidate (the Promoted condition's reason)."""


def promotion(metric: str, direction: str, serving: Optional[Mapping[str, float]],
              candidate: Mapping[str, float]) -> Decision:
    """A candidate is promoted when nothing serves yet, or its test `metric` is no worse than the
    serving model's in `direction` (lower or higher is better). A candidate without the metric
    (or with NaN) is refused; a serving model without it is replaced."""
    new = candidate.get(metric)
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return Decision(False, f"the candidate has no test {metric}: the serving model stays", Reason.NO_CANDIDATE)
    old = serving.get(metric) if serving else None
    if old is None or (isinstance(old, float) and math.isnan(old)):
        return Decision(True, f"candidate promoted: test {metric} {new:.4g} (nothing to compare with)", Reason.PROMOTED)
    better = new <= old if direction == "lower" else new >= old
    verb = "promoted" if better else "refused"
    cmp = "no worse than" if better else "worse than"
    return Decision(better, f"candidate {verb}: test {metric} {new:.4g} is {cmp} the serving model's {old:.4g} "
                            f"({direction} is better)", Reason.PROMOTED if better else Reason.CANDIDATE_WORSE)


def training_digest(spec: Any, uid: str) -> str:
    """8 hex digits naming a training spec's run: the uid (a recreated resource starts afresh), the
    model, the language and spec.training, set values only (a default added to the API later does
    not move an existing run)."""
    parts = {k: getattr(spec, k).model_dump(mode="json", by_alias=True, exclude_defaults=True)
             for k in ("model", "training")}
    parts["language"] = spec.language
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{uid}/{blob}".encode()).hexdigest()[:8]


def run_of(checkpoint: str) -> str:
    """The run folder of a checkpoint URI (`<run>/checkpoints/<step>`), or the URI itself (a run served
    before it published a checkpoint)."""
    i = checkpoint.rfind("/checkpoints/")
    return checkpoint[:i] if i >= 0 else checkpoint


def _in_run(uri: str, run_uri: str) -> bool:
    return uri == run_uri or uri.startswith(run_uri.rstrip("/") + "/")


def _candidate(manifest: Optional[Manifest], run_uri: str) -> Optional[tuple[str, CheckpointEntry]]:
    """The completed run's published (best) checkpoint: its URI and entry."""
    if manifest is None or manifest.state != "completed" or manifest.latest is None:
        return None
    return f"{run_uri}/{manifest.latest.path}", manifest.latest


def _refused_before(old: dict[str, Any], candidate: str) -> bool:
    """The last status already refused this very candidate (its condition says why): not compared again."""
    promoted = next((c for c in old.get("conditions") or [] if c.get("type") == Cond.PROMOTED), {})
    return (old.get("progress") or {}).get(CANDIDATE) == candidate and promoted.get("status") == "False"


def _evals_at(manifest: Optional[Manifest], checkpoint: str) -> Optional[dict[str, float]]:
    """The test metrics the run manifest lists for a checkpoint URI (its latest for a bare run URI)."""
    if manifest is None:
        return None
    run = run_of(checkpoint)
    path = checkpoint[len(run):].lstrip("/")
    entry = manifest.latest if not path else next((c for c in manifest.checkpoints if c.path == path), None)
    return dict(entry.evals) if entry is not None else None


class DialogBotHome(KindHome):
    kind = "DialogBot"
    family = "torch"
    backends = ("ray", "jobset", "job", "local")
    service = True

    def first_stage(self, resource: Resource, conditions: list[dict[str, Any]]) -> str:
        return STAGE_TRAIN if resource.spec.training is not None and not trained(conditions) else STAGE_SERVE

    def stage_of(self, resource: Resource, old: dict[str, Any]) -> str:
        """Train until trained; trained for an earlier training spec (the last pass's run is not
        this spec's run) is not trained: a new model trains."""
        stage = self.first_stage(resource, old.get("conditions") or [])
        last = ((old.get("artifacts") or {}).get("runUri") or "").rstrip("/")
        if stage == STAGE_SERVE and resource.spec.training is not None and last:
            uid = resource.metadata.get("uid") or ""
            mine = run_prefix(resource.namespace, self.kind, resource.name, self.run_id(resource, uid)) if uid else None
            if mine and not last.endswith("/" + mine):
                return STAGE_TRAIN
        return stage

    def run_id(self, resource: Resource, uid: str) -> str:
        """`<digest>-<uid>`: one run per training spec (the run folder keeps the digest's 8 digits)."""
        if resource.spec.training is None:
            return uid
        return f"{training_digest(resource.spec, uid)}-{uid}"

    def rival_run(self, resource: Resource, old: dict[str, Any], manifest: Optional[Manifest],
                  run_uri: str) -> Optional[str]:
        """The serving checkpoint's run, once this spec's run completed and its candidate has not been
        refused already (so a refused candidate costs no read on later passes)."""
        serving = (old.get("progress") or {}).get(SERVING)
        if resource.spec.training is None or not serving or _in_run(serving, run_uri):
            return None
        cand = _candidate(manifest, run_uri)
        if cand is None or _refused_before(old, cand[0]):
            return None
        return run_of(serving)

    def choose(self, resource: Resource, stage: str, old: dict[str, Any], manifest: Optional[Manifest],
               run_uri: str, rival: Optional[Rival]) -> Optional[Choice]:
        """While training: the serving checkpoint stays (none on a first training). Serving this spec's
        own run: its published checkpoint (the run itself before one exists). Serving an earlier run's
        checkpoint: the new run's candidate replaces it only if promotion() says so."""
        if resource.spec.training is None:
            return None
        serving = (old.get("progress") or {}).get(SERVING)
        if stage != STAGE_SERVE:
            return Choice(serving)
        latest = manifest.latest if manifest is not None else None
        if serving is None or _in_run(serving, run_uri):
            return Choice(f"{run_uri}/{latest.path}" if latest is not None else serving or run_uri)
        if manifest is None:
            return Choice(serving)  # unreadable, or not published yet: decide on a later pass
        cand = _candidate(manifest, run_uri)
        if cand is None:
            return Choice(serving, None, Verdict(False, Reason.NO_CANDIDATE, f"the new training ({run_uri}) completed no "
                                                 f"checkpoint: {serving} keeps serving"))
        uri, entry = cand
        if _refused_before(old, uri) or rival is None or rival.error is not None:
            return Choice(serving, uri)  # refused already (the condition says why), or the comparison waits for the store
        promo = resource.spec.serving.promotion
        d = promotion(promo.metric, promo.direction, _evals_at(rival.manifest, serving), entry.evals)
        if d.promote:
            return Choice(uri, None, Verdict(True, d.reason, f"{d.message}; now serving {uri}"))
        return Choice(serving, uri, Verdict(False, d.reason, f"{d.message}; {serving} keeps serving"))

    def resources(self, spec: Any, stage: str) -> Any:
        return spec.training.resources if stage == STAGE_TRAIN else spec.serving.resources

    def workload_prefix(self, stage: str) -> str:
        return "train-" if stage == STAGE_TRAIN else ""

    def replicas(self, spec: Any) -> int:
        return spec.serving.replicas

    def serves_own_checkpoint(self, spec: Any) -> bool:
        return spec.training is not None

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        """Steps done of planned, loss, the test metrics and dev loss of this spec's run's published
        (best) checkpoint; which checkpoint serves, and a refused candidate, come from choose()."""
        if manifest is None:
            return None
        out = training_progress(manifest, run_uri, total=True, checkpoint=False)
        out.pop("done", None)
        latest = manifest.latest
        if latest is not None and latest.evals:
            out["eval"] = {k: rounded(v) for k, v in latest.evals.items() if k != "devLoss"}
            if "devLoss" in latest.evals:
                out["bestDevLoss"] = rounded(latest.evals["devLoss"])
        return out or None


HOME = DialogBotHome()
