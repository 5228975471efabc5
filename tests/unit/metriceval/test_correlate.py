"""Correlations with human scores: scipy's Pearson, Spearman and Kendall over the examples that have
both values; no number where it would be made up."""

from __future__ import annotations

import pytest

from glassbox_workloads.metriceval.correlate import correlate, correlations


def test_hand_values() -> None:
    got = correlate([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert got["pearson"] == pytest.approx(0.9819805060619657, abs=1e-12)
    assert got["spearman"] == pytest.approx(1.0) and got["kendall"] == pytest.approx(1.0) and got["n"] == 3
    rev = correlate([3.0, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0])
    assert rev["pearson"] == pytest.approx(-1.0) and rev["kendall"] == pytest.approx(-1.0)


def test_only_pairs_with_both_values_count() -> None:
    got = correlate([1.0, None, 2.0, 3.0, 9.0], [1.0, 5.0, 2.0, 3.0, None])
    assert got["n"] == 3 and got["spearman"] == pytest.approx(1.0)


@pytest.mark.parametrize("metric, human, note", [
    ([1.0, 2.0], [1.0, 2.0], "fewer than 3"),
    ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], "constant"),
])
def test_no_correlation_where_it_would_be_made_up(metric, human, note) -> None:
    got = correlate(metric, human)
    assert got["pearson"] is None and got["spearman"] is None and got["kendall"] is None and note in got["note"]


def test_every_per_example_metric_against_every_aspect() -> None:
    rows = [{"id": "a", "m1": 1.0, "m2": 3.0}, {"id": "b", "m1": 2.0, "m2": 2.0}, {"id": "c", "m1": 3.0, "m2": 1.0}]
    got = correlations(rows, {"fluency": [1.0, 2.0, 3.0], "human": [3.0, 2.0, 1.0]})
    assert set(got) == {"m1", "m2"} and set(got["m1"]) == {"fluency", "human"}
    assert got["m1"]["fluency"]["kendall"] == pytest.approx(1.0) and got["m2"]["fluency"]["kendall"] == pytest.approx(-1.0)
