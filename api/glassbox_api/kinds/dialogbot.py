"""DialogBot: CovidDialog-style medical dialogue models, finetuned then served."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .base import Block, Rule, immutable
from .common import DatasetRef, FailurePolicy, ModelSpec, Resources, ServiceStatus, ServingResources, Storage

DEFAULT_DISCLAIMER = (
    "This assistant is a research system, not a doctor. Its answers may be wrong. "
    "For medical advice, contact a qualified health professional; in an emergency, call your local emergency number."
)


class DialogTraining(Block):
    """Finetuning on doctor-patient consultations before serving."""

    data: DatasetRef
    """Consultations: id, url, description and alternating Patient:/Doctor: turns."""
    split_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the 80/10/10 train/validation/test split."""
    epochs: Annotated[int, Field(ge=1, le=1000)] = 5
    """Passes over the training pairs."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 4e-5
    """Peak learning rate."""
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 8
    """Pairs per step."""
    max_source_length: Annotated[int, Field(ge=8, le=131072)] = 400
    """Longest source (description + history) in tokens, truncated from the left."""
    max_target_length: Annotated[int, Field(ge=1, le=131072)] = 128
    """Longest doctor turn in tokens."""
    auxiliary_masked_loss: bool = False
    """Add a masked-token loss on the source."""
    resources: Resources = Resources()
    """Backend and node pool of the training workload."""


class Decoding(Block):
    """How responses are generated."""

    num_beams: Annotated[int, Field(ge=1, le=64)] = 10
    """Beam width."""
    no_repeat_ngram_size: Annotated[int, Field(ge=0, le=16)] = 3
    """Forbid repeating n-grams of this size (0 disables)."""
    max_new_tokens: Annotated[int, Field(ge=1, le=4096)] = 128
    """Longest response."""


class DialogServing(Block):
    """The chat endpoint."""

    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Serving replicas (scale subresource)."""
    disclaimer: Annotated[str, Field(min_length=20, max_length=2000)] = DEFAULT_DISCLAIMER
    """Shown with every response; it cannot be empty."""
    log_patient_text: bool = False
    """Log conversation text (off: only sizes and timings are logged)."""
    resources: ServingResources = ServingResources()
    """Backend and node pool of the replicas."""


class DialogBotSpec(Block):
    """Desired state of a DialogBot."""

    model: Annotated[ModelSpec, Field(json_schema_extra=immutable("model"))]
    """Starting weights (uri, or fromRun a PretrainRun or ShardedFinetune) or an architecture."""
    language: Literal["en", "zh"] = "en"
    """Language of the consultations."""
    training: Annotated[Optional[DialogTraining], Field(json_schema_extra=immutable("training"))] = None
    """Finetune first; without it the model is served as it is."""
    decoding: Decoding = Decoding()
    """Generation settings."""
    serving: DialogServing = DialogServing()
    """The chat endpoint."""
    storage: Storage = Storage()
    """Where the finetuned model is published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries of the finetuning workload."""
    suspend: bool = False
    """Tear down training and serving; false brings them back."""

    rules = (
        Rule(
            "has(self.training) || has(self.model.uri) || has(self.model.fromRun)",
            "a DialogBot without training needs trained weights: set model.uri or model.fromRun, or add training",
            lambda s: s.training is not None or s.model.uri is not None or s.model.from_run is not None,
            ".model",
        ),
    )


class DialogProgress(Block):
    """Training and serving counters."""

    step: Optional[Annotated[int, Field(ge=0)]] = None
    """Finetuning steps done."""
    loss: Optional[float] = None
    """Latest training loss."""
    eval: Annotated[dict[str, float], Field(max_length=64)] = {}
    """Test-split metrics (perplexity, BLEU-2/4, NIST-4, METEOR, Entropy-4, Dist-1/2)."""


class DialogBotStatus(ServiceStatus):
    """Observed state of a DialogBot."""

    progress: Optional[DialogProgress] = None
    """Training and serving counters."""
