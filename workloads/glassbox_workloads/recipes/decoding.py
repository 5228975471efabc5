"""Decoding for every recipe: greedy, beam search (HF/fairseq conventions), top-k / top-p sampling.

All loops are `lax.fori_loop`s over fixed shapes, so decoding jits and shards like the rest of a
recipe. A model is seen through one function, `next_logits(gen, t) -> (N, V)`: the logits of
generated position t given the generated tokens `gen` (N, max_new_tokens), of which only the
first t columns are meaningful. The caller closes over its prompt or encoder states, repeated
`Generation.width` times per example (`expand`).

Conventions (Hugging Face `generate`, which the seed papers used):
- a beam's score is its summed log-probability divided by (new tokens incl. eos) ** length_penalty;
- min_new_tokens bans eos before that many tokens; no_repeat_ngram_size bans a token that would
  repeat an n-gram of the generated tokens (HF also counts the prompt of a decoder; we count the
  generated tokens only, so a prompt's keywords may be copied verbatim);
- a batch row stops once num_beams hypotheses are finished and none running can beat the worst,
  so num_beams 1 is exactly greedy decoding;
- sampling applies temperature, then top-k, then top-p (nucleus), keeping at least one token.
After eos every position holds eos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp

NEG = -1e9  # a banned token's logit: finite, so sums of scores never become NaN
DEAD = -1e30  # an empty slot among the finished hypotheses


@dataclass(frozen=True)
class Generation:
    """Decoding settings (the `generation` block of the ShardedFinetune API)."""

    max_new_tokens: int = 64
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_return_sequences: int = 1

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.min_new_tokens < 0 or self.min_new_tokens > self.max_new_tokens:
            raise ValueError("need 0 <= min_new_tokens <= max_new_tokens and max_new_tokens >= 1")
        if self.num_beams < 1 or self.num_return_sequences < 1:
            raise ValueError("num_beams and num_return_sequences must be >= 1")
        if self.do_sample and self.num_beams > 1:
            raise ValueError("beam search does not sample: set num_beams 1 with do_sample")
        if not self.do_sample and self.num_return_sequences > self.num_beams:
            raise ValueError("num_return_sequences must not exceed num_beams")
        if not 0 < self.top_p <= 1 or self.top_k < 0 or self.temperature <= 0:
            raise ValueError("need 0 < top_p <= 1, top_k >= 0 and temperature > 0")

    @property
    def width(self) -> int:
        """Rows decoded per example: the beams, or the sampled sequences."""
        return self.num_return_sequences if self.do_sample else self.num_beams


def expand(x: jax.Array, width: int) -> jax.Array:
    """Repeat each example's row `width` times (example-major), as the decoders expect."""
    return jnp.repeat(x, width, axis=0)


def _banned_ngrams(gen: jax.Array, t: jax.Array, n: int, vocab: int) -> jax.Array:
    """(N, V) bool: tokens that would complete, at position t, an n-gram already in gen[:, :t]."""
    rows, m = gen.shape
    if n < 1 or m < n:
        return jnp.zeros((rows, vocab), bool)
    if n == 1:
        seen = (jnp.arange(m)[None, :] < t)
        return jnp.zeros((rows, vocab), bool).at[jnp.arange(rows)[:, None], gen].max(seen)
    w = m - n + 1
    prefix = jax.lax.dynamic_slice(gen, (0, jnp.clip(t - n + 1, 0, m - n + 1)), (rows, n - 1))
    match = jnp.ones((rows, w), bool)
    for k in range(n - 1):
        match &= gen[:, k:k + w] == prefix[:, k:k + 1]
    match &= (jnp.arange(w)[None, :] <= t - n)
    nxt = gen[:, n - 1:n - 1 + w]
    return jnp.zeros((rows, vocab), bool).at[jnp.arange(rows)[:, None], nxt].max(match)


def process(scores: jax.Array, gen: jax.Array, t: jax.Array, cfg: Generation, eos_id: int) -> jax.Array:
    """The logits processors: eos banned before min_new_tokens, repeated n-grams banned."""
    if cfg.min_new_tokens:
        scores = scores.at[:, eos_id].set(jnp.where(t < cfg.min_new_tokens, NEG, scores[:, eos_id]))
    if cfg.no_repeat_ngram_size:
        scores = jnp.where(_banned_ngrams(gen, t, cfg.no_repeat_ngram_size, scores.shape[-1]), NEG, scores)
    return scores


def warp(logits: jax.Array, cfg: Generation) -> jax.Array:
    """Temperature, then top-k, then top-p (HF's warper order); at least one token survives."""
    logits = logits / cfg.temperature
    if cfg.top_k and cfg.top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, cfg.top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, NEG, logits)
    if cfg.top_p < 1.0:
        order = jnp.argsort(-logits, axis=-1)
        sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass strictly above each token
        keep_sorted = before < cfg.top_p
        keep = jnp.zeros_like(keep_sorted).at[jnp.arange(logits.shape[0])[:, None], order].set(keep_sorted)
        logits = jnp.where(keep, logits, NEG)
    return logits


def sample(next_logits: Callable, n_rows: int, cfg: Generation, eos_id: int, rng: jax.Array) -> jax.Array:
    """(n_rows, max_new_tokens) sampled tokens; each row independent, eos-filled after eos."""
    m = cfg.max_new_tokens
    gen0 = jnp.full((n_rows, m), eos_id, jnp.int32)

    def body(t, carry):
        gen, done, rng = carry
        rng, sub = jax.random.split(rng)
        logits = process(next_logits(gen, t).astype(jnp.float32), gen, t, cfg, eos_id)
        tok = jax.random.categorical(sub, warp(logits, cfg), axis=-1).astype(jnp.int32)
        tok = jnp.where(done, eos_id, tok)
        return gen.at[:, t].set(tok), done | (tok == eos_id), rng

    gen, _, _ = jax.lax.fori_loop(0, m, body, (gen0, jnp.zeros((n_rows,), bool), rng))
    return gen


def _lp(length: jax.Array, cfg: Generation) -> jax.Array:
    return jnp.asarray(length, jnp.float32) ** cfg.length_penalty


def _beam_step(next_logits: Callable, cfg: Generation, eos_id: int, t: jax.Array, carry: tuple) -> tuple:
    """One step of HF's beam search for every batch row; finished rows stay as they are."""
    seqs, scores, fin, fin_scores, done = carry
    b, k, m = seqs.shape
    logp = jax.nn.log_softmax(next_logits(seqs.reshape(b * k, m), t).astype(jnp.float32), axis=-1)
    logp = process(logp, seqs.reshape(b * k, m), t, cfg, eos_id)  # HF masks after log_softmax
    v = logp.shape[-1]
    cand = (scores[:, :, None] + logp.reshape(b, k, v)).reshape(b, k * v)
    vals, idx = jax.lax.top_k(cand, min(2 * k, k * v))
    beam, tok = idx // v, (idx % v).astype(jnp.int32)
    parent = jnp.take_along_axis(seqs, beam[:, :, None], axis=1)  # (b, 2k, m)
    grown = parent.at[:, :, t].set(tok)
    rank = jnp.arange(vals.shape[1])[None, :]
    is_eos = tok == eos_id
    # finished: eos candidates among the first k (HF skips eos ranked beyond num_beams)
    new_fin = jnp.where(is_eos & (rank < k), vals / _lp(t + 1, cfg), DEAD)
    all_fin = jnp.concatenate([fin_scores, new_fin], axis=1)
    top_fin, top_i = jax.lax.top_k(all_fin, k)
    fin_next = jnp.take_along_axis(jnp.concatenate([fin, grown], axis=1), top_i[:, :, None], axis=1)
    # running: the first k candidates that are not eos, in score order
    order = jnp.argsort(jnp.where(is_eos, rank + vals.shape[1], rank), axis=1)[:, :k]
    run_scores = jnp.take_along_axis(vals, order, axis=1)
    run_seqs = jnp.take_along_axis(grown, order[:, :, None], axis=1)
    n_fin = jnp.sum(top_fin > DEAD / 2, axis=1)
    stop = (n_fin >= k) & (jnp.min(top_fin, axis=1) >= jnp.max(run_scores, axis=1) / _lp(t + 1, cfg))
    keep = done[:, None]
    return (jnp.where(keep[:, :, None], seqs, run_seqs), jnp.where(keep, scores, run_scores),
            jnp.where(keep[:, :, None], fin, fin_next), jnp.where(keep, fin_scores, top_fin), done | stop)


def beam_search(next_logits: Callable, batch: int, cfg: Generation, eos_id: int) -> tuple[jax.Array, jax.Array]:
    """(batch, num_return_sequences, max_new_tokens) best hypotheses and their scores, best first."""
    k, m = cfg.num_beams, cfg.max_new_tokens
    seqs = jnp.full((batch, k, m), eos_id, jnp.int32)
    scores = jnp.tile(jnp.array([0.0] + [NEG] * (k - 1), jnp.float32), (batch, 1))  # only beam 0 starts
    fin = jnp.full((batch, k, m), eos_id, jnp.int32)
    fin_scores = jnp.full((batch, k), DEAD, jnp.float32)
    carry = (seqs, scores, fin, fin_scores, jnp.zeros((batch,), bool))
    seqs, scores, fin, fin_scores, done = jax.lax.fori_loop(
        0, m, lambda t, c: _beam_step(next_logits, cfg, eos_id, t, c), carry)
    # rows still open at max_new_tokens: their running beams count as hypotheses of length m
    open_scores = jnp.where(done[:, None], DEAD, scores / _lp(m, cfg))
    all_scores = jnp.concatenate([fin_scores, open_scores], axis=1)
    best, idx = jax.lax.top_k(all_scores, cfg.num_return_sequences)
    out = jnp.take_along_axis(jnp.concatenate([fin, seqs], axis=1), idx[:, :, None], axis=1)
    return out, best


def generate(next_logits: Callable, batch: int, cfg: Generation, eos_id: int, rng: jax.Array) -> jax.Array:
    """(batch, num_return_sequences, max_new_tokens): beams (greedy at 1 beam) or samples.

    next_logits sees batch * cfg.width rows, example-major (see `expand`)."""
    if cfg.do_sample:
        return sample(next_logits, batch * cfg.width, cfg, eos_id, rng).reshape(batch, cfg.width, -1)
    return beam_search(next_logits, batch, cfg, eos_id)[0]


__all__ = ["Generation", "beam_search", "expand", "generate", "process", "sample", "warp"]
