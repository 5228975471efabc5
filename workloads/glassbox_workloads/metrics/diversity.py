"""Diversity of the generated texts, as DSTC's evaluation (and CovidDialog after it) defines it.

Both are corpus-level by definition (n-gram counts pooled over all hypotheses), so their Scores
have per_example None. Texts are tokenised on whitespace after collapse_spaces unless pre-split.

Public:
- ngram_counts(token_lists, n) -> Counter[tuple[str, ...]]: n-grams of every text, pooled.
- dist(hyps, n) -> Scores: #distinct n-grams / #n-grams (0 when there are none).
- entropy(hyps, n) -> Scores: -sum (c/T) ln(c/T) over the pooled n-gram counts, T = total + 1e-9
  (DSTC's guard against an empty corpus).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

from .base import Scores, check_hypotheses
from .text import collapse_spaces

EPS = 1e-9


def ngram_counts(token_lists: Sequence[Sequence[str]], n: int) -> Counter:
    """Pooled n-gram counts of all texts."""
    if n < 1:
        raise ValueError(f"n-gram order must be at least 1, got {n}")
    counts: Counter = Counter()
    for toks in token_lists:
        counts.update(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
    return counts


def _counts(hyps: Sequence[Any], n: int) -> Counter:
    return ngram_counts([collapse_spaces(h).split() for h in check_hypotheses(hyps)], n)


def dist(hyps: Sequence[Any], n: int) -> Scores:
    """Dist-n: distinct n-grams over all n-grams of all hypotheses."""
    counts = _counts(hyps, n)
    total = sum(counts.values())
    return Scores(None, len(counts) / total if total else 0.0)


def entropy(hyps: Sequence[Any], n: int) -> Scores:
    """Entropy-n of the pooled n-gram distribution (natural log)."""
    counts = _counts(hyps, n)
    total = sum(counts.values()) + EPS
    return Scores(None, float(-sum((c / total) * math.log(c / total) for c in counts.values())))
