"""A tiny masked LM with a word-level vocabulary: random weights (exactness and formula checks need
no knowledge) built in a second."""

from __future__ import annotations

import pytest

WORDS = ("lion tiger zebra panda otter beaver camel whale shark eagle savanna jungle forest river ocean "
         "desert mountain lives the in and are words capital paris tokyo rome cairo lima france japan italy "
         "egypt peru city of is").split()

SMALL = tuple("lion tiger zebra panda otter savanna jungle forest river ocean lives the in and are words of".split())
"""About a dozen visitable words: enough for the brute force over two subwords or three entities."""


def tiny_mlm(seed: int = 0, words: tuple[str, ...] = tuple(WORDS), hidden: int = 32):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from glassbox_workloads.kgharvest.mlm import MaskedLM
    from glassbox_workloads.runtime.hfmodels import train_tokenizer

    tok = train_tokenizer([" ".join(words) + " ."], "bert", 1000, level="word")
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    return MaskedLM(BertForMaskedLM(cfg), tok)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Row batches here are tiny: one thread is ~30x faster than two fighting over a shared CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mlm():
    return tiny_mlm()
