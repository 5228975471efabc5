"""The paraphrase generator glassbox loads: a causal LM from weights answers with text; one from a
random config is refused (it would write noise), and none means the given prompts only."""

from __future__ import annotations

import pytest

from glassbox_api.kinds.kgharvest import KGHarvestSpec
from glassbox_workloads.kgharvest.paraphraser import load_generator
from glassbox_workloads.runtime.errors import BadInput

BASE = {"model": {"uri": "m"}, "relations": [{"name": "r", "prompts": ["<ENT0> lives in the <ENT1>."],
                                              "seeds": [["lion", "savanna"]]}]}


def spec(paraphrase):
    return KGHarvestSpec.model_validate({**BASE, "paraphrase": paraphrase})


def test_a_causal_lm_from_weights_generates_text(tmp_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from glassbox_workloads.runtime.hfmodels import save, train_tokenizer

    tok = train_tokenizer(["paraphrase: the lion lives in the savanna ."] * 3, "gpt2", 300)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=64,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    save(model, tok, tmp_path / "gen")
    gen = load_generator(spec({"generator": {"uri": str(tmp_path / "gen")}, "maxNewTokens": 5}), None, "default", None)
    out = gen("paraphrase:\nthe lion lives in the savanna .\n")
    assert isinstance(out, str) and "paraphrase:" not in out  # the continuation only
    again = load_generator(spec({"generator": {"uri": str(tmp_path / "gen")}, "maxNewTokens": 5}), None, "default", None)
    assert again("paraphrase:\nthe lion lives in the savanna .\n") == out  # seeded: the same prompts again


def test_a_generator_from_a_random_config_is_bad_input():
    s = spec({"generator": {"architecture": "gpt2", "config": {"hiddenSize": 16, "numHeads": 2}}})
    with pytest.raises(BadInput, match="spec.paraphrase.generator"):
        load_generator(s, None, "default", None)


def test_no_generator_or_init_prompts_only_means_none():
    assert load_generator(spec({}), None, "default", None) is None
    assert load_generator(spec({"generator": {"uri": "/nowhere"}, "useInitPromptsOnly": True}), None, "default", None) is None
