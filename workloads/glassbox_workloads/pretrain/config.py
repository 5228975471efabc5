"""The training configuration a PretrainRun worker runs with: the typed spec plus derived values.

Every derived number (global batch, tokens per step, total steps, learning rate at a step) is
computed here and only here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from glassbox_api.kinds.pretrainrun import PretrainRunSpec


@dataclass(frozen=True)
class LRSchedule:
    """Linear warm-up from 0 to peak over `warmup` steps, then cosine decay to `minimum` at `total`.

    lr(0) = 0, lr(warmup) = peak, lr(total) = minimum. The update that makes step s (1-based) uses
    lr(s), so the first update already moves the weights and the last one uses the minimum.
    """

    peak: float
    minimum: float
    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        if self.warmup > 0 and step < self.warmup:
            return self.peak * step / self.warmup
        if step >= self.total:
            return self.minimum
        if self.total <= self.warmup:
            return self.peak
        progress = (step - self.warmup) / (self.total - self.warmup)
        return self.minimum + 0.5 * (self.peak - self.minimum) * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class TrainConfig:
    """A worker's view of the run: the spec, its place in the world, and the derived values."""

    spec: PretrainRunSpec
    world_size: int = 1
    rank: int = 0
    grad_accum_override: int | None = None  # set when resuming at another world size (see resume)

    @property
    def training(self):
        return self.spec.training

    @property
    def micro_batch_size(self) -> int:
        return self.training.micro_batch_size

    @property
    def grad_accum(self) -> int:
        return self.grad_accum_override or self.training.gradient_accumulation_steps

    @property
    def global_batch(self) -> int:
        """Samples per optimizer step over all workers."""
        return self.micro_batch_size * self.grad_accum * self.world_size

    @property
    def seq_length(self) -> int:
        return self.spec.data.seq_length

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_length

    def schedule(self, total_steps: int) -> LRSchedule:
        o = self.training.optimizer
        return LRSchedule(o.lr, o.min_lr, min(self.training.warmup_steps, total_steps), total_steps)

    def accum_for_global_batch(self, global_batch: int) -> int:
        """Gradient accumulation that keeps `global_batch` at this world size (raises if impossible)."""
        per = self.micro_batch_size * self.world_size
        if global_batch % per:
            raise ValueError(
                f"the run's global batch is {global_batch} samples, which {self.world_size} workers x "
                f"microBatchSize {self.micro_batch_size} cannot divide: resume with a world size that does"
            )
        return global_batch // per
