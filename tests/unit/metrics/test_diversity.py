"""Dist-n and Entropy-n: section 3.3's hand values."""

from __future__ import annotations

import math

import pytest

from glassbox_workloads.metrics.diversity import dist, entropy, ngram_counts

HYPS = ["a b a", "a c"]


def test_dist_hand_values():
    assert dist(HYPS, 1).corpus == pytest.approx(0.6, abs=1e-12)
    assert dist(HYPS, 2).corpus == pytest.approx(1.0, abs=1e-12)
    assert dist(HYPS, 1).per_example is None


def test_entropy_hand_values():
    assert entropy(HYPS, 1).corpus == pytest.approx(0.950271, abs=1e-6)
    assert entropy(HYPS, 2).corpus == pytest.approx(math.log(3), abs=1e-6)


def test_uniform_ngrams_give_entropy_ln_distinct():
    assert entropy(["w x y z", "v u"], 1).corpus == pytest.approx(math.log(6), abs=1e-6)


def test_ngrams_do_not_cross_texts_and_short_texts_have_none():
    assert ngram_counts([["a", "b"], ["c"]], 2) == {("a", "b"): 1}
    assert dist(["a", "b"], 3).corpus == 0.0 and entropy(["a"], 3).corpus == 0.0
    with pytest.raises(ValueError):
        ngram_counts([["a"]], 0)
