"""causal-lm: instruction tuning of a decoder (llama / gpt2); loss on the response tokens only.

Examples: {"instruction", "input"?, "output"} (Alpaca-style), {"prompt", "response"}, or {"text"}
(plain language modelling, loss on every token).
"""

from __future__ import annotations

from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from .common import Recipe, decoded_texts, masked_cross_entropy, pad_left, pad_right, rouge_scores
from .decoding import Generation, expand, generate

TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"
TEMPLATE_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"


def prompt_and_response(ex: dict) -> tuple[str, str]:
    """The prompt text and the response text of an example."""
    if "instruction" in ex:
        tpl = TEMPLATE_INPUT if ex.get("input") else TEMPLATE
        return tpl.format(instruction=ex["instruction"], input=ex.get("input", "")), ex.get("output", "")
    if "prompt" in ex:
        return ex["prompt"], ex.get("response", ex.get("completion", ""))
    if "text" in ex:
        return "", ex["text"]
    raise KeyError(f"causal-lm example needs instruction/output, prompt/response or text; got {sorted(ex)}")


def make(apply_fn: Callable, tokenizer: Any, max_length: int = 256, max_new_tokens: int = 64,
         max_prompt_length: int | None = None, generation: Generation | None = None) -> Recipe:
    """The causal-lm recipe for a decoder whose apply_fn(params, ids, mask) returns logits.

    Predictions follow `generation` (greedy over max_new_tokens by default)."""
    tok = tokenizer
    gen_cfg = generation or Generation(max_new_tokens=max_new_tokens)
    max_prompt = max_prompt_length or max_length

    def collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        seqs, masks = [], []
        for ex in examples:
            prompt, response = prompt_and_response(ex)
            p = [tok.bos_id] + tok.encode(prompt)
            r = tok.encode(response) + [tok.eos_id]
            seqs.append(p + r)
            # loss_mask[t] = 1 when token t+1 is a response token (predicted from position t)
            masks.append([0] * (len(p) - 1) + [1] * len(r) + [0])
        ids, attn = pad_right(seqs, max_length, tok.pad_id)
        loss_mask, _ = pad_right(masks, max_length, 0)
        return {"input_ids": ids, "attention_mask": attn, "loss_mask": loss_mask}

    def pred_collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        prompts = [[tok.bos_id] + tok.encode(prompt_and_response(ex)[0]) for ex in examples]
        ids, mask = pad_left(prompts, max_prompt, tok.pad_id)
        return {"prompt_ids": ids, "prompt_mask": mask}

    def loss_fn(rng, state, params, batch, is_training):
        logits = apply_fn(params, batch["input_ids"], batch["attention_mask"])
        return masked_cross_entropy(logits[:, :-1], batch["input_ids"][:, 1:], batch["loss_mask"][:, :-1])

    def pred_fn(rng, params, batch):
        out = generate(prompted_logits(apply_fn, params, batch["prompt_ids"], batch["prompt_mask"], gen_cfg),
                       batch["prompt_ids"].shape[0], gen_cfg, tok.eos_id, rng)
        return out[:, 0] if gen_cfg.num_return_sequences == 1 else out

    def output_fn(batch_preds) -> list:
        return decoded_texts(tok, batch_preds)

    def eval_metric_fn(examples, preds) -> dict[str, float]:
        preds = [p[0] if isinstance(p, list) else p for p in preds]  # several sequences: the best one
        refs = [prompt_and_response(ex)[1] for ex in examples]
        exact = float(np.mean([p.strip() == r.strip() for p, r in zip(preds, refs)])) if refs else 0.0
        return {**rouge_scores(preds, refs), "exact_match": exact}

    return Recipe(collate_fn, loss_fn, pred_fn, output_fn, eval_metric_fn, pred_collate_fn=pred_collate_fn)


def prompted_logits(apply_fn: Callable, params: Any, prompt_ids, prompt_mask, cfg: Generation) -> Callable:
    """next_logits for `decoding`: left-padded prompts (repeated per beam/sample) then the new tokens.

    Recomputes the whole prefix each step (no KV cache); causal attention makes the columns not yet
    generated irrelevant to the logits read."""
    ids, mask = expand(prompt_ids, cfg.width), expand(prompt_mask, cfg.width)
    p = ids.shape[1]

    def next_logits(gen, t):
        full = jnp.concatenate([ids, gen], axis=1)
        full_mask = jnp.concatenate([mask, jnp.ones_like(gen)], axis=1)
        return apply_fn(params, full, full_mask)[:, p - 1 + t]

    return next_logits


def decoder_apply(model) -> Callable:
    """apply_fn(params, ids, mask) -> logits for a Flax decoder module."""

    def apply_fn(params, ids, mask):
        return model.apply({"params": params}, ids, mask)

    return apply_fn


__all__ = ["make", "decoder_apply", "prompt_and_response", "prompted_logits"]
