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


class AuxiliaryMaskedLoss(Block):
    """SSL-Reg: L = L_gen + weight * L_MLM, a masked-token loss through the shared encoder or decoder."""

    weight: Annotated[float, Field(gt=0, le=100)] = 0.1
    """Weight of the masked-token loss in the total."""
    mask_prob: Annotated[float, Field(gt=0, lt=1)] = 0.15
    """Share of tokens chosen for prediction (of them 80 % masked, 10 % random, 10 % kept)."""
    text: Literal["src+tgt", "src", "tgt"] = "src+tgt"
    """Which text is masked: the source and the target joined by a space (the original), or one of them."""
    shared: Literal["encoder", "decoder"] = "encoder"
    """Which stack the masked-token head reads (seq2seq); a causal model has only its decoder."""


class DialogTraining(Block):
    """Finetuning on doctor-patient consultations before serving."""

    data: DatasetRef
    """Consultations: id, url, description and alternating Patient:/Doctor: turns."""
    objective: Optional[Literal["seq2seq", "causal-dialogue"]] = None
    """seq2seq: one pair per doctor turn, the history as source (BART); causal-dialogue: the whole
    consultation as one sequence, loss on doctor tokens only (DialoGPT). Default: by architecture
    (bart seq2seq, else causal-dialogue)."""
    include_description: bool = False
    """Start the source with `description: ...` (the fairseq Transformer's format; BART and DialoGPT had none)."""
    split_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the 80/10/10 train/validation/test split (the original used 11111)."""
    epochs: Annotated[int, Field(ge=1, le=1000)] = 5
    """Passes over the training pairs."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 4e-5
    """Peak learning rate."""
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Share of the steps with a linear warm-up (then linear decay to 0)."""
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.01
    """AdamW weight decay (not on biases and LayerNorm weights)."""
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Label smoothing of the generation loss."""
    select_by: Literal["devLoss"] = "devLoss"
    """The dev split is evaluated after every epoch; the checkpoint with the best dev loss is kept and served."""
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 8
    """Pairs (or dialogues, causal-dialogue) per step (the original used 4)."""
    max_source_length: Annotated[int, Field(ge=8, le=131072)] = 400
    """Longest source (history) in tokens, truncated from the left (EN original 1024; a causal
    dialogue is cut to maxSourceLength + maxTargetLength)."""
    max_target_length: Annotated[int, Field(ge=1, le=131072)] = 128
    """Longest doctor turn in tokens (EN original 1024)."""
    auxiliary_masked_loss: Optional[AuxiliaryMaskedLoss] = None
    """Add a masked-token loss (SSL-Reg); absent: none."""
    resources: Resources = Resources()
    """Backend and node pool of the training workload."""


class Decoding(Block):
    """How responses are generated."""

    num_beams: Annotated[int, Field(ge=1, le=64)] = 10
    """Beam width."""
    no_repeat_ngram_size: Annotated[int, Field(ge=0, le=16)] = 3
    """Forbid repeating n-grams of this size (0 disables)."""
    length_penalty: Annotated[float, Field(ge=-10, le=10)] = 2.0
    """Beam score length penalty (exponent of the length)."""
    min_new_tokens: Annotated[int, Field(ge=0, le=4096)] = 50
    """Shortest response in tokens."""
    max_new_tokens: Annotated[int, Field(ge=1, le=4096)] = 200
    """Longest response in tokens."""

    rules = (
        Rule(
            "self.minNewTokens <= self.maxNewTokens",
            "minNewTokens must not exceed maxNewTokens",
            lambda d: d.min_new_tokens <= d.max_new_tokens,
            ".minNewTokens",
        ),
    )


class Promotion(Block):
    """Which test metric decides whether a newly trained model (a changed spec.training) replaces
    the serving one; the condition Promoted says what was decided, with both numbers."""

    metric: Annotated[str, Field(min_length=1, max_length=63)] = "perplexity"
    """A key of the test-split metrics (evals/test.json): perplexity, bleu2, bleu4, nist4, meteor, entropy4, dist1, dist2."""
    direction: Literal["lower", "higher"] = "lower"
    """Which way is better; a candidate that is no worse is promoted."""


class DialogServing(Block):
    """The chat endpoint."""

    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Serving replicas (scale subresource)."""
    disclaimer: Annotated[str, Field(min_length=20, max_length=2000)] = DEFAULT_DISCLAIMER
    """Shown with every response; it cannot be empty."""
    log_patient_text: bool = False
    """Log conversation text (off: only sizes and timings are logged)."""
    promotion: Promotion = Promotion()
    """Eval-gated promotion of a newly trained model."""
    resources: ServingResources = ServingResources()
    """Backend and node pool of the replicas."""


class DialogBotSpec(Block):
    """Desired state of a DialogBot."""

    model: Annotated[ModelSpec, Field(json_schema_extra=immutable("model"))]
    """Starting weights (uri, or fromRun a PretrainRun or ShardedFinetune) or an architecture."""
    language: Literal["en", "zh"] = "en"
    """Language of the consultations."""
    training: Optional[DialogTraining] = None
    """Finetune first; without it the model is served as it is. A changed training trains a new
    model into a run of its own while the old one keeps serving; it replaces the old one only if
    its test metric is no worse (serving.promotion)."""
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
    total_steps: Optional[Annotated[int, Field(ge=0)]] = None
    """Finetuning steps planned."""
    best_dev_loss: Optional[float] = None
    """Dev loss of the kept (best) checkpoint."""
    serving_checkpoint: Optional[Annotated[str, Field(max_length=2048)]] = None
    """The checkpoint the endpoint serves (kept while a new model trains)."""
    candidate_checkpoint: Optional[Annotated[str, Field(max_length=2048)]] = None
    """A newly trained checkpoint that promotion refused: published in its run, not served."""
    loss: Optional[float] = None
    """Latest training loss."""
    eval: Annotated[dict[str, float], Field(max_length=64)] = {}
    """Test-split metrics of the current training spec's run (perplexity, BLEU-2/4, NIST-4, METEOR,
    Entropy-4, Dist-1/2): the candidate's when promotion refused it."""


class DialogBotStatus(ServiceStatus):
    """Observed state of a DialogBot."""

    progress: Optional[DialogProgress] = None
    """Training and serving counters."""
