"""Decoding: beam search equals an exhaustive search on a tiny model, respects its constraints, is
greedy at one beam; top-k / top-p keep the right tokens; several return sequences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from glassbox_workloads.recipes.decoding import Generation, beam_search, generate, warp  # noqa: E402

EOS, V, M = 0, 4, 4


def _table(seed: int = 0) -> np.ndarray:
    """Logits indexed by (position, previous token, token before that): a non-Markov toy LM."""
    return np.random.default_rng(seed).normal(0, 1.5, (M, V, V, V)).astype(np.float32)


def _next_logits(table: np.ndarray):
    tab = jnp.asarray(table)

    def f(gen, t):
        prev1 = jnp.where(t >= 1, gen[:, jnp.maximum(t - 1, 0)], 1)
        prev2 = jnp.where(t >= 2, gen[:, jnp.maximum(t - 2, 0)], 2)
        return tab[t, prev1, prev2]

    return f


def _logp_np(table: np.ndarray, seq: list[int], t: int) -> np.ndarray:
    prev1 = seq[t - 1] if t >= 1 else 1
    prev2 = seq[t - 2] if t >= 2 else 2
    x = table[t, prev1, prev2].astype(np.float64)
    return x - np.log(np.exp(x - x.max()).sum()) - x.max()


def _allowed(seq: list[int], t: int, tok: int, cfg: Generation) -> bool:
    if tok == EOS and t < cfg.min_new_tokens:
        return False
    n = cfg.no_repeat_ngram_size
    if n and t >= n - 1:
        cand = tuple(seq[t - n + 1:t] + [tok])
        if any(tuple(seq[j:j + n]) == cand for j in range(0, t - n + 1)):
            return False
    return True


def _exhaustive(table: np.ndarray, cfg: Generation) -> list[tuple[float, list[int]]]:
    """Every admissible sequence (ending in eos, or max_new_tokens long), best score first."""
    out = []
    for length in range(1, M + 1):
        for body in itertools.product(range(V), repeat=length):
            seq = list(body)
            if EOS in seq[:-1] or (length < M and seq[-1] != EOS):
                continue
            if not all(_allowed(seq, t, seq[t], cfg) for t in range(length)):
                continue
            total = sum(_logp_np(table, seq, t)[seq[t]] for t in range(length))
            out.append((total / length ** cfg.length_penalty, seq))
    return sorted(out, key=lambda x: -x[0])


def _strip(row) -> list[int]:
    row = [int(x) for x in row]
    return row[: row.index(EOS) + 1] if EOS in row else row


@pytest.mark.parametrize("lp,min_new,ngram,seed", [(1.0, 0, 0, 0), (2.0, 2, 0, 1), (0.0, 0, 2, 2), (2.0, 1, 2, 3)])
def test_beam_search_with_room_for_every_prefix_equals_exhaustive_search(lp, min_new, ngram, seed):
    table = _table(seed)
    cfg = Generation(max_new_tokens=M, min_new_tokens=min_new, num_beams=64, length_penalty=lp,
                     no_repeat_ngram_size=ngram, num_return_sequences=3)
    seqs, scores = beam_search(_next_logits(table), 1, cfg, EOS)
    want = _exhaustive(table, cfg)[:3]
    assert [_strip(r) for r in np.asarray(seqs[0])] == [s for _, s in want]
    np.testing.assert_allclose(np.asarray(scores[0]), [s for s, _ in want], rtol=1e-4)


def test_narrow_beams_respect_min_length_and_no_repeated_ngrams():
    cfg = Generation(max_new_tokens=M, min_new_tokens=3, num_beams=2, no_repeat_ngram_size=2, length_penalty=2.0,
                     num_return_sequences=2)
    for seed in range(6):
        seqs, _ = beam_search(_next_logits(_table(seed)), 1, cfg, EOS)
        for row in np.asarray(seqs[0]):
            seq = _strip(row)
            body = seq[:-1] if seq[-1] == EOS else seq
            assert len(body) >= 3
            bigrams = list(zip(seq, seq[1:]))
            assert len(bigrams) == len(set(bigrams)), seq


def _greedy_np(table: np.ndarray, cfg: Generation) -> list[int]:
    seq: list[int] = []
    for t in range(M):
        lp = _logp_np(table, seq, t)
        lp = [lp[v] if _allowed(seq, t, v, cfg) else -1e9 for v in range(V)]
        seq.append(int(np.argmax(lp)))
        if seq[-1] == EOS:
            break
    return seq


@pytest.mark.parametrize("lp", [0.0, 1.0, 2.0])
def test_one_beam_is_greedy_decoding(lp):
    for seed in range(8):
        table = _table(seed)
        cfg = Generation(max_new_tokens=M, num_beams=1, length_penalty=lp, min_new_tokens=seed % 2)
        out = generate(_next_logits(table), 1, cfg, EOS, jax.random.key(0))
        assert out.shape == (1, 1, M)
        assert _strip(out[0, 0]) == _greedy_np(table, cfg)


def test_top_p_keeps_the_smallest_prefix_reaching_p_and_top_k_the_k_best():
    logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda cfg: (np.asarray(warp(logits, cfg))[0] > -1e8).tolist()  # noqa: E731
    assert kept(Generation(do_sample=True, top_p=0.8)) == [True, True, False, False]
    assert kept(Generation(do_sample=True, top_p=0.81)) == [True, True, True, False]
    assert kept(Generation(do_sample=True, top_p=0.1)) == [True, False, False, False]  # at least one
    assert kept(Generation(do_sample=True, top_k=3)) == [True, True, True, False]
    assert kept(Generation(do_sample=True, top_k=3, top_p=0.5)) == [True, False, False, False]


def test_sampling_returns_several_sequences_per_example_from_the_nucleus_only():
    table = _table(5)
    cfg = Generation(max_new_tokens=M, do_sample=True, top_p=0.6, num_return_sequences=4)
    out = np.asarray(generate(_next_logits(table), 3, cfg, EOS, jax.random.key(1)))
    assert out.shape == (3, 4, M)
    for row in out.reshape(-1, M):
        seq = _strip(row)
        for t, tok in enumerate(seq):
            p = np.exp(_logp_np(table, seq, t))
            order = np.argsort(-p)
            nucleus = order[: int(np.searchsorted(np.cumsum(p[order]), 0.6) + 1)]
            assert tok in nucleus
        assert all(x == EOS for x in row[len(seq):])
    assert len({tuple(r) for r in out.reshape(-1, M)}) > 1  # independent draws


def test_generation_settings_refuse_contradictions():
    for bad in (dict(min_new_tokens=5, max_new_tokens=4), dict(num_beams=2, do_sample=True),
                dict(num_return_sequences=3, num_beams=2), dict(do_sample=True, top_p=0.0)):
        with pytest.raises(ValueError):
            Generation(**bad)
    assert math.isclose(Generation().length_penalty, 1.0)


@pytest.mark.slow  # ~30 s on 2 busy cores (two compilations of a GPT-2 decoding loop)
def test_causal_lm_predictions_greedy_as_before_and_beams_return_several_texts():
    from glassbox_workloads.flax_models import build_model, init_params, tiny_config
    from glassbox_workloads.recipes import ByteTokenizer, causal_lm
    from glassbox_workloads.recipes.common import generate_decoder

    tok = ByteTokenizer()
    cfg = tiny_config("gpt2", vocab_size=tok.vocab_size, hidden_size=16, num_layers=1, num_heads=2,
                      max_position_embeddings=32)
    model = build_model(cfg)
    params = init_params(cfg, jax.random.key(0))
    apply_fn = causal_lm.decoder_apply(model)
    greedy = causal_lm.make(apply_fn, tok, max_length=24, max_new_tokens=5, max_prompt_length=8)
    batch = greedy.pred_collate_fn([{"prompt": "ab"}, {"prompt": "xyz"}])
    old = generate_decoder(apply_fn, params, batch["prompt_ids"], batch["prompt_mask"], 5, jax.random.key(0), tok.eos_id)
    new = greedy.pred_fn(jax.random.key(0), params, batch)
    np.testing.assert_array_equal(np.asarray(new), np.asarray(old))
    beams = causal_lm.make(apply_fn, tok, max_length=24, max_new_tokens=5, max_prompt_length=8,
                           generation=Generation(max_new_tokens=5, num_beams=3, num_return_sequences=2))
    texts = beams.output_fn(beams.pred_fn(jax.random.key(0), params, batch))
    assert len(texts) == 2 and all(isinstance(t, list) and len(t) == 2 for t in texts)


def test_seq2seq_beams_decode_per_example_with_min_length_and_no_repeated_bigrams():
    from glassbox_workloads.flax_models import build_model, init_params, tiny_config
    from glassbox_workloads.recipes import ByteTokenizer, seq2seq

    tok = ByteTokenizer()
    cfg = tiny_config("bart", vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32, num_layers=1,
                      num_heads=2, max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    params = init_params(cfg, jax.random.key(0))
    gen = Generation(max_new_tokens=8, min_new_tokens=5, num_beams=3, num_return_sequences=3, no_repeat_ngram_size=2)
    r = seq2seq.make(build_model(cfg), tok, 16, 8, cfg.start_token_id, generation=gen)
    preds = np.asarray(r.pred_fn(jax.random.key(0), params, r.pred_collate_fn([{"source": "ab"}, {"source": "xyz!"}])))
    assert preds.shape == (2, 3, 8)
    for rows in preds:
        assert len({tuple(x) for x in rows}) == 3  # three different hypotheses
        for row in rows:
            row = [int(x) for x in row]
            body = row[: row.index(tok.eos_id)] if tok.eos_id in row else row
            assert len(body) >= 5
            bigrams = list(zip(body, body[1:]))
            assert len(bigrams) == len(set(bigrams))
    texts = r.output_fn(preds)
    assert len(texts) == 2 and all(len(t) == 3 for t in texts)
