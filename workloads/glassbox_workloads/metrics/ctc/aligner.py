"""What an aligner returns and how CTC aggregates it.

Public:
- Alignment(tokens, scores): per-token alignment scores of the input against the context (tokens
  are the words or decoded subwords the scores belong to); tokens None for a sequence-level aligner
  (R), whose single score is used as it is.
- aggregate(alignment, how="mean"|"sum", remove_stopwords=False) -> float: CTC's Aligner.aggregate:
  stop words (NLTK English, `token.strip().lower()`) dropped when asked; the mean of nothing is 0.
- Aligner: base class; subclasses implement align_many(inputs, contexts) -> list[Alignment];
  align(input, context) and score_many(inputs, contexts, how, remove_stopwords) come with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from ..text import is_stopword

Aggregation = Literal["mean", "sum"]


@dataclass(frozen=True)
class Alignment:
    """Alignment scores of an input's tokens against a context (or one score for the pair)."""

    tokens: Optional[list[str]]
    scores: list[float]


def aggregate(alignment: Alignment, how: Aggregation = "mean", remove_stopwords: bool = False) -> float:
    """One number from per-token alignment: mean or sum, stop words optionally removed."""
    if alignment.tokens is None:
        return float(alignment.scores[0])
    if len(alignment.tokens) != len(alignment.scores):
        raise ValueError(f"{len(alignment.tokens)} tokens but {len(alignment.scores)} scores")
    kept = [s for t, s in zip(alignment.tokens, alignment.scores) if not (remove_stopwords and is_stopword(t))]
    if how == "mean":
        return float(sum(kept) / len(kept)) if kept else 0.0
    if how == "sum":
        return float(sum(kept))
    raise ValueError(f"aggregation must be mean or sum, not {how!r}")


class Aligner:
    """An information-alignment model: how well each token of an input is supported by a context."""

    kind: str = "?"

    def align_many(self, inputs: Sequence[str], contexts: Sequence[str]) -> list[Alignment]:
        """Alignment of inputs[i] against contexts[i], for every i."""
        raise NotImplementedError

    def align(self, input_text: str, context: str) -> Alignment:
        """Alignment of one input against one context."""
        return self.align_many([input_text], [context])[0]

    def score_many(self, inputs: Sequence[str], contexts: Sequence[str], how: Aggregation = "mean",
                   remove_stopwords: bool = False) -> list[float]:
        """Aggregated alignment of each (input, context) pair."""
        return [aggregate(a, how, remove_stopwords) for a in self.align_many(inputs, contexts)]
