"""Normalisation, tokenisation and input checks of the metrics library."""

from __future__ import annotations

import pytest

from glassbox_workloads.metrics import text
from glassbox_workloads.metrics.base import ExampleError, check_hypotheses, check_references, check_sources
from glassbox_workloads.runtime.errors import BadInput


def test_ctc_clean_straightens_quotes_lowercases_collapses_spaces_and_keeps_line_breaks():
    raw = "\u201cThe  Cat\u201d  isn\u2019t\t here\n\n\nFact:  \u2018x\u2019 "
    assert text.ctc_clean(raw) == "\"the cat\" isn't here\n\n\nfact: 'x'"
    assert text.ctc_clean(raw, keep_newlines=False) == "\"the cat\" isn't here fact: 'x'"


def test_collapse_spaces_keeps_case():
    assert text.collapse_spaces("  A \n b\t\tC ") == "A b C"


def test_word_tokenize_is_nltks_treebank_over_punkt_sentences_without_nltk_data():
    assert text.word_tokenize("Dr. Smith isn't here. He left!") == \
        ["Dr.", "Smith", "is", "n't", "here", ".", "He", "left", "!"]
    assert text.tokenize("a  b", "whitespace") == ["a", "b"]
    with pytest.raises(ValueError, match="unknown tokenisation"):
        text.tokenize("a", "spacy")


def test_stopwords_are_nltks_and_the_check_strips_and_lowercases():
    assert len(text.stopwords()) == 179
    assert text.is_stopword(" The ") and not text.is_stopword("cat")


def test_an_empty_hypothesis_names_its_example_index():
    with pytest.raises(ExampleError, match=r"example 1 \(output\).*empty") as e:
        check_hypotheses(["fine", "  "])
    assert e.value.index == 1 and isinstance(e.value, BadInput)
    with pytest.raises(ExampleError, match="example 0.*not a string"):
        check_hypotheses([3])


def test_a_missing_or_empty_reference_names_its_example_index():
    assert check_references(["a", ["b", "c"]], 2) == [["a"], ["b", "c"]]
    with pytest.raises(ExampleError, match=r"example 1 \(references\)"):
        check_references(["a", []], 2)
    with pytest.raises(ExampleError, match=r"example 0 \(references\)"):
        check_references([["", "b"]], 1)
    with pytest.raises(ExampleError, match="needs references"):
        check_references(None, 1)
    with pytest.raises(ExampleError, match="1 reference lists for 2 outputs"):
        check_references(["a"], 2)


def test_a_missing_source_names_its_example_index():
    with pytest.raises(ExampleError, match=r"example 2 \(source\)"):
        check_sources(["a", "b", None], 3)
