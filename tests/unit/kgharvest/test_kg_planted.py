"""Planted structure, end to end (SEEDS-DETAIL 2.2): a 2-layer BERT MLM with a word-level vocabulary,
trained on CPU on forty planted "<animal> lives in the <habitat> ." facts, harvested with the true
prompt, an unrelated prompt and five seeds. The true pairs come first, and the unrelated prompt is
weighted below the true one."""

from __future__ import annotations

import pytest

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.kgharvest import KGHarvestSpec, Pretrain

TRUE_PROMPT = "<ENT0> lives in the <ENT1>."
UNRELATED = "<ENT0> and <ENT1> are words."


@pytest.fixture(scope="module")
def planted():
    from transformers import AutoModelForMaskedLM

    from glassbox_workloads.kgharvest.corpus import pretrain_mlm
    from glassbox_workloads.kgharvest.facts import ANIMALS, animals_corpus
    from glassbox_workloads.kgharvest.mlm import MaskedLM
    from glassbox_workloads.runtime import hfmodels

    lines = animals_corpus()
    model = ModelSpec.model_validate({"architecture": "bert", "config": {
        "hiddenSize": 64, "intermediateSize": 128, "numLayers": 2, "numHeads": 2, "maxPositionEmbeddings": 64}})
    loaded = hfmodels.load(model, AutoModelForMaskedLM, tokenizer_texts=lines, tokenizer_level="word", seed=0)
    cfg = Pretrain.model_validate({"corpus": {"uri": "planted", "format": "text"}, "steps": 1500,
                                   "maskProbability": 0.3, "learningRate": 0.003})
    pretrain_mlm(loaded.model, loaded.tokenizer, lines, cfg)
    return MaskedLM(loaded.model, loaded.tokenizer), set(ANIMALS)


@pytest.mark.slow
def test_planted_pairs_are_harvested_and_the_unrelated_prompt_weighs_less(planted):
    from glassbox_workloads.kgharvest.harvest import harvest_relation

    mlm, truth = planted
    spec = KGHarvestSpec.model_validate({
        "model": {"uri": "unused"},
        "relations": [{"name": "lives_in", "prompts": [TRUE_PROMPT, UNRELATED],
                       "seeds": [["lion", "savanna"], ["tiger", "jungle"], ["otter", "river"], ["camel", "desert"],
                                 ["whale", "ocean"]]}],
        # Five animals share each habitat, exactly BertNet's default word-repeat cap (5): a single
        # wrong pair in the heap would then lock a true one out, so the cap is lifted above the planted fan-in.
        "search": {"maxTuples": 200, "maxSubwords": 1, "maxWordOccurrences": 10}})
    h = harvest_relation(mlm, spec.relations[0], spec)
    weights = {w.prompt: w.weight for w in h.prompts}
    assert weights["<ENT0> lives in the <ENT1> ."] > weights["<ENT0> and <ENT1> are words ."]
    top = [tuple(e.lower() for e in ents) for ents, _, _ in h.tuples[:20]]
    precision = sum(t in truth for t in top) / len(top)
    assert precision >= 0.8, (precision, [t for t in top if t not in truth], weights)
