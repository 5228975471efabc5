"""The six resource kinds of glassbox.dev/v1alpha1 and what the CRDs say about each."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Block
from .dialogbot import DialogBotSpec, DialogBotStatus
from .kgharvest import KGHarvestSpec, KGHarvestStatus
from .metriceval import MetricEvalSpec, MetricEvalStatus
from .pretrainrun import PretrainRunSpec, PretrainRunStatus
from .scorerservice import ScorerServiceSpec, ScorerServiceStatus
from .shardedfinetune import ShardedFinetuneSpec, ShardedFinetuneStatus


@dataclass(frozen=True)
class Column:
    """A printer column: what `kubectl get` shows."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class Scale:
    """Paths of the scale subresource."""

    spec_replicas: str
    status_replicas: str
    label_selector: str


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short: str
    spec: type[Block]
    status: type[Block]
    description: str
    columns: tuple[Column, ...]
    scale: Scale | None = None
    is_service: bool = False

    @property
    def singular(self) -> str:
        return self.kind.lower()


_PHASE = Column("Phase", ".status.phase", description="Pending, Running, Succeeded, Failed, Suspended or Ready")
_AGE = Column("Age", ".metadata.creationTimestamp", "date")
_PROGRESS_STEPS = Column("Progress", ".status.progress.done", description="Optimizer steps done of those planned")
_CHECKPOINT = Column("Checkpoint", ".status.progress.checkpoint", description="Latest published checkpoint (short name)")
_CHECKPOINT_URI = Column("Checkpoint-URI", ".status.progress.latestCheckpoint", priority=1, description="URI of the latest published checkpoint")
_MESSAGE = Column("Message", ".status.message", priority=1, description="What is happening now")

KINDS: dict[str, KindInfo] = {
    k.kind: k
    for k in (
        KindInfo(
            "PretrainRun", "pretrainruns", "ptr", PretrainRunSpec, PretrainRunStatus,
            "Pretrains a language model and publishes every checkpoint with the exact data that made it (LLM360).",
            (
                _PHASE,
                _PROGRESS_STEPS,
                Column("Loss", ".status.progress.loss", "number", description="Training loss at the latest checkpoint"),
                Column("PPL", ".status.progress.perplexity", "number", description="Held-out perplexity at the latest checkpoint"),
                _CHECKPOINT,
                _AGE,
                Column("Tokens", ".status.progress.tokens", "integer", priority=1),
                _CHECKPOINT_URI,
                _MESSAGE,
            ),
        ),
        KindInfo(
            "ShardedFinetune", "shardedfinetunes", "sft", ShardedFinetuneSpec, ShardedFinetuneStatus,
            "Finetunes a model in JAX with automatic tensor parallelism and a three-function recipe (Redco).",
            (
                _PHASE,
                _PROGRESS_STEPS,
                Column("Loss", ".status.progress.loss", "number", description="Training loss at the latest checkpoint"),
                Column("Shards", ".status.progress.modelShards", "integer", description="Model-parallel shards"),
                Column("Stage", ".status.progress.stage", priority=1,
                       description="Multi-stage recipes (progressive): the stage in training, {stage}/{stages}"),
                _CHECKPOINT,
                _AGE,
                _CHECKPOINT_URI,
                _MESSAGE,
            ),
        ),
        KindInfo(
            "ScorerService", "scorerservices", "scorer", ScorerServiceSpec, ScorerServiceStatus,
            "Serves a scorer that rates (instruction, response) pairs in [0, 1] and boosts an LLM by ranking its samples (Cappy).",
            (
                _PHASE,
                Column("Ready", ".status.readyReplicas", "integer"),
                Column("Replicas", ".status.replicas", "integer"),
                Column("Endpoint", ".status.endpoint"),
                Column("Adapted", ".status.progress.done", description="Adaptation steps done of those planned"),
                _AGE,
                Column("Pairs", ".status.progress.pairsScored", "integer", priority=1, description="Pairs scored by the replicas"),
                Column("Eval", ".status.progress.adaptationEval.rougeL", "number", priority=1, description="Rouge-L of the adapted scorer's picks"),
                _MESSAGE,
            ),
            scale=Scale(".spec.replicas", ".status.replicas", ".status.selector"),
            is_service=True,
        ),
        KindInfo(
            "KGHarvest", "kgharvests", "kgh", KGHarvestSpec, KGHarvestStatus,
            "Harvests a knowledge graph for given relations from a masked language model (BertNet).",
            (
                _PHASE,
                Column("Progress", ".status.progress.done", description="Relations done of those requested"),
                Column("Tuples", ".status.progress.tuples", "integer"),
                _AGE,
                _MESSAGE,
            ),
        ),
        KindInfo(
            "MetricEval", "metricevals", "meval", MetricEvalSpec, MetricEvalStatus,
            "Scores generated text with interpretable alignment metrics (CTC) and standard generation metrics.",
            (
                _PHASE,
                Column("Progress", ".status.progress.done", description="Examples scored of those in the data"),
                Column("Checkpoint", ".status.progress.checkpoint", description="Latest evaluated checkpoint of the followed run"),
                Column("Latest", ".status.progress.latest", "number", description="curve.metric at the latest evaluated checkpoint"),
                Column("Best", ".status.progress.best", "number", description="curve.metric at the best checkpoint so far"),
                Column("Best-Checkpoint", ".status.progress.bestCheckpoint", priority=1, description="The best checkpoint so far"),
                Column("Metric", ".status.progress.currentMetric", priority=1, description="The metric being computed now"),
                _AGE,
                _MESSAGE,
            ),
        ),
        KindInfo(
            "DialogBot", "dialogbots", "dbot", DialogBotSpec, DialogBotStatus,
            "Finetunes and serves a medical dialogue model with a visible disclaimer (CovidDialog).",
            (
                _PHASE,
                Column("Ready", ".status.readyReplicas", "integer"),
                Column("Endpoint", ".status.endpoint"),
                _AGE,
                Column("Serving", ".status.progress.servingCheckpoint", priority=1,
                       description="The checkpoint the endpoint serves"),
                Column("Candidate", ".status.progress.candidateCheckpoint", priority=1,
                       description="A newly trained checkpoint that promotion refused"),
                _MESSAGE,
            ),
            scale=Scale(".spec.serving.replicas", ".status.replicas", ".status.selector"),
            is_service=True,
        ),
    )
}

BY_PLURAL = {k.plural: k for k in KINDS.values()}


def kind_info(name: str) -> KindInfo:
    """Look a kind up by Kind, plural, singular or short name."""
    low = name.lower()
    for info in KINDS.values():
        if low in (info.kind.lower(), info.plural, info.short):
            return info
    raise KeyError(f"unknown kind {name!r}; known: {', '.join(KINDS)}")


__all__ = ["KINDS", "BY_PLURAL", "Column", "KindInfo", "Scale", "kind_info"]
