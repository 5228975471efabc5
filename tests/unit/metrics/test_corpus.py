"""Set-level metrics of progressive generation: identical-set properties, hand values, the pinned
MS-Jaccard off-by-one choice."""

from __future__ import annotations

import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from transformers import BertConfig, BertModel

from glassbox_workloads.metrics import corpus
from glassbox_workloads.metrics.base import ExampleError
from glassbox_workloads.runtime.errors import BadInput
from glassbox_workloads.runtime.hfmodels import train_tokenizer
from glassbox_workloads.metrics.text import word_tokenize

TEXTS = [f"The {a} {b} walked to the {c} market today. It was a long walk." for a, b, c in
         [("old", "man", "fish"), ("young", "girl", "flower"), ("tired", "dog", "meat"), ("happy", "cat", "fish"),
          ("busy", "baker", "bread"), ("quiet", "nurse", "fruit"), ("loud", "boy", "toy"), ("kind", "woman", "cheese")]]
OTHER = [f"A {a} storm hit the {b} coast at night, and {c} boats sank." for a, b, c in
         [("big", "east", "ten"), ("small", "west", "two"), ("wild", "north", "five"), ("cold", "south", "six"),
          ("dark", "east", "nine"), ("fierce", "west", "four")]]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_identical_sets_give_ha_bleu_one_and_msj_one(n):
    assert corpus.ha_bleu(TEXTS, TEXTS, n).corpus == pytest.approx(1.0, abs=1e-12)
    assert corpus.msj(TEXTS, TEXTS, n).corpus == pytest.approx(1.0, abs=1e-12)
    assert corpus.msj(TEXTS, TEXTS, n, original_off_by_one=True).corpus == pytest.approx(1.0, abs=1e-12)
    assert corpus.ha_bleu(TEXTS, TEXTS, n).per_example is None


def test_ha_bleu_is_the_harmonic_mean_of_nltks_forward_and_backward_bleu():
    hyps, refs = TEXTS[:3], [[t] for t in TEXTS[2:6]]  # per-example lists are pooled
    h, r = [word_tokenize(t) for t in hyps], [word_tokenize(t) for t in TEXTS[2:6]]
    sm = SmoothingFunction().method1
    f = sum(sentence_bleu(r, x, weights=[1 / 3] * 3, smoothing_function=sm) for x in h) / 3
    b = sum(sentence_bleu(h, x, weights=[1 / 3] * 3, smoothing_function=sm) for x in r) / 4
    assert corpus.forward_backward_bleu(hyps, refs, 3) == pytest.approx((f, b), abs=1e-12)
    assert corpus.ha_bleu(hyps, refs, 3).corpus == pytest.approx(2 * f * b / (f + b), abs=1e-12)
    assert corpus.ha_bleu(hyps, refs, 3).corpus < 1


def test_msj_hand_values_and_the_pinned_off_by_one():
    # Unigrams {a, b} vs {a, c}: min 1, max 3; bigrams share nothing.
    assert corpus.msj(["a b"], ["a c"], 1).corpus == pytest.approx(1 / 3)
    assert corpus.msj(["a b"], ["a c"], 2).corpus == 0.0
    # The original skips each text's last g-gram: only "a" is left on both sides.
    assert corpus.msj(["a b"], ["a c"], 1, original_off_by_one=True).corpus == pytest.approx(1.0)
    # Counts are divided by each set's number of sentences: one text twice over is the same set.
    assert corpus.msj(["x y. z w."] * 2, ["x y. z w."], 2).corpus == pytest.approx(1.0)
    assert 0 < corpus.msj(TEXTS[:4], TEXTS[2:], 2).corpus < 1


def test_tid_is_zero_on_identical_sets_and_positive_otherwise():
    assert corpus.tid(TEXTS, TEXTS).corpus == pytest.approx(0.0, abs=1e-12)
    mixed = corpus.tid(TEXTS[:4] + OTHER[:4], TEXTS).corpus
    assert mixed > 0
    assert corpus.tid(OTHER, TEXTS).corpus > mixed


def test_tid_without_a_vocabulary_is_a_clear_error():
    with pytest.raises(BadInput, match="at least 5 references"):
        corpus.tid(TEXTS[:2], TEXTS[:2])


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift():
    s = torch.eye(3).numpy()
    assert corpus.frechet_distance(torch.zeros(3).numpy(), s, torch.tensor([1.0, 2.0, 0.0]).numpy(), s) == \
        pytest.approx(5.0, abs=1e-9)


def test_fbd_of_identical_sets_is_about_zero_and_grows_with_difference():
    tok = train_tokenizer(TEXTS + OTHER, "bert", 200)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=64))
    dist = corpus.fbd_layers(TEXTS, TEXTS, model, tok)
    assert len(dist) == 4 and dist[0] < 1e-5  # the [CLS] embedding is the same for every text
    assert corpus.fbd(TEXTS, TEXTS, model, tok).corpus < 1e-2
    assert corpus.fbd(OTHER, TEXTS, model, tok).corpus > 10 * corpus.fbd(TEXTS, TEXTS, model, tok).corpus


def test_set_metrics_name_an_empty_text():
    with pytest.raises(ExampleError, match=r"example 1 \(output\)"):
        corpus.msj(["a", ""], ["a"], 2)
    with pytest.raises(ExampleError, match=r"example 0 \(references\)"):
        corpus.ha_bleu(["a"], [[""]], 2)
