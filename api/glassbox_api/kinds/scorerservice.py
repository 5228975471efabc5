"""ScorerService: a Cappy-style scorer that ranks (instruction, response) pairs and boosts an LLM."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .base import Block, Rule
from .common import DatasetRef, ModelSpec, ServiceStatus, ServingResources, Storage


class Generator(Block):
    """An LLM whose samples the scorer ranks (boosting): return the best-scored candidate."""

    model: ModelSpec
    """The generating model (a decoder or an encoder-decoder)."""
    beams: Annotated[int, Field(ge=0, le=64)] = 4
    """Beam width of the one beam-search candidate (0: no beam candidate)."""
    samples: Annotated[int, Field(ge=0, le=256)] = 16
    """Sampled candidates per prompt (plain sampling, temperature, top-k and top-p)."""
    temperature: Annotated[float, Field(gt=0, le=10)] = 0.9
    """Sampling temperature."""
    top_k: Annotated[int, Field(ge=0, le=100000)] = 40
    """Top-k filter (0 disables)."""
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    """Nucleus filter."""
    max_new_tokens: Annotated[int, Field(ge=1, le=32768)] = 128
    """Longest candidate."""

    rules = (
        Rule(
            "self.beams + self.samples >= 1",
            "generator needs at least one candidate: set beams or samples above 0",
            lambda g: g.beams + g.samples >= 1,
            ".samples",
        ),
    )


class Adaptation(Block):
    """Finetune the scorer (never the LLM) on a downstream task before serving it."""

    data: DatasetRef
    """Task examples: instruction, references and optional LLM samples."""
    size: Annotated[int, Field(ge=1, le=100_000_000)] = 10000
    """Training pairs after repeat/truncate."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 2e-5
    """AdamW peak learning rate."""
    warmup_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Fraction of steps for linear warm-up, then linear decay."""
    epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    """Passes over the built pairs."""
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 16
    """Pairs per step."""


class ScorerServiceSpec(Block):
    """Desired state of a ScorerService."""

    model: ModelSpec
    """The scorer: a sequence-regression model (RoBERTa-style) from a uri, a fromRun or a config."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Serving replicas (scale subresource: kubectl scale works)."""
    max_length: Annotated[int, Field(ge=8, le=8192)] = 512
    """Longest (instruction, response) pair in tokens; longer pairs are truncated."""
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 32
    """Pairs scored per forward pass."""
    score_transform: Literal["clip", "sigmoid"] = "clip"
    """How the raw regression output is put into [0, 1]."""
    generator: Optional[Generator] = None
    """Optional LLM to boost: the service then also answers generate-and-rank requests."""
    adaptation: Optional[Adaptation] = None
    """Optional downstream adaptation of the scorer before serving."""
    resources: ServingResources = ServingResources()
    """Backend and node pool of the replicas."""
    storage: Storage = Storage()
    """Where the scorer weights live and adaptations are published."""
    suspend: bool = False
    """Scale the service to nothing and remove it; false brings it back."""


class ScorerProgress(Block):
    """Serving counters."""

    pairs_scored: Optional[Annotated[int, Field(ge=0)]] = None
    """Pairs scored since the service started."""
    adaptation_step: Optional[Annotated[int, Field(ge=0)]] = None
    """Adaptation steps done."""


class ScorerServiceStatus(ServiceStatus):
    """Observed state of a ScorerService."""

    progress: Optional[ScorerProgress] = None
    """Serving counters."""
