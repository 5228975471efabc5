"""Boosting: score every candidate of every prompt with the scorer, keep each prompt's best, and
(for an eval) measure the picks with Rouge-L F against the references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from .data import Example, rouge_l
from .generator import Candidate, Generator
from .select import best_index, select_grouped

ScoreFn = Callable[[Sequence[tuple[str, str]]], list[float]]
"""Raw scores of (instruction, response) pairs (Scorer.score, or the server's batcher)."""


@dataclass
class Boosted:
    """One prompt's candidates with their raw scores, and the index of the best."""

    prompt: str
    candidates: list[Candidate]
    scores: list[float]
    best: int

    @property
    def text(self) -> str:
        return self.candidates[self.best].text


def pick(prompts: Sequence[str], candidates: Sequence[Sequence[Candidate]], score: ScoreFn) -> list[Boosted]:
    """Score all candidates in one call and select per prompt (grouped by position, never by text:
    two prompts with the same text stay two examples)."""
    keys = [i for i, cands in enumerate(candidates) for _ in cands]
    pairs = [(prompts[i], c.text) for i, cands in enumerate(candidates) for c in cands]
    raw = score(pairs) if pairs else []
    best = select_grouped(keys, raw)
    out: list[Boosted] = []
    offset = 0
    for i, cands in enumerate(candidates):
        if not cands:
            raise ValueError(f"prompt {i} has no candidates")
        scores = raw[offset:offset + len(cands)]
        out.append(Boosted(prompts[i], list(cands), scores, best[i] - offset))
        offset += len(cands)
    return out


def boost(prompts: Sequence[str], generator: Generator, score: ScoreFn) -> list[Boosted]:
    """Generate-then-rank: the generator's candidates per prompt, the scorer's pick of each."""
    return pick(prompts, generator.generate(prompts), score)


@dataclass
class EvalResult:
    """Rouge-L F (stemmed, best over references) averaged over examples."""

    rouge_l: float
    rouge_l_first: float
    """Of the first candidate (the beam candidate with the default strategies): the baseline."""
    rouge_l_oracle: float
    """Of the best candidate by Rouge-L itself: the ceiling of any scorer."""
    examples: int
    rows: list[dict] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        return {"rougeL": round(self.rouge_l, 6), "rougeL_first": round(self.rouge_l_first, 6),
                "rougeL_oracle": round(self.rouge_l_oracle, 6), "examples": float(self.examples)}


def evaluate(examples: Sequence[Example], score: ScoreFn, generator: Optional[Generator] = None) -> EvalResult:
    """Boost each example's candidates (its samples, else the generator's) and measure the picks."""
    cands = [[Candidate(s, "sample") for s in ex.samples] for ex in examples]
    missing = [i for i, c in enumerate(cands) if not c]
    if missing and generator is not None:
        made = generator.generate([examples[i].instruction for i in missing])
        for i, c in zip(missing, made):
            cands[i] = list(c)
    keep = [i for i, c in enumerate(cands) if c]
    if not keep:
        raise ValueError("no eval example has candidates (samples in the data, or a generator)")
    boosted = pick([examples[i].instruction for i in keep], [cands[i] for i in keep], score)
    rows, picked, first, oracle = [], 0.0, 0.0, 0.0
    for i, b in zip(keep, boosted):
        refs = examples[i].references
        per = [rouge_l(refs, c.text) for c in b.candidates]
        picked, first, oracle = picked + per[b.best], first + per[0], oracle + per[best_index(per)]
        rows.append({"instruction": b.prompt, "pick": b.text, "strategy": b.candidates[b.best].strategy,
                     "score": b.scores[b.best], "rougeL": per[b.best], "rougeL_first": per[0]})
    n = len(keep)
    return EvalResult(picked / n, first / n, oracle / n, n, rows)
