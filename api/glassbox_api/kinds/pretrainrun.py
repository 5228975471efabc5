"""PretrainRun: transparent pretraining, every checkpoint published with the data that made it (LLM360)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .base import Block, Rule, immutable, set_fields
from .common import (
    BaseStatus,
    FailurePolicy,
    ModelSpec,
    Resources,
    ShortText,
    Storage,
    Uri,
)


class DataSource(Block):
    """One named source of the pretraining mixture."""

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")]
    """Subset name; every packed sample records it."""
    uri: Uri
    """Files to read: s3://bucket/prefix, a local path, or stdlib:// (the Python standard
    library's own sources: an offline code corpus)."""
    weight: Annotated[float, Field(gt=0, le=1000)] = 1.0
    """Mixture weight relative to the other sources."""
    format: Literal["text", "jsonl"] = "text"
    """text: each file is one document; jsonl: one JSON document per line."""
    text_field: Annotated[str, Field(min_length=1, max_length=128)] = "text"
    """For jsonl: the field holding the document text."""
    include: Annotated[list[ShortText], Field(max_length=32)] = []
    """Glob patterns of files to read (all files when empty)."""


class TokenizerTraining(Block):
    """Train a byte-level BPE tokenizer on the sources."""

    vocab_size: Annotated[int, Field(ge=260, le=1_048_576)] = 8192
    """Target vocabulary size (special tokens included)."""
    min_frequency: Annotated[int, Field(ge=1, le=1000)] = 2
    """Minimum pair frequency for a merge."""


class TokenizerSpec(Block):
    """Where the tokenizer comes from: exactly one of uri and train."""

    uri: Optional[Uri] = None
    """A tokenizer.json (or a folder holding one) in the store."""
    train: Optional[TokenizerTraining] = None
    """Train a BPE tokenizer on the data."""

    rules = (
        Rule(
            "has(self.uri) != has(self.train)",
            "tokenizer needs exactly one of uri and train",
            lambda t: set_fields(t, "uri", "train") == 1,
        ),
    )


class PretrainData(Block):
    """Data preparation: tokenize, pack, hold out, chunk."""

    sources: Annotated[
        list[DataSource],
        Field(min_length=1, max_length=64, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ]
    """The mixture; names are unique."""
    seq_length: Annotated[int, Field(ge=8, le=131072)] = 2048
    """Tokens per training sample; samples are packed to seqLength+1 tokens."""
    chunks: Annotated[int, Field(ge=1, le=100000)] = 360
    """Packed samples are dealt round-robin into this many chunks (sample i -> chunk i % chunks)."""
    hold_out: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    """Validation samples held out per source."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the hold-out draw and of the sample order inside each chunk."""
    tokenizer: TokenizerSpec = TokenizerSpec(train=TokenizerTraining())
    """Tokenizer to use or to train."""


class Optimizer(Block):
    """AdamW with linear warm-up and cosine decay."""

    lr: Annotated[float, Field(gt=0, le=10)] = 3e-4
    """Peak learning rate, reached at the end of warm-up."""
    min_lr: Annotated[float, Field(ge=0, le=10)] = 3e-5
    """Learning rate at the end of the cosine decay."""
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """AdamW beta1."""
    beta2: Annotated[float, Field(ge=0, lt=1)] = 0.95
    """AdamW beta2."""
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.1
    """Decoupled weight decay."""
    eps: Annotated[float, Field(gt=0, le=1)] = 1e-8
    """AdamW epsilon."""

    rules = (
        Rule("self.minLr <= self.lr", "minLr must not exceed lr", lambda o: o.min_lr <= o.lr, ".minLr"),
    )


class PretrainTraining(Block):
    """The training loop."""

    strategy: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    """Data parallelism: DDP, FSDP (full sharding) or DeepSpeed ZeRO."""
    zero_stage: Optional[Literal[1, 2, 3]] = None
    """ZeRO stage; only with strategy deepspeed (defaults to 2 there)."""
    precision: Literal["fp32", "bf16"] = "bf16"
    """bf16 mixed precision on accelerators; CPU runs always compute in fp32."""
    micro_batch_size: Annotated[int, Field(ge=1, le=65536)] = 8
    """Samples per worker per forward pass."""
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=65536)] = 1
    """Micro-batches per optimizer step."""
    max_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """Optimizer steps; 0 means one pass over all chunks."""
    warmup_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 2000
    """Linear warm-up steps from 0 to the peak learning rate."""
    grad_clip: Annotated[float, Field(ge=0, le=1e6)] = 1.0
    """Clip the global gradient norm to this value (0 disables)."""
    optimizer: Optimizer = Optimizer()
    """Optimizer and schedule."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the model initialisation and of dropout."""
    deterministic: bool = False
    """Use deterministic kernels, so a resumed CPU run is bit-for-bit the uninterrupted one."""
    activation_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    compile: bool = False
    """Compile the training forward and backward with torch.compile. Faster steps after a slower
    first one (on one H100, a ~1B LLaMA in bf16 went from 31.6% to 39.6% MFU: bench/pretrain);
    results match eager mode to rounding, not bit for bit."""
    loss_chunk_tokens: Annotated[int, Field(ge=0, le=1_048_576)] = 0
    """Compute the next-token cross-entropy this many tokens at a time, fused with the output
    projection (its gradients are taken chunk by chunk in the forward pass), so fp32 logits over
    the whole vocabulary for the whole micro-batch never exist at once; 0 computes the plain
    cross-entropy over full logits. Same loss and gradients to rounding. Not with ZeRO-3, which
    partitions the output weight outside its module's forward."""
    param_dtype: Literal["fp32", "bf16"] = "fp32"
    """fp32: parameters in fp32, bf16 compute through autocast. bf16 (needs precision bf16 and
    strategy ddp): parameters and gradients in bf16, the optimizer steps an fp32 master copy and
    writes it back rounded, so no fp32 weight is re-cast every step; checkpoints publish the fp32
    master. FSDP's mixed precision and DeepSpeed's bf16 already keep an fp32 master of their own."""

    rules = (
        Rule(
            "!has(self.zeroStage) || self.strategy == 'deepspeed'",
            "zeroStage is only valid with strategy deepspeed",
            lambda t: t.zero_stage is None or t.strategy == "deepspeed",
            ".zeroStage",
        ),
        Rule(
            "self.maxSteps == 0 || self.warmupSteps < self.maxSteps",
            "warmupSteps must be smaller than maxSteps",
            lambda t: t.max_steps == 0 or t.warmup_steps < t.max_steps,
            ".warmupSteps",
        ),
        Rule(
            "self.lossChunkTokens == 0 || !has(self.zeroStage) || self.zeroStage != 3",
            "lossChunkTokens does not work with ZeRO-3 (set it to 0, or use zeroStage 1 or 2)",
            lambda t: t.loss_chunk_tokens == 0 or t.zero_stage != 3,
            ".lossChunkTokens",
        ),
        Rule(
            "self.paramDtype == 'fp32' || (self.precision == 'bf16' && self.strategy == 'ddp')",
            "paramDtype bf16 needs precision bf16 and strategy ddp (fsdp and deepspeed keep their own fp32 master)",
            lambda t: t.param_dtype == "fp32" or (t.precision == "bf16" and t.strategy == "ddp"),
            ".paramDtype",
        ),
    )


class CheckpointPolicy(Block):
    """When checkpoints are published."""

    every_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """Publish every N optimizer steps; 0 publishes one checkpoint per data chunk."""
    keep_optimizer: bool = True
    """Publish optimizer and RNG state with the weights (needed to resume exactly)."""


class Memorization(Block):
    """Analysis360-style memorization: greedy continuation of training-sample prompts."""

    enabled: bool = False
    """Run the memorization analysis on each checkpoint."""
    samples: Annotated[int, Field(ge=1, le=100000)] = 1000
    """Training samples of the checkpoint's last chunk to probe."""
    prompt_tokens: Annotated[int, Field(ge=1, le=4096)] = 32
    """Prompt length in tokens."""
    generate_tokens: Annotated[int, Field(ge=1, le=4096)] = 32
    """Greedy continuation length compared with the true continuation."""


class Analysis(Block):
    """Evaluations run on every published checkpoint, written to evals/<step>/."""

    perplexity: bool = True
    """Held-out perplexity (needs data.holdOut > 0)."""
    memorization: Memorization = Memorization()
    """Memorization score."""


class PretrainRunSpec(Block):
    """Desired state of a PretrainRun."""

    model: Annotated[ModelSpec, Field(json_schema_extra=immutable("model"))]
    """The model to pretrain (usually an architecture and a config)."""
    data: Annotated[PretrainData, Field(json_schema_extra=immutable("data"))]
    """The data and its preparation."""
    training: Annotated[PretrainTraining, Field(json_schema_extra=immutable("training"))] = PretrainTraining()
    """Training loop settings."""
    checkpoint: CheckpointPolicy = CheckpointPolicy()
    """Checkpoint cadence."""
    analysis: Analysis = Analysis()
    """Per-checkpoint evaluations."""
    resources: Resources = Resources()
    """Backend, workers and node pool. Workers may change mid-run: the data order does not
    depend on the world size."""
    storage: Annotated[Storage, Field(json_schema_extra=immutable("storage"))] = Storage()
    """Where the run is published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries on failure."""
    suspend: bool = False
    """Tear the workload down (published checkpoints stay); false resumes from the latest one."""

    rules = (
        Rule(
            "!self.analysis.perplexity || self.data.holdOut > 0",
            "analysis.perplexity needs data.holdOut > 0 (or set analysis.perplexity: false)",
            lambda s: not s.analysis.perplexity or s.data.hold_out > 0,
            ".analysis.perplexity",
        ),
        Rule(
            "!has(self.model.fromRun) || self.model.fromRun.kind == 'PretrainRun'",
            "a PretrainRun can only continue from another PretrainRun",
            lambda s: s.model.from_run is None or s.model.from_run.kind == "PretrainRun",
            ".model.fromRun.kind",
        ),
    )


class PretrainProgress(Block):
    """Training progress read from the run manifest."""

    step: Optional[Annotated[int, Field(ge=0)]] = None
    """Optimizer steps done (latest checkpoint)."""
    total_steps: Optional[Annotated[int, Field(ge=0)]] = None
    """Planned optimizer steps."""
    tokens: Optional[Annotated[int, Field(ge=0)]] = None
    """Training tokens seen."""
    loss: Optional[float] = None
    """Training loss at the latest checkpoint."""
    checkpoints: Optional[Annotated[int, Field(ge=0)]] = None
    """Checkpoints published."""
    latest_checkpoint: Optional[Uri] = None
    """URI of the latest published checkpoint."""
    done: Optional[Annotated[str, Field(max_length=64)]] = None
    """Progress as a person reads it: `{step}/{totalSteps}` (optimizer steps)."""
    checkpoint: Optional[Annotated[str, Field(max_length=64)]] = None
    """The latest checkpoint's short name (`step-78`); its URI is latestCheckpoint."""
    perplexity: Optional[float] = None
    """Held-out perplexity at the latest checkpoint."""


class PretrainRunStatus(BaseStatus):
    """Observed state of a PretrainRun."""

    progress: Optional[PretrainProgress] = None
    """Training progress."""
