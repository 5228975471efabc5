"""Aligner training pieces that need no planted learning: R targets, the training loop's contract,
the D aligner's input truncation."""

from __future__ import annotations

import math

import pytest
import torch

from glassbox_api.kinds.common import ModelSpec
from glassbox_workloads.metrics.ctc.discriminative import MAX_INPUT_PIECES
from glassbox_workloads.metrics.ctc.load import load_aligner
from glassbox_workloads.metrics.ctc.train import (TrainConfig, evaluate_discriminative, regression_targets,
                                                  train_discriminative, train_regression)
from glassbox_workloads.metrics.ctc.weak import WeakExample

WORDS = "the cat sat on the mat and the dog ran to the park with a red ball".split()
TINY = {"hiddenSize": 32, "numLayers": 1, "numHeads": 2, "intermediateSize": 64, "maxPositionEmbeddings": 600}


def _examples(n: int) -> list[WeakExample]:
    out = []
    for i in range(n):
        words = [WORDS[(i + k) % len(WORDS)] for k in range(6)]
        labels = [int((i + k) % 5 == 0) for k in range(6)]
        out.append(WeakExample(" ".join(words), " ".join(WORDS), labels))
    return out


def _tiny(kind: str, arch: str = "roberta"):
    spec = ModelSpec.model_validate({"architecture": arch, "config": TINY})
    return load_aligner(kind, spec, trained=False, tokenizer_texts=[" ".join(WORDS)] * 8)


def test_regression_targets_aggregate_one_minus_the_word_labels():
    ex = [WeakExample("the dog sat on", "ctx", [0, 1, 0, 0])]
    assert regression_targets(ex) == [0.75]
    assert regression_targets(ex, how="sum") == [3.0]
    assert regression_targets(ex, how="sum", remove_stopwords=True) == [1.0]  # dog 0 + sat 1


def test_d_training_returns_the_best_validation_result_and_keeps_those_weights():
    torch.manual_seed(0)
    al = _tiny("discriminative")
    data = _examples(24)
    al, best = train_discriminative(al, data[4:], data[:4], TrainConfig(lr=1e-3, batch_size=4, accumulation=2,
                                                                         epochs=2, evals_per_epoch=2))
    assert set(best) >= {"loss", "accuracy", "f1", "roc_auc", "tokens"} and best["tokens"] == 24
    again = evaluate_discriminative(al, data[:4])
    assert again["loss"] == pytest.approx(best["loss"], abs=1e-6)  # the kept weights are the best pass's
    with pytest.raises(ValueError, match="training and validation examples"):
        train_discriminative(al, data, [], TrainConfig())


def test_r_aligner_trains_on_the_aggregated_label_and_scores_one_number_per_pair():
    torch.manual_seed(0)
    al = _tiny("regression", "bert")
    data = _examples(20)
    al, best = train_regression(al, data[4:], data[:4], TrainConfig(lr=1e-3, batch_size=4, accumulation=1, epochs=2))
    assert math.isfinite(best["mse"])
    a = al.align("the cat sat", "the cat sat on the mat")
    assert a.tokens is None and len(a.scores) == 1


def test_d_aligner_keeps_whole_words_within_256_input_pieces():
    al = _tiny("discriminative")
    long_text = " ".join(WORDS * 30)  # 480 words
    cut, _ = al.prepare(long_text, "the park")
    n_pieces = len(al.tokenizer(cut, add_special_tokens=False)["input_ids"])
    assert n_pieces <= MAX_INPUT_PIECES and long_text.startswith(cut) and long_text[len(cut)] == " "
    aligned = al.align(long_text, "the park " * 400)  # a context longer than the model is truncated
    assert aligned.tokens == cut.split() and len(aligned.scores) == len(aligned.tokens)
