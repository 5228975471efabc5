"""MetricEval: CTC interpretable metrics and the generation metrics the other systems report."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .base import Block, Rule, immutable
from .common import BaseStatus, DatasetRef, FailurePolicy, ModelSpec, Resources, Storage

CTC_METRICS = ("consistency", "relevance", "preservation", "groundedness", "engagingness")
# Which CTC metric belongs to which task.
CTC_TASK = {
    "consistency": "summarization",
    "relevance": "summarization",
    "preservation": "style-transfer",
    "groundedness": "dialog",
    "engagingness": "dialog",
}

Metric = Literal[
    "consistency", "relevance", "preservation", "groundedness", "engagingness",
    "rouge-1", "rouge-2", "rouge-l", "bleu-2", "bleu-4", "nist-4", "meteor",
    "entropy-4", "dist-1", "dist-2", "perplexity", "ha-bleu", "msj",
]


class Aligner(Block):
    """The information-alignment model behind the CTC metrics."""

    type: Literal["embedding", "discriminative", "regression"] = "embedding"
    """embedding (E): max cosine similarity of contextual embeddings; discriminative (D): a token
    classifier giving P(aligned); regression (R): aggregated-label regression."""
    model: ModelSpec
    """The encoder or classifier."""


class EvalFields(Block):
    """Which fields of each example hold what."""

    output: Annotated[str, Field(min_length=1, max_length=128)] = "output"
    """The generated text being judged (summary, transferred sentence, response)."""
    source: Annotated[str, Field(min_length=1, max_length=128)] = "source"
    """The input: document, original sentence or dialog history."""
    references: Annotated[str, Field(min_length=1, max_length=128)] = "references"
    """Reference texts (a list)."""
    knowledge: Annotated[str, Field(min_length=1, max_length=128)] = "knowledge"
    """Knowledge grounding a dialog response."""


class MetricEvalSpec(Block):
    """Desired state of a MetricEval."""

    task: Literal["summarization", "style-transfer", "dialog", "generation"]
    """What kind of text is judged; fixes which CTC metrics apply."""
    metrics: Annotated[list[Metric], Field(min_length=1, max_length=32, json_schema_extra={"x-kubernetes-list-type": "set"})]
    """Metrics to compute."""
    data: Annotated[DatasetRef, Field(json_schema_extra=immutable("data"))]
    """Examples to score (JSON lines)."""
    fields: EvalFields = EvalFields()
    """Field names inside each example."""
    aligner: Optional[Aligner] = None
    """Required for the CTC metrics."""
    language_model: Optional[ModelSpec] = None
    """Model for perplexity."""
    resources: Resources = Resources()
    """Backend and node pool."""
    storage: Storage = Storage()
    """Where scores are published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries on failure."""
    suspend: bool = False
    """Tear the workload down."""

    rules = (
        Rule(
            "!self.metrics.exists(m, m in ['consistency', 'relevance', 'preservation', 'groundedness', 'engagingness']) || has(self.aligner)",
            "the CTC metrics need spec.aligner",
            lambda s: not any(m in CTC_METRICS for m in s.metrics) or s.aligner is not None,
            ".aligner",
        ),
        Rule(
            "!self.metrics.exists(m, m in ['consistency', 'relevance']) || self.task == 'summarization'",
            "consistency and relevance are summarization metrics: set task: summarization",
            lambda s: not any(m in ("consistency", "relevance") for m in s.metrics) or s.task == "summarization",
            ".metrics",
        ),
        Rule(
            "!self.metrics.exists(m, m == 'preservation') || self.task == 'style-transfer'",
            "preservation is a style-transfer metric: set task: style-transfer",
            lambda s: "preservation" not in s.metrics or s.task == "style-transfer",
            ".metrics",
        ),
        Rule(
            "!self.metrics.exists(m, m in ['groundedness', 'engagingness']) || self.task == 'dialog'",
            "groundedness and engagingness are dialog metrics: set task: dialog",
            lambda s: not any(m in ("groundedness", "engagingness") for m in s.metrics) or s.task == "dialog",
            ".metrics",
        ),
        Rule(
            "!self.metrics.exists(m, m == 'perplexity') || has(self.languageModel)",
            "perplexity needs spec.languageModel",
            lambda s: "perplexity" not in s.metrics or s.language_model is not None,
            ".languageModel",
        ),
        Rule(
            "self.resources.backend in ['job', 'local']",
            "MetricEval runs on backend job or local",
            lambda s: s.resources.backend in ("job", "local"),
            ".resources.backend",
        ),
    )


class EvalProgress(Block):
    """Scoring progress and results."""

    examples_scored: Optional[Annotated[int, Field(ge=0)]] = None
    """Examples scored so far."""
    examples_total: Optional[Annotated[int, Field(ge=0)]] = None
    """Examples in the data."""
    done: Optional[Annotated[str, Field(max_length=64)]] = None
    """Progress as a person reads it: `{examplesScored}/{examplesTotal}` (examples scored)."""
    results: Annotated[dict[str, float], Field(max_length=64)] = {}
    """Corpus-level score of each metric."""


class MetricEvalStatus(BaseStatus):
    """Observed state of a MetricEval."""

    progress: Optional[EvalProgress] = None
    """Scoring progress and results."""
