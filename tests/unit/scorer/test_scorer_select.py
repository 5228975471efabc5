"""Selection, ranking, loss and schedule: SEEDS-DETAIL.md section 1.2's hand values."""

from __future__ import annotations

import math

import pytest

from glassbox_workloads.scorer.select import (
    best_index, linear_lr, mse, rank_order, select_grouped, steps_per_epoch, transform, warmup_steps,
)


def test_mse_of_the_hand_values():
    assert mse([0.2, 0.9], [0, 1]) == pytest.approx(0.025)


def test_schedule_end_points_and_step_count():
    total = steps_per_epoch(102_400, 8, 16)
    assert total == 800
    warm = warmup_steps(total, 0.1)
    assert warm == 80
    assert linear_lr(0, total, warm, 2e-5) == 0.0
    assert linear_lr(warm, total, warm, 2e-5) == pytest.approx(2e-5)
    assert linear_lr(total, total, warm, 2e-5) == 0.0
    assert linear_lr(440, total, warm, 2e-5) == pytest.approx(1e-5)


def test_ties_go_to_the_first_candidate():
    assert best_index([0.3, 0.7, 0.7, 0.1]) == 1
    assert best_index([0.5, 0.5]) == 0


def test_grouping_never_mixes_examples_with_the_same_instruction_text():
    # two examples with identical instruction text, keyed by example index, stay separate
    keys = [0, 0, 1, 1]
    scores = [0.1, 0.9, 0.8, 0.2]
    assert select_grouped(keys, scores) == {0: 1, 1: 2}
    assert select_grouped(keys, [0.5, 0.5, 0.4, 0.4]) == {0: 0, 1: 2}


def test_selection_on_raw_equals_selection_on_sigmoid():
    raw = [0.3, 2.5, -1.0, 2.4, 1.2, 1.5]
    keys = [0, 0, 0, 1, 1, 1]
    assert select_grouped(keys, raw) == select_grouped(keys, [transform(r, "sigmoid") for r in raw])


def test_clip_makes_ties_so_ranking_reads_raw_scores():
    raw = [1.2, 1.5]
    clipped = [transform(r, "clip") for r in raw]
    assert clipped == [1.0, 1.0] and best_index(clipped) == 0  # clipped: the wrong one wins the tie
    assert best_index(raw) == 1 and rank_order(raw) == [1, 0]


def test_transforms():
    assert transform(-0.5, "clip") == 0.0 and transform(0.4, "clip") == 0.4
    assert transform(0.0, "sigmoid") == 0.5 and transform(-800.0, "sigmoid") == pytest.approx(0.0)
    assert transform(1.7, "none") == 1.7
    assert math.isclose(transform(2.0, "sigmoid"), 1 / (1 + math.exp(-2)))
    with pytest.raises(ValueError):
        transform(1.0, "tanh")


def test_rank_keeps_given_order_on_equal_scores():
    assert rank_order([0.2, 0.9, 0.2, 0.9]) == [1, 3, 0, 2]
