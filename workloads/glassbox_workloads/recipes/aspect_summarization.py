"""aspect-summarization: the seq2seq recipe (bart) on aspect-conditioned examples.

A (document, summary) pair expands into one example per aspect (aspect_supervision.build_examples:
the summary's entities plus one sampled knowledge-graph neighbour each; the target keeps the summary
sentences that support the aspect). The expansion is the recipe's `expand_fn`, which the workload
applies to the training and evaluation sets before batching, so the three functions see ordinary
`{"source", "target"}` pairs and the model trains, shards and decodes as seq2seq does.

Decoding follows the authors (generate.py): beam 4, 55 to 140 new tokens, length penalty 2.0, no
repeated trigram; the lengths are capped at the run's target length.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from . import aspect_supervision as asp
from .common import Recipe
from .decoding import Generation

DOCUMENT_KEYS = ("document", "article", "text")
SUMMARY_KEYS = ("summary", "highlights", "target")


class ExampleError(ValueError):
    """An example that lacks what its split needs; `index` is its position in the split."""

    def __init__(self, index: int, problem: str):
        super().__init__(f"example {index} {problem}")
        self.index = index


def paper_generation(max_target_length: int) -> Generation:
    """The authors' beam search (generate.py), its lengths capped at max_target_length."""
    max_new = min(140, max_target_length)
    return Generation(max_new_tokens=max_new, min_new_tokens=min(55, max_new), num_beams=4, length_penalty=2.0,
                      no_repeat_ngram_size=3)


def document_summary(ex: dict, index: int) -> tuple[str, str]:
    doc = next((ex[k] for k in DOCUMENT_KEYS if isinstance(ex.get(k), str)), None)
    summ = next((ex[k] for k in SUMMARY_KEYS if isinstance(ex.get(k), str)), None)
    if doc is None or summ is None:
        raise ExampleError(index, f"needs a document ({'/'.join(DOCUMENT_KEYS)}) and a summary "
                                  f"({'/'.join(SUMMARY_KEYS)}) string; it has {sorted(ex)}")
    return doc, summ


def example_rng(seed: int, document: str, summary: str) -> np.random.Generator:
    """The related-entity sampler of one pair: fixed by the seed and the pair itself, so the
    expansion does not depend on the order, sharding or resumption of the data."""
    digest = hashlib.sha256(f"{seed}\0{document}\0{summary}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass
class Builder:
    """Everything the weak supervision needs, bound once per run."""

    kg: asp.KnowledgeGraph
    ner: Optional[Callable[[str], list[str]]]
    """Entities of a summary; None: every example carries its own `entities`."""
    sent_split: Callable[[str], list[str]]
    doc_terms: Callable[[str], list[str]] = lambda doc: []
    """A document's terms by descending TF-IDF."""
    pages: dict[str, set[str]] = field(default_factory=dict)
    """Analyzer tokens of each aspect's encyclopedia page (lower-cased title -> tokens)."""
    related_words: int = 10
    max_aspects: int = 0
    seed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"documents": 0, "examples": 0, "droppedAspects": 0})
    """What the expansion built so far (for run.json and the manifest's final block)."""

    def entities(self, ex: dict, summary: str, index: int) -> Callable[[str], list[str]]:
        if self.ner is not None:
            return self.ner
        ents = ex.get("entities")
        if not isinstance(ents, list) or not all(isinstance(e, str) for e in ents):
            raise ExampleError(index, "has no \"entities\" list of strings (ner.source: provided)")
        return lambda text: list(ents)

    def expand(self, examples: Sequence[dict]) -> list[dict]:
        """Every (document, summary) pair as its aspect-conditioned examples, pairs in order."""
        out: list[dict] = []
        for i, ex in enumerate(examples):
            doc, summ = document_summary(ex, i)
            ents = self.entities(ex, summ, i)(summ)  # once: the NER pipeline is the slow part
            built = asp.build_examples(doc, summ, lambda text: ents, self.kg, example_rng(self.seed, doc, summ),
                                       self.sent_split, self.doc_terms(doc) if self.pages else (), self.pages,
                                       self.related_words)
            lowered = list(dict.fromkeys(e.lower() for e in ents))
            candidates = len(lowered) + len(asp.related_entities(lowered, self.kg, example_rng(self.seed, doc, summ)))
            if self.max_aspects:
                built, candidates = built[: self.max_aspects], min(candidates, self.max_aspects)
            self.counts["documents"] += 1
            self.counts["examples"] += len(built)
            self.counts["droppedAspects"] += candidates - len(built)
            out += built
        return out

    def given(self, examples: Sequence[dict]) -> list[dict]:
        """Evaluation examples that name their aspect: `{"aspect", "document", "target"}`."""
        out = []
        for i, ex in enumerate(examples):
            doc, target = document_summary(ex, i)
            aspect = ex.get("aspect")
            if not isinstance(aspect, str) or not aspect.strip():
                raise ExampleError(i, "has no \"aspect\" string (evalAspects: given)")
            a = aspect.strip().lower()
            words = asp.related_words(self.doc_terms(doc), self.pages.get(a), self.related_words) if self.pages else []
            out.append({"aspect": a, "source": asp.model_input(a, words, doc), "target": target})
        return out


def prebuilt(examples: Sequence[dict]) -> list[dict]:
    """Examples already in weak-supervision form (construct: false): `{"source", "target"}`."""
    for i, ex in enumerate(examples):
        if not (isinstance(ex.get("source"), str) and isinstance(ex.get("target"), str)):
            raise ExampleError(i, f"is not a prebuilt {{\"source\", \"target\"}} pair; it has {sorted(ex)}")
    return list(examples)


def make(base: Recipe, expand_train: Callable[[list], list], expand_eval: Callable[[list], list]) -> Recipe:
    """The seq2seq recipe `base` with the aspect expansion as its expand_fn."""

    def expand_fn(examples: list, split: str) -> list:
        return expand_train(examples) if split == "train" else expand_eval(examples)

    return Recipe(base.collate_fn, base.loss_fn, base.pred_fn, base.output_fn, base.eval_metric_fn,
                  pred_collate_fn=base.pred_collate_fn, expand_fn=expand_fn)


def read_pages(rows: Sequence[dict]) -> dict[str, set[str]]:
    """Encyclopedia JSON lines `{"title", "content"}` -> lower-cased title -> analyzer tokens."""
    return {str(r["title"]).strip().lower(): asp.page_tokens(str(r.get("content", ""))) for r in rows
            if isinstance(r, dict) and r.get("title")}


__all__ = ["Builder", "ExampleError", "document_summary", "example_rng", "make", "paper_generation", "prebuilt",
           "read_pages"]
