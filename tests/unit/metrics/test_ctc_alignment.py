"""CTC's aligners and metrics on hand values (SEEDS-DETAIL section 3.3)."""

from __future__ import annotations

import math

import pytest
import torch

from glassbox_workloads.metrics.base import ExampleError
from glassbox_workloads.metrics.ctc import scorers
from glassbox_workloads.metrics.ctc.aligner import Aligner, Alignment, aggregate
from glassbox_workloads.metrics.ctc.discriminative import sum_pieces, word_groups, word_spans
from glassbox_workloads.metrics.ctc.embedding import max_cosine
from glassbox_workloads.metrics.ctc.weak import label_tokens

R2 = 1 / math.sqrt(2)


class TableAligner(Aligner):
    """An aligner whose token scores are given per (input, context): the scorers' logic alone."""

    def __init__(self, table: dict[tuple[str, str], list[float]]):
        self.table, self.calls = table, []

    def align_many(self, inputs, contexts):
        self.calls.extend(zip(inputs, contexts))
        return [Alignment([f"w{i}" for i in range(len(self.table[(x, c)]))], self.table[(x, c)])
                for x, c in zip(inputs, contexts)]


def test_e_aligner_on_toy_embeddings():
    hyp = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ctx = torch.tensor([[1.0, 0.0], [R2, R2]])
    align = max_cosine(hyp, ctx)
    assert align.tolist() == pytest.approx([1.0, 0.7071068], abs=1e-6)
    assert aggregate(Alignment(["a", "b"], align.tolist())) == pytest.approx(0.853553, abs=1e-6)


def test_e_alignment_of_identical_embeddings_is_one_per_token_and_values_lie_in_minus_one_one():
    x = torch.randn(7, 16, generator=torch.Generator().manual_seed(0))
    assert max_cosine(x, x).tolist() == pytest.approx([1.0] * 7, abs=1e-6)
    y = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    v = max_cosine(y, -y)  # scaled, unnormalised inputs are normalised first
    assert ((v >= -1 - 1e-6) & (v <= 1 + 1e-6)).all()
    assert max_cosine(3 * x, x).tolist() == pytest.approx([1.0] * 7, abs=1e-6)


def test_preservation_hand_value_and_properties():
    assert scorers.preservation_value(0.8, 0.6) == pytest.approx(0.685714, abs=1e-6)
    for a, b in [(0.8, 0.6), (0.1, 0.9), (0.3, 0.3), (1.0, 0.0)]:
        v = scorers.preservation_value(a, b)
        assert v == pytest.approx(scorers.preservation_value(b, a))
        assert min(a, b) - 1e-12 <= v <= max(a, b) + 1e-12
    assert scorers.preservation_value(0.4, 0.4) == pytest.approx(0.4)
    assert scorers.preservation_value(0.0, 0.0) == 0.0


def test_preservation_scorer_uses_both_directions_and_rescales_with_a_baseline():
    al = TableAligner({("src", "out"): [0.8], ("out", "src"): [0.6]})
    got = scorers.preservation(al, ["out"], ["src"])
    assert got.per_example == pytest.approx([0.685714], abs=1e-6)
    assert set(al.calls) == {("src", "out"), ("out", "src")}
    assert scorers.preservation(al, ["out"], ["src"], baseline=0.5).corpus == pytest.approx((0.685714 - 0.5) / 0.5, abs=1e-5)


def test_relevance_is_unchanged_by_duplicated_references_and_monotone_in_each_factor():
    table = {("y", "x"): [0.9, 0.5], ("r1", "y"): [0.4], ("r2", "y"): [0.8, 1.0]}
    d2s, s2r = TableAligner(table), TableAligner(table)
    one = scorers.relevance(d2s, s2r, ["y"], ["x"], [["r1", "r2"]]).corpus
    assert one == pytest.approx(0.7 * (0.4 + 0.9) / 2)
    assert scorers.relevance(d2s, s2r, ["y"], ["x"], [["r1", "r2", "r1", "r2"]]).corpus == pytest.approx(one)
    # Relevance uses the doc->summary aligner for y->x and the summary->reference one for r->y.
    assert ("y", "x") in d2s.calls and ("y", "x") not in s2r.calls and ("r1", "y") in s2r.calls
    higher_yx = TableAligner({**table, ("y", "x"): [0.9, 0.9]})
    higher_ry = TableAligner({**table, ("r1", "y"): [0.6]})
    assert scorers.relevance(higher_yx, s2r, ["y"], ["x"], [["r1", "r2"]]).corpus > one
    assert scorers.relevance(d2s, higher_ry, ["y"], ["x"], [["r1", "r2"]]).corpus > one


def test_consistency_is_the_mean_alignment_of_the_output_against_the_source():
    al = TableAligner({("y1", "x1"): [1.0, 0.5], ("y2", "x2"): [0.0]})
    got = scorers.consistency(al, ["y1", "y2"], ["x1", "x2"])
    assert got.per_example == [0.75, 0.0] and got.corpus == 0.375


class WordAligner(Aligner):
    def align_many(self, inputs, contexts):
        return [Alignment(x.split(), [0.5] * len(x.split())) for x in inputs]


def test_dialog_metrics_sum_without_stop_words_and_removing_stop_words_only_deletes_terms():
    al = WordAligner()
    g = scorers.groundedness(al, ["the cat is on a mat"], ["fact: cats"]).corpus
    assert g == pytest.approx(0.5 * 2)  # cat, mat
    kept = scorers.groundedness(al, ["the cat is on a mat"], ["fact: cats"], remove_stopwords=False).corpus
    assert kept == pytest.approx(0.5 * 6) and g <= kept


def test_engagingness_context_is_knowledge_three_newlines_history():
    al = TableAligner({("y", "k1\nk2\n\n\nh1\nh2"): [1.0, 0.25]})
    got = scorers.engagingness(al, ["y"], [["k1", "k2"]], [" h1\nh2 "], remove_stopwords=False)
    assert got.corpus == pytest.approx(1.25)


def test_aggregation_rules():
    a = Alignment(["The", "cat", " of "], [0.2, 0.9, 0.4])
    assert aggregate(a, "mean") == pytest.approx(0.5)
    assert aggregate(a, "mean", remove_stopwords=True) == pytest.approx(0.9)
    assert aggregate(a, "sum", remove_stopwords=True) == pytest.approx(0.9)
    assert aggregate(Alignment(["the"], [0.3]), "mean", remove_stopwords=True) == 0.0
    assert aggregate(Alignment(None, [0.42]), "sum", remove_stopwords=True) == 0.42
    with pytest.raises(ValueError, match="mean or sum"):
        aggregate(a, "max")


def test_ctc_metrics_name_the_example_with_an_empty_output_or_missing_source():
    al = WordAligner()
    with pytest.raises(ExampleError, match="example 1"):
        scorers.consistency(al, ["a", ""], ["x", "x"])
    with pytest.raises(ExampleError, match=r"example 0 \(source\)"):
        scorers.consistency(al, ["a"], [""])
    with pytest.raises(ExampleError, match=r"example 0 \(references\)"):
        scorers.relevance(al, al, ["a"], ["x"], [[]])
    with pytest.raises(ExampleError, match=r"example 0 \(knowledge\)"):
        scorers.groundedness(al, ["a"], [None])


def test_d_label_builder_uses_the_authors_polarity():
    text, labels = label_tokens("the <mask> sat on the <mask>", ["cat", "mat"], ["dog", "Mat "])
    assert text == "the dog sat on the Mat"
    assert labels == [0, 1, 0, 0, 0, 0]
    assert len(labels) == len(text.split())


def test_d_label_builder_all_zero_for_unchanged_fillings_and_multiword_fillings_label_every_word():
    assert label_tokens("the <mask> sat", ["cat"], [" CAT"])[1] == [0, 0, 0]
    text, labels = label_tokens("<mask> sat on the <mask> .", ["the cat", "mat"], ["a big dog", "mat"])
    assert text == "a big dog sat on the mat ." and labels == [1, 1, 1, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="2 masks, 1 answers"):
        label_tokens("<mask> and <mask>", ["a"], ["b"])


def test_word_features_are_sums_of_their_pieces():
    feats = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    groups = [[0], [1, 2, 3], [5]]
    out = sum_pieces(feats, groups)
    assert torch.equal(out[0], feats[0])  # a 1-piece word's feature is its piece's
    assert torch.equal(out[1], feats[1] + feats[2] + feats[3])
    assert torch.equal(out[2], feats[5])


def test_pieces_join_the_word_holding_their_first_character():
    text = "the cat's  mat"
    spans = word_spans(text)
    assert spans == [(0, 3), (4, 9), (11, 14)]
    # BPE-like pieces: "the", "cat", "'s", a bare space piece before "mat", "mat"; (0, 0) is special.
    pieces = [(0, 0), (0, 3), (4, 7), (7, 9), (10, 11), (11, 14), (0, 0)]
    assert word_groups(spans, pieces) == [[1], [2, 3], [4, 5]]
