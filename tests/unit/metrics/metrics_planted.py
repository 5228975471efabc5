"""Planted-structure data for the CTC tests: documents of templated English sentences, summaries
that copy document sentences, and corrupted copies with 2-3 words swapped for words the document
does not contain."""

from __future__ import annotations

import random

ADJ = ["red", "old", "quiet", "famous", "small", "angry", "bright", "wooden", "tired", "rich", "young", "busy"]
NOUN = ["farmer", "doctor", "teacher", "pilot", "baker", "soldier", "painter", "sailor", "judge", "miner",
        "nurse", "writer", "singer", "hunter", "priest", "tailor"]
VERB = ["visited", "repaired", "painted", "bought", "sold", "cleaned", "found", "carried", "opened", "watched"]
OBJ = ["boat", "house", "bridge", "piano", "wagon", "church", "garden", "clock", "engine", "library",
       "ladder", "barn", "window", "statue"]
PLACE = ["london", "paris", "madrid", "berlin", "vienna", "lisbon", "dublin", "prague", "oslo", "rome"]
DAY = ["monday", "tuesday", "friday", "sunday", "winter", "spring", "summer", "autumn"]
SLOTS = {"adj": ADJ, "noun": NOUN, "verb": VERB, "obj": OBJ, "place": PLACE, "day": DAY}
TEMPLATE = ["the", "{adj}", "{noun}", "{verb}", "the", "{obj}", "in", "{place}", "on", "{day}", "."]


def sentence(rng: random.Random) -> list[str]:
    return [rng.choice(SLOTS[t[1:-1]]) if t.startswith("{") else t for t in TEMPLATE]


def document(rng: random.Random, n_sentences: int = 4) -> list[list[str]]:
    return [sentence(rng) for _ in range(n_sentences)]


def corrupt(words: list[str], doc_words: set[str], rng: random.Random, k: int) -> tuple[list[str], list[int]]:
    """Swap k slot words for words of the same slot absent from the document; labels 1 there."""
    slots = [i for i, t in enumerate(TEMPLATE * (len(words) // len(TEMPLATE))) if t.startswith("{")]
    out, labels = list(words), [0] * len(words)
    for i in rng.sample(slots, k):
        slot = TEMPLATE[i % len(TEMPLATE)][1:-1]
        fresh = [w for w in SLOTS[slot] if w not in doc_words]
        if fresh:
            out[i], labels[i] = rng.choice(fresh), 1
    return out, labels


def summary_pairs(n_docs: int, seed: int = 0) -> list[dict]:
    """Per document: its text, a copied summary (1-2 of its sentences) and a corrupted copy."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_docs):
        doc = document(rng)
        words = {w for s in doc for w in s}
        picked = [w for s in rng.sample(doc, rng.choice([1, 2])) for w in s]
        bad, labels = corrupt(picked, words, rng, rng.choice([2, 3]))
        out.append({"document": " ".join(w for s in doc for w in s), "copy": " ".join(picked),
                    "corrupted": " ".join(bad), "labels": labels})
    return out


def vocabulary() -> list[str]:
    return sorted({w for ws in SLOTS.values() for w in ws} | {t for t in TEMPLATE if not t.startswith("{")})
