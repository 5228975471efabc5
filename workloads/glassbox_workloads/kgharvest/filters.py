"""Stop words and the entity filters of the search (SEEDS-DETAIL 2.1, `entity_tuple_searcher.py`).

The stop words are NLTK's English list (vendored, pinned by length and hash in textdata) plus the
words BertNet adds; an entity with any of them is never harvested, and tokens that decode to one are
banned from the masked-LM distribution before the search visits them.
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Optional, Sequence

from ..textdata import nltk_english_stopwords

BERTNET_EXTRA_STOPWORDS = frozenset(
    "everything everybody everyone anything anybody anyone something somebody someone nothing nobody "
    "one neither either many us first second next following last new main also".split()
)
"""The words BertNet adds to NLTK's list."""

_PUNCT = frozenset(string.punctuation)


@lru_cache(maxsize=None)
def stopwords() -> frozenset[str]:
    """NLTK English (179 words) plus BertNet's 24 extra words."""
    return nltk_english_stopwords() | BERTNET_EXTRA_STOPWORDS


def token_visitable(piece: str) -> bool:
    """A token the search may choose: at least one letter and no punctuation.

    `piece` is the token as decoded; a WordPiece continuation mark (`##`) is not punctuation of the
    token itself, so it is removed first (otherwise no BERT subword could ever continue an entity).
    """
    text = piece.strip()
    if text.startswith("##"):
        text = text[2:]
    return any(ch.isalpha() for ch in text) and not any(ch in _PUNCT for ch in text)


def entity_rejection(entity: str, earlier: Sequence[str], prompts: Sequence[str], *,
                     min_chars: int = 3) -> Optional[str]:
    """Why the search rejects a complete entity (None: it is kept).

    entity: decoded, stripped, lower case. earlier: the tuple's entities chosen before it. prompts:
    the prompts as filled so far (their words cannot be entities). min_chars: the entity without
    spaces must have at least this many characters (BertNet: more than 2).
    """
    words = entity.split()
    stops = stopwords()
    if not words:
        return "empty"
    if any(w in stops for w in words):
        return "stop word"
    if len(entity.replace(" ", "")) < min_chars:
        return "too short"
    if any(len(w) <= 1 for w in words):
        return "one-letter word"
    if all(len(w) <= 2 for w in words):
        return "only short words"
    if len(words) > 1 and len(set(words)) == 1:
        return "repeated word"
    squeezed = entity.replace(" ", "")
    for e in earlier:
        if e.replace(" ", "") == squeezed:
            return "same as an earlier entity"
        if e.startswith(entity) or entity.startswith(e):
            return "prefix of an earlier entity"
    if any(entity in p.lower() for p in prompts):
        return "part of a prompt"
    return None
