"""KGHarvest API: slot rules for n-ary seeds, is_valid_prompt, the defaults BertNet ties together,
and the pretrain block (SEEDS-DETAIL 2.3). The CEL twins run on the real apiserver through
tests/support/invalid_cases.py."""

from __future__ import annotations

import copy

import pytest

from glassbox_api.kinds.kgharvest import KGHarvestSpec, Search
from glassbox_api.resource import InvalidResource, parse_resource

BASE = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "KGHarvest", "metadata": {"name": "k"},
        "spec": {"model": {"uri": "s3://m/bert/"},
                 "relations": [{"name": "r", "prompts": ["<ENT0> lives in the <ENT1>."],
                                "seeds": [["lion", "savanna"], ["otter", "river"]]}]}}


def doc(**relation):
    d = copy.deepcopy(BASE)
    d["spec"]["relations"][0].update(relation)
    return d


def test_ternary_seeds_need_all_three_slots_once():
    parse_resource(doc(prompts=["<ENT0> flies from <ENT1> to <ENT2>."], seeds=[["a", "b", "c"]]))
    with pytest.raises(InvalidResource, match="exactly once"):
        parse_resource(doc(prompts=["<ENT0> flies from <ENT1>."], seeds=[["a", "b", "c"]]))


def test_a_slot_twice_or_beyond_the_arity_is_refused():
    with pytest.raises(InvalidResource, match="exactly once"):
        parse_resource(doc(prompts=["<ENT0> likes <ENT1> and <ENT1>."]))
    with pytest.raises(InvalidResource, match="exactly once"):
        parse_resource(doc(prompts=["<ENT0> likes <ENT1> in <ENT2>."]))


def test_a_slot_glued_to_a_word_is_refused():
    with pytest.raises(InvalidResource, match="space or a double quote"):
        parse_resource(doc(prompts=["<ENT0> lives in the x<ENT1>."]))
    parse_resource(doc(prompts=['<ENT0> said "<ENT1>".']))


def test_candidate_caps_default_to_what_bertnet_ties_them_to():
    s = Search(max_tuples=70, max_word_occurrences=3)
    assert (s.first_candidates, s.later_candidates) == (70, 3)
    s = Search(max_tuples=70, first_entity_candidates=9, later_entity_candidates=2)
    assert (s.first_candidates, s.later_candidates) == (9, 2)


def test_bertnet_defaults():
    spec = KGHarvestSpec.model_validate(BASE["spec"])
    assert spec.prompt_weights.temperature == 2.0 and spec.prompt_weights.corruption_coefficient == 0.5
    assert spec.prompt_weights.top_k == 20 and spec.prompt_weights.min_weight == 0.05
    assert spec.search.max_tuples == 1000 and spec.search.max_subwords == 2 and spec.search.max_word_occurrences == 5
    assert spec.paraphrase.max_retries == 5 and spec.paraphrase.similarity_threshold == 75


def test_pretrain_needs_a_model_from_a_config():
    d = copy.deepcopy(BASE)
    d["spec"]["pretrain"] = {"corpus": {"uri": "data/c.txt", "format": "text"}}
    with pytest.raises(InvalidResource, match="pretrain trains a model from model.config"):
        parse_resource(d)
    d["spec"]["model"] = {"architecture": "bert", "config": {"hiddenSize": 32, "numHeads": 2}}
    parse_resource(d)
