"""Perplexity on the references given the source: the definition, padding invariance, both model kinds."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, GPT2Config, GPT2LMHeadModel

from glassbox_workloads.metrics.base import ExampleError
from glassbox_workloads.metrics.lm import perplexity, reference_nll
from glassbox_workloads.runtime.hfmodels import train_tokenizer

TEXTS = ["patient: i have a cough and a fever", "doctor: please rest and drink water",
         "patient: my throat hurts", "doctor: it is probably a cold", "doctor: see a doctor if it gets worse"]
SOURCES = ["patient: i have a cough and a fever", "patient: my throat hurts today and yesterday"]
REFS = [["doctor: please rest"], ["doctor: it is probably a cold", "doctor: see a doctor"]]


@pytest.fixture(scope="module")
def gpt2():
    tok = train_tokenizer(TEXTS * 4, "gpt2", 300)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                                       eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id))
    return model.eval(), tok


class Uniform(torch.nn.Module):
    """A causal LM whose next-token distribution is uniform over the vocabulary."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids, attention_mask=None, **kw):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab))


def test_a_uniform_model_has_perplexity_equal_to_the_vocabulary_size(gpt2):
    _, tok = gpt2
    got = perplexity(Uniform(len(tok)), tok, SOURCES, REFS)
    assert got.corpus == pytest.approx(len(tok), rel=1e-6)
    assert got.per_example == pytest.approx([len(tok)] * 2, rel=1e-6)


def _manual_nll(model, tok, source, ref):
    s = tok(source)["input_ids"]
    r = tok(ref, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([s + r])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return -sum(logp[len(s) + j - 1, t].item() for j, t in enumerate(r)) / len(r)


def test_causal_nll_scores_only_the_reference_and_is_independent_of_batching(gpt2):
    model, tok = gpt2
    want = [_manual_nll(model, tok, SOURCES[0], REFS[0][0]),
            (_manual_nll(model, tok, SOURCES[1], REFS[1][0]) + _manual_nll(model, tok, SOURCES[1], REFS[1][1])) / 2]
    for bs in (1, 3):
        assert reference_nll(model, tok, SOURCES, REFS, batch_size=bs) == pytest.approx(want, abs=1e-5)


def test_corpus_perplexity_is_exp_of_the_mean_per_example_nll_not_token_weighted(gpt2):
    model, tok = gpt2
    nll = reference_nll(model, tok, SOURCES, REFS)
    got = perplexity(model, tok, SOURCES, REFS)
    assert got.corpus == pytest.approx(math.exp(sum(nll) / 2), rel=1e-9)
    assert got.per_example == pytest.approx([math.exp(v) for v in nll], rel=1e-9)


def test_a_long_source_is_cut_from_the_left_and_the_reference_kept(gpt2):
    model, tok = gpt2
    long_src = " ".join(["patient: i have a cough"] * 40)
    short = reference_nll(model, tok, [long_src], [["doctor: please rest"]], max_length=32)
    assert len(short) == 1 and math.isfinite(short[0])


def test_seq2seq_nll_matches_the_models_own_loss():
    tok = train_tokenizer(TEXTS * 4, "bart", 300)
    torch.manual_seed(0)
    model = BartForConditionalGeneration(BartConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id)).eval()
    got = reference_nll(model, tok, [SOURCES[0]], [REFS[0]], kind="seq2seq")
    enc = tok(SOURCES[0], return_tensors="pt")
    labels = tok(REFS[0][0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = model(**enc, labels=labels).loss.item()
    assert got == pytest.approx([want], abs=1e-5)
    with pytest.raises(ValueError, match="needs the sources"):
        reference_nll(model, tok, None, REFS, kind="seq2seq")


def test_missing_reference_or_source_names_the_example(gpt2):
    model, tok = gpt2
    with pytest.raises(ExampleError, match=r"example 1 \(references\)"):
        perplexity(model, tok, SOURCES, [["a"], [""]])
    with pytest.raises(ExampleError, match=r"example 0 \(source\)"):
        perplexity(model, tok, ["", "b"], REFS)


def test_without_sources_a_causal_lm_scores_the_references_after_its_bos(gpt2):
    model, tok = gpt2
    assert tok.bos_token_id is not None
    got = reference_nll(model, tok, None, REFS)
    assert len(got) == 2 and all(math.isfinite(v) and v > 0 for v in got)
    ids = torch.tensor([[tok.bos_token_id] + tok(REFS[0][0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]])
    logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
    manual = -sum(logp[j, ids[0, j + 1]].item() for j in range(ids.shape[1] - 1)) / (ids.shape[1] - 1)
    assert got[0] == pytest.approx(manual, abs=1e-5)
