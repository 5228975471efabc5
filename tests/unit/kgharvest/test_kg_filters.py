"""The stop-word list and each entity filter of the search, one case each (SEEDS-DETAIL 2.1)."""

from __future__ import annotations

import pytest

from glassbox_workloads.kgharvest.filters import BERTNET_EXTRA_STOPWORDS, entity_rejection, stopwords, token_visitable
from glassbox_workloads.textdata import nltk_english_stopwords

PROMPTS = ["<ENT0> lives in the <ENT1> ."]


def test_stop_words_are_nltk_plus_bertnets_extra_words():
    assert len(nltk_english_stopwords()) == 179
    assert len(BERTNET_EXTRA_STOPWORDS) == 24
    assert stopwords() == nltk_english_stopwords() | BERTNET_EXTRA_STOPWORDS
    assert {"the", "someone", "also", "first"} <= stopwords()


@pytest.mark.parametrize("entity,earlier,why", [
    ("the forest", [], "stop word"),
    ("someone", [], "stop word"),
    ("ox", [], "too short"),
    ("a b", [], "stop word"),
    ("x jungle", [], "one-letter word"),
    ("ab cd", [], "only short words"),
    ("lion lion", [], "repeated word"),
    ("sea lion", ["sealion"], "same as an earlier entity"),
    ("lion", ["lioness"], "prefix of an earlier entity"),
    ("lioness", ["lion"], "prefix of an earlier entity"),
    ("lives", [], "part of a prompt"),
])
def test_each_filter_rejects_its_case(entity, earlier, why):
    assert entity_rejection(entity, earlier, PROMPTS) == why


def test_a_plain_entity_passes_every_filter():
    assert entity_rejection("savanna", ["lion"], PROMPTS) is None
    assert entity_rejection("polar bear", [], PROMPTS) is None


def test_min_chars_is_the_no_space_length():
    assert entity_rejection("abc", [], PROMPTS, min_chars=3) is None
    assert entity_rejection("abc", [], PROMPTS, min_chars=4) == "too short"


@pytest.mark.parametrize("piece,ok", [("lion", True), ("##ing", True), (".", False), ("123", False),
                                      ("don't", False), ("Ġparis", True), (" paris", True), ("a-b", False)])
def test_tokens_without_a_letter_or_with_punctuation_are_skipped(piece, ok):
    assert token_visitable(piece.replace("Ġ", "")) is ok
