"""Planted-structure data for the CTC tests: documents of templated English sentences whose content
words all come from one list of nouns, summaries that copy document sentences, and corrupted copies
with 2-3 nouns swapped for nouns the document does not contain. With one word class, a swapped word
differs from a copied one only by whether the document holds it: the structure an aligner must find
(a typed template would let a model spot an out-of-class word without reading the document)."""

from __future__ import annotations

import random

NOUNS = ["farmer", "doctor", "teacher", "pilot", "baker", "soldier", "painter", "sailor", "judge", "miner",
         "nurse", "writer", "singer", "hunter", "priest", "tailor", "boat", "house", "bridge", "piano", "wagon",
         "church", "garden", "clock", "engine", "library", "ladder", "barn", "window", "statue", "river",
         "castle", "forest", "market", "harbor", "village", "horse", "tiger", "rabbit", "eagle"]
TEMPLATE = ["the", "*", "and", "the", "*", "with", "the", "*", "."]  # only the nouns are not stop words


def sentence(rng: random.Random) -> list[str]:
    return [rng.choice(NOUNS) if t == "*" else t for t in TEMPLATE]


def corrupt(words: list[str], doc_words: set[str], rng: random.Random, k: int) -> tuple[list[str], list[int]]:
    """Swap k nouns for nouns absent from the document; labels 1 there."""
    slots = [i for i, w in enumerate(words) if w in NOUNS]
    fresh = [w for w in NOUNS if w not in doc_words]
    out, labels = list(words), [0] * len(words)
    for i in rng.sample(slots, min(k, len(slots))):
        out[i], labels[i] = rng.choice(fresh), 1
    return out, labels


def summary_pairs(n_docs: int, seed: int = 0, n_sentences: int = 3, max_summary: int = 2) -> list[dict]:
    """Per document: its text, a copied summary (1..max_summary of its sentences) and a corrupted copy."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_docs):
        doc = [sentence(rng) for _ in range(n_sentences)]
        words = {w for s in doc for w in s}
        picked = [w for s in rng.sample(doc, rng.randint(1, max_summary)) for w in s]
        bad, labels = corrupt(picked, words, rng, rng.choice([2, 3]))
        out.append({"document": " ".join(w for s in doc for w in s), "copy": " ".join(picked),
                    "corrupted": " ".join(bad), "labels": labels})
    return out
