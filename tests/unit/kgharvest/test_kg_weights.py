"""Prompt weights: the hand example, the bounds, and every corruption counted (SEEDS-DETAIL 2.2)."""

from __future__ import annotations

import math

import pytest

from glassbox_workloads.kgharvest.weights import WeightOptions, corruptions, prompt_weights, raw_weights


def test_weights_hand_example():
    pos, neg = [-2, -3, -8], [-4, -4, -4]
    assert raw_weights(pos, neg, WeightOptions()) == pytest.approx([0, -0.5, -3])
    assert prompt_weights(pos, neg) == pytest.approx([0.622459, 0.377541, 0], abs=1e-6)


def test_without_the_threshold_the_weights_are_the_softmax():
    assert prompt_weights([-2, -3, -8], [-4, -4, -4], WeightOptions(min_weight=0)) == pytest.approx(
        [0.603749, 0.366192, 0.030059], abs=1e-6)


def test_temperature_one_sharpens_the_weights():
    t2 = prompt_weights([-2, -3], [-4, -4])
    t1 = prompt_weights([-2, -3], [-4, -4], WeightOptions(temperature=1.0))
    assert t1[0] > t2[0]


def test_weights_are_non_negative_sum_to_one_and_at_most_top_k():
    pos = [-1.0 - 0.1 * i for i in range(30)]
    neg = [-3.0] * 30
    w = prompt_weights(pos, neg, WeightOptions(min_weight=0))
    assert all(x >= 0 for x in w) and math.isclose(sum(w), 1.0, abs_tol=1e-9)
    assert sum(1 for x in w if x > 0) <= 20


def test_a_prompt_that_scores_corruptions_as_well_as_seeds_is_weighted_lower():
    # Same seed score, but the second prompt also likes the corrupted tuples: the penalty sinks it.
    w = prompt_weights([-2.0, -2.0], [-6.0, -2.0])
    assert w[0] > w[1]


def test_corruption_count_is_seeds_times_positions_times_other_seeds():
    seeds = [("france", "paris"), ("japan", "tokyo"), ("italy", "rome"), ("egypt", "cairo"), ("peru", "lima")]
    got = corruptions(seeds)
    assert len(got) == 5 * 2 * 4 == 40
    assert ("france", "tokyo") in got and ("japan", "paris") in got
    assert not set(got) & set(seeds)


def test_a_seed_sharing_an_entity_does_not_corrupt_that_position():
    seeds = [("a", "x"), ("b", "x"), ("c", "y")]
    got = corruptions(seeds)
    # position 1: only seeds whose entity differs: a<-y, b<-y, c<-x twice (from both) = 4; position 0: 3*2 = 6
    assert len(got) == 10
