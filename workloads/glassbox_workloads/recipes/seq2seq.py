"""seq2seq: summarization (or any source -> target) with a BART-style encoder-decoder."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ..flax_models.bart import shift_right
from .common import Recipe, decoded_texts, masked_cross_entropy, pad_right, rouge_scores
from .decoding import Generation, expand, generate

SOURCE_KEYS = ("source", "document", "article", "text", "input")
TARGET_KEYS = ("target", "summary", "highlights", "output")


def source_target(ex: dict) -> tuple[str, str]:
    src = next((ex[k] for k in SOURCE_KEYS if k in ex), None)
    if src is None:
        raise KeyError(f"seq2seq example needs one of {SOURCE_KEYS}; got {sorted(ex)}")
    return src, next((ex[k] for k in TARGET_KEYS if k in ex), "")


def make(model: Any, tokenizer: Any, max_source_length: int = 256, max_target_length: int = 64,
         start_token_id: int | None = None, generation: Generation | None = None) -> Recipe:
    """The seq2seq recipe for a Flax encoder-decoder with encode/decode methods (bart).

    Predictions follow `generation` (greedy over max_target_length tokens by default): one string
    per example, or a list of strings when it returns several sequences."""
    tok = tokenizer
    start = tok.eos_id if start_token_id is None else start_token_id
    gen_cfg = generation or Generation(max_new_tokens=max_target_length)

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
        """Decoding per gen_cfg; the encoder runs once, the decoder recomputes its prefix each step."""
        w = gen_cfg.width
        enc = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"], method="encode")
        enc, enc_mask = expand(enc, w), expand(batch["attention_mask"], w)

        def next_logits(gen, t):
            dec_in = jnp.concatenate([jnp.full((gen.shape[0], 1), start, jnp.int32), gen[:, :-1]], axis=1)
            return model.apply({"params": params}, dec_in, enc, enc_mask, None, method="decode")[:, t]

        out = generate(next_logits, batch["input_ids"].shape[0], gen_cfg, tok.eos_id, rng)
        return out[:, 0] if gen_cfg.num_return_sequences == 1 else out

    def output_fn(batch_preds) -> list:
        return decoded_texts(tok, batch_preds, drop_bos=True)

    def eval_metric_fn(examples, preds) -> dict[str, float]:
        preds = [p[0] if isinstance(p, list) else p for p in preds]  # several sequences: the best one
        return rouge_scores(preds, [source_target(ex)[1] for ex in examples])

    return Recipe(collate_fn, loss_fn, pred_fn, output_fn, eval_metric_fn, pred_collate_fn=pred_collate_fn)
