"""ROUGE, BLEU, NIST and METEOR: section 3.3's values and cross-checks against the libraries."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from glassbox_workloads.metrics import standard
from glassbox_workloads.metrics.base import ExampleError

HYPS = ["the cat lay on the mat", "a quick brown fox jumps over the lazy dog", "police arrested two men on friday"]
REFS = [["the cat sat on the mat"], ["the quick brown fox jumped over a lazy dog", "a fast fox leapt over the dog"],
        ["two men were arrested by police on friday night"]]
SIX = "the cat sat on the mat"


def test_rouge_l_hand_value():
    assert standard.rouge(["the cat lay on the mat"], [[SIX]], "rougeL").corpus == pytest.approx(5 / 6, abs=1e-12)


@pytest.mark.parametrize("variant", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_rouge_equals_rouge_score_max_over_references(variant):
    got = standard.rouge(HYPS, REFS, variant)
    lib = rouge_scorer.RougeScorer([variant], use_stemmer=True)
    want = [max(lib.score(r, h)[variant].fmeasure for r in rs) for h, rs in zip(HYPS, REFS)]
    assert got.per_example == pytest.approx(want, abs=1e-9)
    assert got.corpus == pytest.approx(sum(want) / len(want), abs=1e-9)


def test_rouge_lsum_splits_sentences_when_there_are_no_newlines():
    hyp, ref = "The cat sat. The dog ran.", "The dog ran. The cat sat."
    got = standard.rouge([hyp], [[ref]], "rougeLsum").corpus
    lib = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    assert got == pytest.approx(lib.score("The dog ran.\nThe cat sat.", "The cat sat.\nThe dog ran.")["rougeLsum"].fmeasure)
    assert got == pytest.approx(1.0)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_corpus_bleu_equals_sacrebleu_on_pretokenised_text(n):
    got = standard.corpus_bleu(HYPS, REFS, n=n, tokenize="none")
    streams = [[rs[0] for rs in REFS], [rs[1] if len(rs) > 1 else None for rs in REFS]]
    want = sacrebleu.metrics.BLEU(max_ngram_order=n, tokenize="none").corpus_score(HYPS, streams).score
    assert got.corpus == pytest.approx(want, abs=1e-9)
    assert len(got.per_example) == 3


def test_corpus_bleu_of_identical_text_is_100():
    assert standard.corpus_bleu([SIX], [[SIX]]).corpus == pytest.approx(100.0, abs=1e-9)


def test_nltk_sentence_bleu_is_the_unsmoothed_average_and_differs_from_corpus_bleu():
    from nltk.translate.bleu_score import sentence_bleu

    got = standard.nltk_sentence_bleu(HYPS, REFS, n=2)
    want = [sentence_bleu([r.split() for r in rs], h.split(), weights=(0.5, 0.5)) for h, rs in zip(HYPS, REFS)]
    assert got.per_example == pytest.approx(want, abs=1e-12)
    assert got.corpus == pytest.approx(sum(want) / 3, abs=1e-12)
    assert got.corpus != pytest.approx(standard.corpus_bleu(HYPS, REFS, n=2).corpus / 100, abs=1e-3)
    # No matching bigram: exactly 0 (unsmoothed), no warning raised to the caller.
    assert standard.nltk_sentence_bleu(["x y z"], [["a b c"]], n=2).corpus == 0.0


def test_nist_of_an_identical_six_token_sentence_is_2_6516_and_not_bounded_by_one():
    got = standard.nist([SIX], [[SIX]], n=4)
    assert got.corpus == pytest.approx(2.6516, abs=1e-4)
    assert got.per_example[0] == pytest.approx(2.6516, abs=1e-4)


def test_meteor_of_identical_text_is_0_99769_not_one_and_matches_synonyms():
    same = standard.meteor([SIX], [[SIX]]).corpus
    assert same == pytest.approx(0.99769, abs=1e-5) and same < 1
    # WordNet synonyms: rug and carpet match, same value.
    syn = standard.meteor(["the cat sat on the carpet"], [["the cat sat on the rug"]]).corpus
    assert syn == pytest.approx(same, abs=1e-12)
    assert standard.meteor(["the cat sat on the xylophone"], [["the cat sat on the rug"]]).corpus < same


def test_meteor_without_wordnet_names_the_install_step(monkeypatch):
    import nltk

    def missing(*a, **k):
        raise LookupError("no wordnet")

    monkeypatch.setattr(nltk.data, "find", missing)
    with pytest.raises(standard.MissingAsset, match="hack/assets.sh"):
        standard.meteor([SIX], [[SIX]])


@pytest.mark.parametrize("fn", [standard.rouge, standard.corpus_bleu, standard.nltk_sentence_bleu,
                                standard.nist, standard.meteor])
def test_every_reference_metric_names_the_example_with_an_empty_output(fn):
    with pytest.raises(ExampleError, match="example 1"):
        fn([SIX, ""], [[SIX], [SIX]])
    with pytest.raises(ExampleError, match=r"example 1 \(references\)"):
        fn([SIX, SIX], [[SIX], []])


def test_unknown_rouge_variant_is_refused():
    with pytest.raises(ValueError, match="unknown ROUGE variant"):
        standard.rouge([SIX], [[SIX]], "rouge9")
