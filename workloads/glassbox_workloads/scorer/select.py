"""Selection, ranking, the loss and the schedule: the small formulas Cappy's results hang on.

Selection and ranking always read raw scores: a display transform such as clip turns 1.2 and 1.5
into the same 1.0 and so makes ties that change which candidate wins (SEEDS-DETAIL.md section 1.2).
"""

from __future__ import annotations

import math
from typing import Hashable, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)


def best_index(scores: Sequence[float]) -> int:
    """The index of the strictly greatest score: on ties the first candidate wins (cappy_bigbench.py:202-210)."""
    if not scores:
        raise ValueError("no candidates to select from")
    best = 0
    for i in range(1, len(scores)):
        if scores[i] > scores[best]:
            best = i
    return best


def select_grouped(keys: Sequence[K], scores: Sequence[float]) -> dict[K, int]:
    """Per example key, the position (into keys/scores) of its best candidate; candidates of an
    example are compared only with each other, in the order given."""
    if len(keys) != len(scores):
        raise ValueError(f"{len(keys)} keys but {len(scores)} scores")
    best: dict[K, int] = {}
    for i, (k, s) in enumerate(zip(keys, scores)):
        if k not in best or s > scores[best[k]]:
            best[k] = i
    return best


def rank_order(scores: Sequence[float]) -> list[int]:
    """Candidate indices best first by raw score; equal scores keep their given order."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def transform(raw: float, how: str) -> float:
    """A raw score as shown to a client: clip to [0, 1], sigmoid, or none (raw)."""
    if how == "clip":
        return min(1.0, max(0.0, raw))
    if how == "sigmoid":
        return 1.0 / (1.0 + math.exp(-raw)) if raw >= 0 else math.exp(raw) / (1.0 + math.exp(raw))
    if how == "none":
        return raw
    raise ValueError(f"unknown score transform {how!r}")


def mse(logits: Sequence[float], labels: Sequence[float]) -> float:
    """mean((logit - label)^2), the scorer's loss (cappy_bigbench.py:loss_fn)."""
    if len(logits) != len(labels) or not logits:
        raise ValueError("logits and labels must be non-empty and of one length")
    return sum((a - b) ** 2 for a, b in zip(logits, labels)) / len(logits)


def warmup_steps(total: int, ratio: float) -> int:
    """Warm-up steps of a run of `total` optimizer steps (at least 1 when the ratio is above 0)."""
    return min(total, max(1, int(total * ratio))) if ratio > 0 and total > 0 else 0


def linear_lr(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up from 0 to peak over `warmup` steps, then linear decay to 0 at `total`."""
    if step < warmup:
        return peak * step / warmup
    if total <= warmup:
        return peak if step < total else 0.0
    return peak * max(0.0, (total - step) / (total - warmup))


def steps_per_epoch(size: int, batch_size: int, accumulation: int) -> int:
    """Optimizer steps of one pass over `size` pairs: size / (batch x accumulation), rounded down."""
    return size // (batch_size * accumulation)
