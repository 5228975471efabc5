"""ScorerService: a Cappy-style scorer that ranks (instruction, response) pairs and boosts an LLM.

The defaults are the authors' (SEEDS-DETAIL.md section 1): 17 candidates from five decoding
strategies, min 3 / max 64 new tokens, adaptation with AdamW at 2e-5, warm-up 0.1, 8 x 16 pairs
per optimizer step, 102,400 pairs built with seed 11111.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .base import Block, Rule, immutable, set_fields
from .common import (
    DatasetRef, FailurePolicy, ModelSpec, Resources, ServiceStatus, ServingResources, Storage, ShortText,
)

STRATEGY_NAME = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"


class Strategy(Block):
    """One decoding strategy of the generator: `count` candidates per prompt."""

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=STRATEGY_NAME)]
    """Label of the strategy (`beam4`, `sampling`, `temp0.9`...): recorded with each candidate."""
    count: Annotated[int, Field(ge=1, le=64)] = 1
    """Candidates this strategy adds per prompt (a beam strategy returns its best `count` beams)."""
    sample: bool = False
    """Sample (do_sample); false: beam search with numBeams (greedy when numBeams is 1)."""
    num_beams: Annotated[int, Field(ge=1, le=64)] = 1
    """Beam width of a beam strategy (must be at least count)."""
    temperature: Optional[Annotated[float, Field(gt=0, le=10)]] = None
    """Sampling temperature (unset: 1.0)."""
    top_k: Optional[Annotated[int, Field(ge=0, le=100000)]] = None
    """Top-k filter of a sampling strategy. Unset: 50, the default HF generate applied in the
    authors' code to every sampling strategy; 0 disables the filter (pure sampling)."""
    top_p: Optional[Annotated[float, Field(gt=0, le=1)]] = None
    """Nucleus filter of a sampling strategy (unset: 1.0, no filter)."""

    rules = (
        Rule(
            "self.sample || self.numBeams >= self.count",
            "a beam strategy returns at most numBeams candidates: raise numBeams or lower count",
            lambda s: s.sample or s.num_beams >= s.count,
            ".count",
        ),
        Rule(
            "self.sample || (!has(self.temperature) && !has(self.topK) && !has(self.topP))",
            "temperature, topK and topP apply to sampling: set sample: true or remove them",
            lambda s: s.sample or set_fields(s, "temperature", "top_k", "top_p") == 0,
            ".sample",
        ),
    )


DEFAULT_STRATEGIES = [
    Strategy(name="beam4", count=1, num_beams=4),
    Strategy(name="sampling", count=4, sample=True),
    Strategy(name="temp0.9", count=4, sample=True, temperature=0.9),
    Strategy(name="topk40", count=4, sample=True, top_k=40),
    Strategy(name="topp0.95", count=4, sample=True, top_p=0.95),
]
"""The authors' 17 candidates: 1 from beam 4, and 4 each from four separate sampling strategies."""


class Endpoint(Block):
    """An external OpenAI-compatible completions endpoint as the generator."""

    url: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s]+$")]
    """Base URL; `/completions` is appended (e.g. http://vllm.llm.svc:8000/v1)."""
    model: Annotated[str, Field(min_length=1, max_length=256)]
    """The `model` field of each completions request."""
    api_key_secret: Optional[Annotated[str, Field(min_length=1, max_length=253)]] = None
    """A Secret in the namespace whose key OPENAI_API_KEY is sent as a bearer token."""
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    """Per request."""


class Generator(Block):
    """An LLM whose candidates the scorer ranks (boosting): the best-scored candidate is returned."""

    model: Optional[ModelSpec] = None
    """A causal or seq2seq model glassbox loads itself (uri, or fromRun a PretrainRun or
    ShardedFinetune checkpoint)."""
    endpoint: Optional[Endpoint] = None
    """Or an external OpenAI-compatible endpoint (vLLM, TGI, a hosted API)."""
    strategies: Annotated[list[Strategy], Field(min_length=1, max_length=32)] = DEFAULT_STRATEGIES
    """Decoding strategies, in generation order; ties in score go to the earlier candidate."""
    min_new_tokens: Annotated[int, Field(ge=0, le=32768)] = 3
    """Shortest candidate in tokens."""
    max_new_tokens: Annotated[int, Field(ge=1, le=32768)] = 64
    """Longest candidate in tokens."""
    max_source_length: Annotated[int, Field(ge=8, le=131072)] = 512
    """Longest prompt in tokens (truncated from the left for a decoder, from the right for a seq2seq model)."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 11111
    """Sampling seed of a request (the same prompt gives the same candidates)."""

    rules = (
        Rule(
            "has(self.model) != has(self.endpoint)",
            "generator needs exactly one of model and endpoint",
            lambda g: set_fields(g, "model", "endpoint") == 1,
            ".model",
        ),
        Rule(
            "self.minNewTokens <= self.maxNewTokens",
            "minNewTokens must not exceed maxNewTokens",
            lambda g: g.min_new_tokens <= g.max_new_tokens,
            ".minNewTokens",
        ),
    )


class Adaptation(Block):
    """Finetune the scorer (never the LLM) on a downstream task before serving it."""

    data: DatasetRef
    """Task examples: an instruction, its references and (optionally) LLM samples."""
    instruction_field: Annotated[str, Field(min_length=1, max_length=128)] = "instruction"
    """Field of the instruction in each example."""
    references_field: Annotated[str, Field(min_length=1, max_length=128)] = "references"
    """Field of the reference responses (a string or a list of strings)."""
    samples_field: Annotated[str, Field(min_length=1, max_length=128)] = "samples"
    """Field of the LLM samples: a list of strings, or the authors' `{decoding: [{response}]}` map."""
    generate_samples: bool = True
    """An example without samples gets them from spec.generator (when one is set)."""
    eval_data: Optional[DatasetRef] = None
    """Held-out examples with references: the adapted scorer picks among their candidates and the
    Rouge-L F of its picks is reported (evals) and compared with the first (beam) candidate."""
    size: Annotated[int, Field(ge=1, le=100_000_000)] = 102_400
    """Training pairs after the shuffle, repeated and truncated to this many."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 11111
    """Seed of the pair builder (Python's random) and of the training order and initialisation."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 2e-5
    """AdamW peak learning rate."""
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.0
    """AdamW weight decay."""
    warmup_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Fraction of optimizer steps for linear warm-up from 0; then linear decay to 0."""
    epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    """Passes over the built pairs."""
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 8
    """Pairs per forward pass."""
    gradient_accumulation: Annotated[int, Field(ge=1, le=4096)] = 16
    """Forward passes per optimizer step (8 x 16 = the authors' 128 pairs per step)."""
    resources: Resources = Resources()
    """Backend and node pool of the adaptation workload (a batch Job by default)."""


class ScorerServiceSpec(Block):
    """Desired state of a ScorerService."""

    model: Annotated[ModelSpec, Field(json_schema_extra=immutable("model"))]
    """The scorer: a sequence-regression model (RoBERTa or BERT, one output) from a uri (also
    package://NAME, the model folder a Python package ships), a fromRun or a config."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Serving replicas (scale subresource: kubectl scale works)."""
    max_length: Annotated[int, Field(ge=8, le=8192)] = 512
    """Longest (instruction, response) pair in tokens; longer pairs are truncated (longest first)."""
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 32
    """Pairs scored per forward pass; concurrent requests are batched together up to this."""
    score_transform: Literal["clip", "sigmoid", "none"] = "clip"
    """How a raw score is shown: clipped to [0, 1], squashed, or raw. Ranking and selection always
    use the raw score (clipping makes ties)."""
    generator: Optional[Generator] = None
    """Optional LLM to boost: the service then also answers generate-and-rank requests."""
    adaptation: Annotated[Optional[Adaptation], Field(json_schema_extra=immutable("adaptation"))] = None
    """Optional downstream adaptation of the scorer before serving (a batch workload first)."""
    resources: ServingResources = ServingResources()
    """Backend and node pool of the replicas."""
    storage: Storage = Storage()
    """Where the scorer weights live and adaptations are published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries of the adaptation workload."""
    suspend: bool = False
    """Scale the service to nothing and remove it; false brings it back."""


class ScorerProgress(Block):
    """Adaptation and serving counters."""

    pairs_scored: Optional[Annotated[int, Field(ge=0)]] = None
    """Pairs scored since the service's replicas started (from their /metrics)."""
    adaptation_step: Optional[Annotated[int, Field(ge=0)]] = None
    """Adaptation optimizer steps done."""
    total_steps: Optional[Annotated[int, Field(ge=0)]] = None
    """Adaptation optimizer steps planned."""
    done: Optional[ShortText] = None
    """adaptationStep/totalSteps, for `kubectl get`."""
    adaptation_loss: Optional[float] = None
    """Mean squared error of the last adaptation steps."""
    adaptation_eval: Annotated[dict[str, float], Field(max_length=32)] = {}
    """Eval of the adapted scorer (rougeL of its picks, rougeL of the beam candidate, ...)."""
    checkpoint: Optional[ShortText] = None
    """The adapted checkpoint the service loads (short name)."""
    latest_checkpoint: Optional[Annotated[str, Field(max_length=2048)]] = None
    """URI of the adapted checkpoint."""


class ScorerServiceStatus(ServiceStatus):
    """Observed state of a ScorerService."""

    progress: Optional[ScorerProgress] = None
    """Adaptation and serving counters."""
