"""seq2seq: summarization (or any source -> target) with a BART-style encoder-decoder."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..flax_models.bart import shift_right
from .common import Recipe, masked_cross_entropy, pad_right, rouge_scores, sample_token, strip_after_eos

SOURCE_KEYS = ("source", "document", "article", "text", "input")
TARGET_KEYS = ("target", "summary", "highlights", "output")


def source_target(ex: dict) -> tuple[str, str]:
    src = next((ex[k] for k in SOURCE_KEYS if k in ex), None)
    if src is None:
        raise KeyError(f"seq2seq example needs one of {SOURCE_KEYS}; got {sorted(ex)}")
    return src, next((ex[k] for k in TARGET_KEYS if k in ex), "")


def make(model: Any, tokenizer: Any, max_source_length: int = 256, max_target_length: int = 64,
         start_token_id: int | None = None) -> Recipe:
    """The seq2seq recipe for a Flax encoder-decoder with encode/decode methods (bart)."""
    tok = tokenizer
    start = tok.eos_id if start_token_id is None else start_token_id

    def encode_source(examples):
        return pad_right([[tok.bos_id] + tok.encode(source_target(ex)[0]) + [tok.eos_id] for ex in examples],
                         max_source_length, tok.pad_id)

    def collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        ids, mask = encode_source(examples)
        labels, lmask = pad_right([[tok.bos_id] + tok.encode(source_target(ex)[1]) + [tok.eos_id] for ex in examples],
                                  max_target_length, tok.pad_id)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "label_mask": lmask}

    def pred_collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        ids, mask = encode_source(examples)
        return {"input_ids": ids, "attention_mask": mask}

    def loss_fn(rng, state, params, batch, is_training):
        dec_in = shift_right(batch["labels"], tok.pad_id, start)
        dec_mask = jnp.concatenate([jnp.ones_like(batch["label_mask"][:, :1]), batch["label_mask"][:, :-1]], axis=1)
        logits = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"], dec_in, dec_mask)
        return masked_cross_entropy(logits, batch["labels"], batch["label_mask"])

    def pred_fn(rng, params, batch):
        """Greedy decoding; the encoder runs once, the decoder recomputes its prefix each step."""
        enc = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"], method="encode")
        b = batch["input_ids"].shape[0]
        n = max_target_length
        ids = jnp.full((b, n + 1), tok.pad_id, jnp.int32).at[:, 0].set(start)
        done = jnp.zeros((b,), bool)

        def body(i, carry):
            ids, done = carry
            logits = model.apply({"params": params}, ids, enc, batch["attention_mask"], None, method="decode")[:, i]
            nxt = jnp.where(done, tok.eos_id, sample_token(rng, logits, 0.0, 0))
            return ids.at[:, i + 1].set(nxt), done | (nxt == tok.eos_id)

        ids, _ = jax.lax.fori_loop(0, n, body, (ids, done))
        return ids[:, 1:]

    def output_fn(batch_preds) -> list[str]:
        out = []
        for row in np.asarray(batch_preds):
            row = [int(t) for t in row]
            if row and row[0] == tok.bos_id:
                row = row[1:]
            out.append(tok.decode(strip_after_eos(row, tok.eos_id)))
        return out

    def eval_metric_fn(examples, preds) -> dict[str, float]:
        return rouge_scores(preds, [source_target(ex)[1] for ex in examples])

    return Recipe(collate_fn, loss_fn, pred_fn, output_fn, eval_metric_fn, pred_collate_fn=pred_collate_fn)
