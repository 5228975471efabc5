"""The adaptation pair builder on SEEDS-DETAIL.md section 1.2's hand example, and Rouge-L labels."""

from __future__ import annotations

import json
import random

import pytest

from glassbox_api.kinds.common import DatasetRef
from glassbox_workloads.runtime.errors import BadInput
from glassbox_workloads.scorer.data import Example, Pair, build_pairs, read_records, rouge_l, to_examples

E1 = Example("i1", ("a",), ("a", "b c", "b c"))
E2 = Example("i2", ("d",), ("x",))


def _distinct(out: list[Pair]) -> list[Pair]:
    seen, first = set(), []
    for p in out:
        if (p.instruction, p.response) not in seen:
            seen.add((p.instruction, p.response))
            first.append(p)
    return first


@pytest.mark.parametrize("seed", [11111, 0, 1, 2, 3, 4, 5])
def test_the_hand_example_gives_exactly_the_pairs_section_1_2_lists(seed):
    out = build_pairs([E1, E2], 40, seed)
    got = {(p.instruction, p.response, p.label) for p in out}
    assert {("i1", "a", 1.0), ("i2", "d", 1.0), ("i1", "b c", 0.0), ("i2", "x", 0.0)} <= got
    assert got - {("i1", "a", 1.0), ("i2", "d", 1.0), ("i1", "b c", 0.0), ("i2", "x", 0.0)} <= {("i1", "d", 0.0), ("i2", "a", 0.0)}
    assert ("i1", "a", 0.0) not in got  # the sample equal to a reference keeps its label 1


def test_no_key_twice_and_the_tiling_repeats_the_one_shuffle():
    out = build_pairs([E1, E2], 40, 11111)
    assert len(out) == 40
    n = len(_distinct(out))
    base = out[:n]
    assert len({(p.instruction, p.response) for p in base}) == n  # no (instruction, response) twice
    assert all(out[k] == base[k % n] for k in range(40))


def test_negatives_depend_only_on_the_seed():
    draws = {frozenset((p.instruction, p.response) for p in build_pairs([E1, E2], 12, s) if p.label == 0.0 and p.response in "ad")
             for s in range(30)}
    assert len(draws) > 1  # the seed picks which negatives survive ...
    assert build_pairs([E1, E2], 12, 7) == build_pairs([E1, E2], 12, 7)  # ... and only the seed


def test_the_builder_draws_what_random_seed_and_module_calls_would():
    """The authors call random.seed(11111), random.choice per positive, random.shuffle once."""
    random.seed(11111)
    targets = sorted({"a", "d"})
    picks = [random.choice(targets) for _ in range(2)]
    out = build_pairs([E1, E2], 100, 11111)
    negatives = [(p.instruction, p.response) for p in _distinct(out) if p.label == 0.0 and p.response in ("a", "d")]
    expected = [(i, t) for i, t, own in (("i1", picks[0], "a"), ("i2", picks[1], "d")) if t != own]
    assert sorted(negatives) == sorted(expected)


def test_rouge_l_label_is_rouge_score_stemmed_and_best_over_references():
    assert rouge_l(["the cat sat on the mat"], "the cat lay on the mat") == pytest.approx(5 / 6)
    assert rouge_l(["completely different", "the cats are running"], "the cat is running") > rouge_l(["the cats are running"], "a dog")
    assert rouge_l(["Running cats!"], "run cat") == pytest.approx(1.0)  # lowercased, punctuation gone, Porter-stemmed


def test_samples_in_the_authors_nested_shape_are_flattened_in_order():
    recs = [{"inputs": "q", "targets": "t", "flan_samples": {"beam4": [{"response": "r0"}], "sampling": [{"response": "r1"}, {"response": "r2"}]}}]
    (ex,) = to_examples(recs, "spec.adaptation.data", instruction="inputs", references="targets", samples="flan_samples")
    assert ex == Example("q", ("t",), ("r0", "r1", "r2"))


@pytest.mark.parametrize("rec,needle", [
    ({"references": ["a"]}, "'instruction'"),
    ({"instruction": "q"}, "no references"),
    ({"instruction": "q", "references": [1]}, "example 0"),
])
def test_a_malformed_example_is_bad_input_naming_the_field(rec, needle):
    with pytest.raises(BadInput) as err:
        to_examples([rec], "spec.adaptation.data")
    assert err.value.field == "spec.adaptation.data" and needle in str(err.value)


def test_a_missing_dataset_is_bad_input_naming_its_uri_field(tmp_path):
    with pytest.raises(BadInput) as err:
        read_records(DatasetRef(uri=str(tmp_path / "nope.jsonl")), "spec.adaptation.data")
    assert err.value.field == "spec.adaptation.data.uri"


def test_records_read_relative_to_the_spec_folder(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps({"instruction": "q", "references": ["r"]}) + "\n")
    assert read_records(DatasetRef(uri="d.jsonl"), "f", base_dir=tmp_path) == [{"instruction": "q", "references": ["r"]}]
