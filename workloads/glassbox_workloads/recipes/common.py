"""What every recipe shares: the Recipe bundle, tokenizers, padding, cross-entropy, generation."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class Recipe:
    """Redco's three functions (plus the optional ones and recipe-owned training state).

    collate_fn(examples) -> dict of arrays; loss_fn(rng, state, params, batch, is_training) ->
    scalar; pred_fn(rng, params, batch) -> per-example outputs; output_fn(batch_preds) -> list;
    eval_metric_fn(examples, preds) -> dict. init_extra(params) / update_extra(extra, params) own
    extra state carried in TrainState.extra (a soft-Q target network); augment_fn(trainer, batch)
    adds host-side data before a step (on-policy samples and their rewards). add_params(params, rng)
    adds parameters the recipe's model has beyond the architecture's (a multiple-choice head).
    """

    collate_fn: Callable[[list], dict]
    loss_fn: Callable[..., jax.Array]
    pred_fn: Callable[..., Any]
    output_fn: Optional[Callable[[Any], list]] = None
    eval_metric_fn: Optional[Callable[[Sequence[Any], list], dict]] = None
    pred_collate_fn: Optional[Callable[[list], dict]] = None
    init_extra: Optional[Callable[[Any], Any]] = None
    update_extra: Optional[Callable[[Any, Any], Any]] = None
    augment_fn: Optional[Callable[[Any, dict], dict]] = None
    add_params: Optional[Callable[[Any, jax.Array], Any]] = None
    """(model params, rng) -> params with the recipe's own new ones (a multiple-choice head)."""
    expand_fn: Optional[Callable[[list, str], list]] = None
    """(examples, "train" | "eval") -> the examples the other functions see, applied once by the
    workload before batching (aspect-summarization: each (document, summary) pair as one example
    per aspect)."""
    facts: dict[str, Any] = field(default_factory=dict)
    """What the recipe read and built (an input's source and digest, counts of built examples):
    recorded in run.json and the manifest's final block."""


def resolve(ref: str) -> Callable:
    """'package.module:function' -> the function (imported inside the workload image)."""
    mod, sep, attr = ref.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"{ref!r} is not a module:function reference")
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable")
    return obj


# ---- tokenizers ----------------------------------------------------------------------------


class ByteTokenizer:
    """UTF-8 bytes shifted by 3 (0 pad, 1 bos, 2 eos): needs no training and no download."""

    pad_id, bos_id, eos_id = 0, 1, 2
    vocab_size = 259

    def encode(self, text: str) -> list[int]:
        return [b + 3 for b in text.encode("utf-8")]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) - 3 for i in ids if int(i) >= 3).decode("utf-8", errors="replace")

    def to_json(self) -> Optional[str]:
        return None


class HFTokenizer:
    """A tokenizers.Tokenizer (tokenizer.json from the store, e.g. one a PretrainRun trained)."""

    def __init__(self, json_str: str, pad_id: Optional[int] = None, bos_id: Optional[int] = None,
                 eos_id: Optional[int] = None):
        from tokenizers import Tokenizer

        self._json = json_str
        self.tok = Tokenizer.from_str(json_str)
        vocab = self.tok.get_vocab()

        def find(*names: str) -> Optional[int]:
            return next((vocab[n] for n in names if n in vocab), None)

        self.eos_id = eos_id if eos_id is not None else find("</s>", "<|endoftext|>", "<eos>", "[SEP]") or 0
        self.bos_id = bos_id if bos_id is not None else find("<s>", "<|endoftext|>", "<bos>", "[CLS]") or self.eos_id
        self.pad_id = pad_id if pad_id is not None else find("<pad>", "[PAD]") or self.eos_id
        self.vocab_size = self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def to_json(self) -> Optional[str]:
        return self._json


# ---- arrays --------------------------------------------------------------------------------


def pad_right(seqs: Sequence[Sequence[int]], length: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(seqs), length), pad, np.int32)
    mask = np.zeros((len(seqs), length), np.int32)
    for i, s in enumerate(seqs):
        s = list(s)[:length]
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return ids, mask


def pad_left(seqs: Sequence[Sequence[int]], length: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Left padding (keeping the last `length` tokens), so every prompt ends at the same column."""
    ids = np.full((len(seqs), length), pad, np.int32)
    mask = np.zeros((len(seqs), length), np.int32)
    for i, s in enumerate(seqs):
        s = list(s)[-length:] if length else []
        if s:
            ids[i, length - len(s):] = s
            mask[i, length - len(s):] = 1
    return ids, mask


def masked_cross_entropy(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean token cross-entropy over positions where mask is 1."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    mask = mask.astype(jnp.float32)
    return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def sample_token(rng: jax.Array, logits: jax.Array, temperature: float, top_k: int) -> jax.Array:
    """Greedy when temperature is 0; else sampling from the top_k logits (0 = all)."""
    if temperature <= 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -1e9, logits)
    return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


def generate_decoder(apply_fn: Callable, params: Any, prompt_ids: jax.Array, prompt_mask: jax.Array,
                     max_new_tokens: int, rng: jax.Array, eos_id: int, temperature: float = 0.0,
                     top_k: int = 0) -> jax.Array:
    """New tokens (B, max_new_tokens) after left-padded prompts; after eos everything is eos.

    Recomputes the full prefix each step (no KV cache): simple and exact, fine for the short
    generations of evaluation and soft-Q rollouts.
    """
    b, p = prompt_ids.shape
    ids = jnp.concatenate([prompt_ids, jnp.full((b, max_new_tokens), eos_id, jnp.int32)], axis=1)
    mask = jnp.concatenate([prompt_mask, jnp.zeros((b, max_new_tokens), jnp.int32)], axis=1)
    done = jnp.zeros((b,), bool)

    def body(i, carry):
        ids, mask, done, rng = carry
        rng, sub = jax.random.split(rng)
        logits = apply_fn(params, ids, mask)[:, p + i - 1]
        tok = jnp.where(done, eos_id, sample_token(sub, logits, temperature, top_k))
        ids = jax.lax.dynamic_update_slice(ids, tok[:, None], (0, p + i))
        mask = jax.lax.dynamic_update_slice(mask, jnp.ones((b, 1), jnp.int32), (0, p + i))
        return ids, mask, done | (tok == eos_id), rng

    ids, _, _, _ = jax.lax.fori_loop(0, max_new_tokens, body, (ids, mask, done, rng))
    return ids[:, p:]


def decoded_texts(tok: Any, batch_preds: Any, drop_bos: bool = False) -> list:
    """(B, T) token rows -> one string each; (B, n, T) -> a list of n strings each."""
    arr = np.asarray(batch_preds)
    if arr.ndim == 3:
        return [decoded_texts(tok, rows, drop_bos) for rows in arr]
    out = []
    for row in arr:
        row = [int(t) for t in row]
        if drop_bos and row and row[0] == tok.bos_id:
            row = row[1:]
        out.append(tok.decode(strip_after_eos(row, tok.eos_id)))
    return out


def strip_after_eos(ids: Sequence[int], eos_id: int) -> list[int]:
    out = []
    for i in ids:
        if int(i) == eos_id:
            break
        out.append(int(i))
    return out


# ---- metrics ---------------------------------------------------------------------------------


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_scores(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 on lower-cased whitespace tokens (no stemming)."""

    def f1(p: float, r: float) -> float:
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def ngrams(t: list[str], n: int) -> dict:
        out: dict = {}
        for i in range(len(t) - n + 1):
            g = tuple(t[i : i + n])
            out[g] = out.get(g, 0) + 1
        return out

    tot = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for p, r in zip(preds, refs):
        pt, rt = p.lower().split(), r.lower().split()
        for n, k in ((1, "rouge1"), (2, "rouge2")):
            pg, rg = ngrams(pt, n), ngrams(rt, n)
            hit = sum(min(c, rg.get(g, 0)) for g, c in pg.items())
            tot[k] += f1(hit / max(sum(pg.values()), 1), hit / max(sum(rg.values()), 1))
        lcs = _lcs(pt, rt)
        tot["rougeL"] += f1(lcs / max(len(pt), 1), lcs / max(len(rt), 1))
    n = max(len(preds), 1)
    return {k: v / n for k, v in tot.items()}


def load_tokenizer_json(data: bytes) -> HFTokenizer:
    json.loads(data)  # fail early with a clear error on a corrupt file
    return HFTokenizer(data.decode("utf-8"))
