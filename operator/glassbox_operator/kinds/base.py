"""What a kind's home says, and the generic parts that several kinds share.

A KindHome holds everything specific to one kind: its stages (a batch run, or training then
serving), the Resources block and backends of each stage, its image family, its replicas, and how
progress maps from the run manifest into status. The reconcile loop, the status function and the
renderers ask the home; they never branch on a kind name (tests/unit/operator/test_kind_homes.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from glassbox_api.conditions import Cond
from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

STAGE_RUN = "run"
"""A batch kind's one stage."""
STAGE_TRAIN = "train"
"""A service kind's training stage (a batch workload that publishes like a batch kind)."""
STAGE_SERVE = "serve"
"""A service kind's serving stage (a KServe InferenceService)."""

PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"
"""The uid of a resource not created yet (`glassbox render`): owner references and run paths."""


@dataclass(frozen=True)
class Plan:
    """Which children a pass wants: the attempt, the stage, or none (teardown)."""

    attempt: int = 0
    stage: str = STAGE_RUN
    teardown: bool = False


@dataclass(frozen=True)
class Rival:
    """The run manifest of the checkpoint a service serves, read so a newly trained candidate can be
    compared with it (KindHome.rival_run names the run; the reconcile pass reads it)."""

    run_uri: str
    manifest: Optional[Manifest]
    """None when no manifest is published there."""
    error: Optional[str] = None
    """Why the manifest could not be read (store down): nothing is decided then."""


@dataclass(frozen=True)
class Verdict:
    """A promotion decision made on this pass: the Promoted condition's status, reason and message."""

    promoted: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Choice:
    """Which checkpoint a service that trains its own models serves, and the fate of the candidate."""

    checkpoint: Optional[str]
    """What the InferenceService loads; None: nothing serves (a first training)."""
    candidate: Optional[str] = None
    """A newly trained checkpoint that was refused: published, not served."""
    verdict: Optional[Verdict] = None
    """Decided on this pass; None leaves the Promoted condition as it was."""


def short_checkpoint(step: int) -> str:
    """The name a person reads in `kubectl get`: `step-78` (the full URI is in -o wide)."""
    return f"step-{step}"


def rounded(x: Optional[float], digits: int = 4) -> Optional[float]:
    """A number as `kubectl get` should show it (5.854, not 5.853981201465313)."""
    return None if x is None else round(float(x), digits)


def done_of(done: Optional[int], total: Optional[int]) -> Optional[str]:
    """`78/104` (or `78` while the total is unknown)."""
    if done is None:
        return f"0/{total}" if total is not None else None
    return f"{done}/{total}" if total is not None else str(done)


@dataclass(frozen=True)
class InputRef:
    """A published output of another resource that a spec reads besides its starting weights
    (model.fromRun has its own path): resolved like fromRun, recorded in status.lineage[key]."""

    key: str
    """Its key in status.lineage (`knowledge`)."""
    field: str
    """The spec field that names it, for messages."""
    kind: str
    name: str


class KindHome:
    """The defaults every kind starts from: a batch kind with one stage."""

    kind: str = ""
    family: str = "torch"
    """Image family of the batch stages (chart values defaults.images)."""
    backends: tuple[str, ...] = ("jobset", "job", "local")
    """Backends the batch stages support (the CRDs refuse the rest; this is the operator's own guard)."""
    service: bool = False
    """A service kind: ends in a serving stage, never Complete."""
    served: Optional[tuple[str, str]] = None
    """Service kinds: (unit, progress key) of the items counter its replicas' /metrics report
    (podcontract.SERVED_ITEMS_METRIC), summed into status.progress; None reads nothing."""

    def first_stage(self, resource: Resource, conditions: list[dict[str, Any]]) -> str:
        """The stage a pass starts from, given the last status's conditions."""
        return STAGE_SERVE if self.service else STAGE_RUN

    def stage_of(self, resource: Resource, old: dict[str, Any]) -> str:
        """The stage a pass starts from, given the whole last status (a kind that retrains when its
        spec changes compares the run the last pass worked on); by default first_stage."""
        return self.first_stage(resource, old.get("conditions") or [])

    def run_id(self, resource: Resource, uid: str) -> str:
        """The id naming the run folder (`<name>-<id[:8]>`, manifest.run_prefix) that the workload
        publishes to (Env.RUN_ID) and status.artifacts names: by default the uid, one run per resource."""
        return uid

    def rival_run(self, resource: Resource, old: dict[str, Any], manifest: Optional[Manifest],
                  run_uri: str) -> Optional[str]:
        """Services that retrain: the run whose manifest the pass must read to compare a newly
        trained candidate with the serving model; None when nothing is to be decided."""
        return None

    def choose(self, resource: Resource, stage: str, old: dict[str, Any], manifest: Optional[Manifest],
               run_uri: str, rival: Optional[Rival]) -> Optional[Choice]:
        """Services that retrain: the checkpoint to serve in `stage` (kept while a new model trains,
        the candidate once promoted), pure; None: the serving stage loads the latest checkpoint of
        its own run (serves_own_checkpoint) or spec.model."""
        return None

    def resources(self, spec: Any, stage: str) -> Any:
        """The spec's Resources block of a stage."""
        return spec.resources

    def workload_prefix(self, stage: str) -> str:
        """What comes before `a<attempt>` in the workload child's name (`train-` for a training stage)."""
        return ""

    def replicas(self, spec: Any) -> int:
        """Service kinds: the replicas the serving stage runs (a batch kind has no serving stage)."""
        raise TypeError(f"{self.kind} is a batch kind: it has no serving stage and no replicas")

    def indexed_completions(self, spec: Any, stage: str) -> Optional[int]:
        """Batch kinds whose work splits into independent items: the completions of an Indexed Job
        (one item per index, `workers` pods at a time) on backend job; None: one pod does it all."""
        return None

    def serves_own_checkpoint(self, spec: Any) -> bool:
        """Service kinds: the serving stage loads the latest checkpoint its own training stage published."""
        return False

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        """Kind-specific progress from the run manifest (None when there is nothing to say)."""
        return None

    def secret_env(self, spec: Any) -> list[dict[str, Any]]:
        """Environment of the workload containers from Secrets the spec names (by reference, never values)."""
        return []

    def inputs(self, spec: Any) -> list[InputRef]:
        """Other resources' outputs the spec reads (resolved before the workload starts)."""
        return []

    def published(self, manifest: Manifest, run_uri: str) -> Optional[dict[str, Any]]:
        """What another resource's input reads from a run of this kind once it is there: {uri,
        sha256}; None while it is not published."""
        return None

    def resolved_spec(self, spec: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The spec (wire form) the workload reads, with its resolved inputs written in."""
        return spec

    def artifacts(self, run_uri: str) -> dict[str, str]:
        """URIs of the kind's own result files in status.artifacts, beside runUri and manifestUri."""
        return {}


def trained(conditions: list[dict[str, Any]]) -> bool:
    return any(c.get("type") == Cond.TRAINED and c.get("status") == "True" for c in conditions)


def training_progress(manifest: Manifest, run_uri: Optional[str], *, total: bool = True,
                      checkpoint: bool = True) -> dict[str, Any]:
    """step, loss, done/total and the latest checkpoint: what every training kind reports."""
    out: dict[str, Any] = {}
    if total and manifest.total_steps is not None:
        out["totalSteps"] = manifest.total_steps
    latest = manifest.latest
    if latest is None:
        if total and manifest.total_steps is not None:
            out["done"] = done_of(None, manifest.total_steps)
        return out
    out["step"] = latest.step
    if total:
        out["done"] = done_of(latest.step, manifest.total_steps)
    if latest.loss is not None:
        out["loss"] = rounded(latest.loss)
    if checkpoint:
        out["checkpoint"] = short_checkpoint(latest.step)
        if run_uri:
            out["latestCheckpoint"] = f"{run_uri}/{latest.path}"
    return out
