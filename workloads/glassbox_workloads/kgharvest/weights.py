"""Prompt weights (`knowledge_harvester.py:update_prompts`): a prompt that scores the seeds well and
their corruptions badly gets a high weight.

w_p = (mean seed score − c·mean corruption score) / T; keep the top k by w, softmax, zero entries
below the threshold, renormalise, drop entries ≤ 1e-4. BertNet runs with T = 2.0 and c = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .scoring import Tuple_, softmax

DROP_AT = 1e-4
"""Weights at or below this are dropped after renormalising (BertNet's constant)."""


@dataclass(frozen=True)
class WeightOptions:
    temperature: float = 2.0
    corruption_coefficient: float = 0.5
    top_k: int = 20
    min_weight: float = 0.05


def corruptions(seeds: Sequence[Tuple_]) -> list[Tuple_]:
    """All corrupted seeds: for every seed, position i and other seed whose i-th entity differs, the
    seed with entity i replaced by that one (S·n·(S−1) when all are distinct)."""
    out = []
    for s in seeds:
        for i in range(len(s)):
            for other in seeds:
                if other is not s and other[i] != s[i]:
                    out.append(s[:i] + (other[i],) + s[i + 1:])
    return out


def raw_weights(pos: Sequence[float], neg: Sequence[float], opts: WeightOptions) -> list[float]:
    return [(p - opts.corruption_coefficient * n) / opts.temperature for p, n in zip(pos, neg)]


def normalise(raw: Sequence[float], opts: WeightOptions) -> list[float]:
    """Top k by raw weight, softmax, threshold, renormalise; 0 for prompts left out or dropped."""
    order = sorted(range(len(raw)), key=lambda i: (-raw[i], i))[:opts.top_k]
    probs = softmax([raw[i] for i in order])
    probs = [p if p >= opts.min_weight else 0.0 for p in probs]
    total = sum(probs)
    if total <= 0:  # every weight under the threshold: keep the best prompt alone
        probs = [1.0 if k == 0 else 0.0 for k in range(len(order))]
        total = 1.0
    out = [0.0] * len(raw)
    for i, p in zip(order, probs):
        out[i] = p / total if p / total > DROP_AT else 0.0
    kept = sum(out)  # only differs from 1 when dropped entries were not already zero (min_weight < 1e-4)
    return [w / kept for w in out]


def prompt_weights(pos: Sequence[float], neg: Sequence[float], opts: WeightOptions = WeightOptions()) -> list[float]:
    """The weight of each prompt from its mean seed score and mean corruption score."""
    return normalise(raw_weights(pos, neg, opts), opts)
