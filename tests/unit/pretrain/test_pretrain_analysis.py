"""SEEDS.md section 1: memorization of a model overfit on a few sequences is 1.0, of a random
model about 0; perplexity of a random model is about the vocabulary size."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from glassbox_workloads.pretrain.analysis import greedy_generate, memorization, perplexity

VOCAB = 128


def tiny_llama(seed: int = 0, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=80)
    return LlamaForCausalLM(cfg)


def sequences(n: int, length: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (n, length), generator=g, dtype=torch.int32)


def test_memorization_of_an_overfit_model_is_one() -> None:
    data = sequences(4, 17)
    model = tiny_llama(layers=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = data.long()
    for _ in range(300):
        logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 5e-3:
            break
    m = memorization(model, data, [0, 1, 2, 3], prompt_tokens=8, generate_tokens=8, batch_size=2)
    assert m["memorization_token_match"] == 1.0
    assert m["memorization_full_match"] == 1.0
    assert m["memorization_samples"] == 4
    ppl = perplexity(model, data, [0, 1, 2, 3])
    assert ppl["perplexity"] < 1.05


def test_memorization_of_a_random_model_is_about_zero() -> None:
    data = sequences(16, 64, seed=2)
    m = memorization(tiny_llama(seed=3), data, list(range(16)), prompt_tokens=32, generate_tokens=32,
                     batch_size=16)
    assert m["memorization_token_match"] < 0.05
    assert m["memorization_full_match"] == 0.0
    ppl = perplexity(tiny_llama(seed=3), data, list(range(16)), batch_size=16)
    assert 0.5 * VOCAB < ppl["perplexity"] < 2 * VOCAB
    assert math.isclose(math.log(ppl["perplexity"]), ppl["heldout_loss"])


def test_cached_greedy_generation_equals_full_recompute() -> None:
    model = tiny_llama(seed=5).eval()
    prompt = sequences(2, 8, seed=4).long()
    got = greedy_generate(model, prompt, 6)
    ids = prompt
    with torch.no_grad():
        for _ in range(6):
            nxt = model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], 1)
    assert torch.equal(got, ids[:, 8:])
