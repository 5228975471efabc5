"""The score of an entity tuple under a prompt (`language_model_wrapper.py`) and the final rescoring
over title-case variants (`knowledge_harvester.py:update_ent_tuples`).

Only the first word of each entity is scored: its tokens are the mask positions m_1..m_K (entity
index order). Row k of the batch masks m_k..m_K, keeps m_1..m_{k-1} real, and reads the log-prob of
the true token at m_k; the score mixes the mean per token, the mean per entity and the worst token.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import torch

from .mlm import MaskedLM
from .prompts import mask_span_chars

Tuple_ = tuple[str, ...]


def score_formula(logprobs: Sequence[float], n_ents: int) -> float:
    """(Σlp/K + Σlp/n_ents + min lp) / 3."""
    total = sum(logprobs)
    return (total / len(logprobs) + total / n_ents + min(logprobs)) / 3


def masked_rows(ids: Sequence[int], positions: Sequence[int], mask_id: int) -> list[list[int]]:
    """K rows: row k has [MASK] at positions[k:] and the real tokens elsewhere."""
    rows = []
    for k in range(len(positions)):
        row = list(ids)
        for p in positions[k:]:
            row[p] = mask_id
        rows.append(row)
    return rows


def mask_positions(mlm: MaskedLM, prompt: str, entities: Sequence[str]) -> tuple[list[int], list[int]]:
    """The sentence's token ids and the positions to score (entity index order)."""
    filled, spans = mask_span_chars(prompt, entities)
    ids, offsets = mlm.encode(filled.sentence)
    positions: list[int] = []
    for lo, hi in spans:
        inside = [t for t, (a, b) in enumerate(offsets) if b > a and a < hi and b > lo]
        if not inside:
            raise ValueError(f"entity span {filled.sentence[lo:hi]!r} has no tokens in {filled.sentence!r}")
        positions += inside
    return ids, positions


def token_logprobs(mlm: MaskedLM, prompt: str, tuples: Sequence[Tuple_]) -> list[list[float]]:
    """Per tuple, the log-prob of each masked position as its row reads it (one batch for all)."""
    rows, reads, owners = [], [], []
    for t, ents in enumerate(tuples):
        ids, positions = mask_positions(mlm, prompt, ents)
        for k, row in enumerate(masked_rows(ids, positions, mlm.mask_id)):
            rows.append(row)
            reads.append((positions[k], ids[positions[k]]))
            owners.append(t)
    out: list[list[float]] = [[] for _ in tuples]
    for logits, (pos, true_id), t in zip(mlm.logits(rows), reads, owners):
        out[t].append(float(torch.log_softmax(logits[pos], dim=-1)[true_id]))
    return out


def prompt_scores(mlm: MaskedLM, prompt: str, tuples: Sequence[Tuple_]) -> list[float]:
    """The score of each tuple under one prompt."""
    return [score_formula(lps, len(ents)) for lps, ents in zip(token_logprobs(mlm, prompt, tuples), tuples)]


def weighted_scores(mlm: MaskedLM, weighted_prompts: Mapping[str, float], tuples: Sequence[Tuple_]) -> list[float]:
    """Σ_p w_p · score_p for each tuple."""
    total = [0.0] * len(tuples)
    for prompt, w in weighted_prompts.items():
        if w > 0:
            for i, s in enumerate(prompt_scores(mlm, prompt, tuples)):
                total[i] += w * s
    return total


def title_variants(ents: Tuple_) -> list[Tuple_]:
    """All 2^n variants with each entity `.title()`d or left as it is (duplicates removed, order kept)."""
    opts = [(e, e.title()) for e in ents]
    return list(dict.fromkeys(tuple(c) for c in itertools.product(*opts)))


def softmax(xs: Sequence[float]) -> list[float]:
    if not xs:
        return []
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [v / s for v in e]


def rescore(mlm: MaskedLM, weighted_prompts: Mapping[str, float],
            tuples: Sequence[Tuple_]) -> list[tuple[Tuple_, float, float]]:
    """Each tuple replaced by its best title-case variant under the full score; best first, with
    weights softmax(scores) at temperature 1. Returns (entities, score, weight)."""
    variants = [title_variants(t) for t in tuples]
    flat = [v for vs in variants for v in vs]
    scores = weighted_scores(mlm, weighted_prompts, flat)
    best: dict[Tuple_, float] = {}
    i = 0
    for vs in variants:
        chunk = scores[i:i + len(vs)]
        i += len(vs)
        j = max(range(len(vs)), key=lambda k: chunk[k])
        if vs[j] not in best or chunk[j] > best[vs[j]]:
            best[vs[j]] = chunk[j]
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    weights = softmax([s for _, s in ranked])
    return [(ents, s, w) for (ents, s), w in zip(ranked, weights)]
