"""soft-q: soft Q-learning for text generation with path consistency (SEEDS.md section 7).

The LM's logits are soft Q-values: V = logsumexp(Q), pi = softmax(Q), A = Q - V = log pi. The
reward r arrives only after the last token. A target network (Polyak-averaged every step) gives
the V's that the online A's are regressed onto:
- single-step PCL: A(s_t, a_t) -> V_tgt(s_{t+1}) - V_tgt(s_t) for t < T, and r - V_tgt(s_T) at T;
- multi-step PCL: sum_{l >= t} A(s_l, a_l) -> r - V_tgt(s_t).
Each batch mixes off-policy sequences (the dataset targets) and on-policy samples of the current
model (top-k), each scored by a pluggable reward function `module:function`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .common import Recipe, generate_decoder, pad_left, pad_right, strip_after_eos

RewardFn = Callable[[Sequence[str], Sequence[str]], Sequence[float]]


# ---- the pure pieces (property-tested) ------------------------------------------------------


def shape_reward(raw: jax.Array | np.ndarray, low: float, high: float):
    """Linear map of a raw reward in [0, 100] onto [low, high] (0 -> low, 100 -> high)."""
    return low + (high - low) * raw / 100.0


def polyak(target: Any, online: Any, tau: float) -> Any:
    """tau * online + (1 - tau) * target, leaf by leaf (tau = 1 copies the online network)."""
    if tau == 1.0:
        return jax.tree_util.tree_map(lambda o: o, online)
    return jax.tree_util.tree_map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def soft_values(logits: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(Q(s_t, a_t), V(s_t), A(s_t, a_t)) for action-aligned logits (B, T, V) and actions (B, T)."""
    logits = logits.astype(jnp.float32)
    q = jnp.take_along_axis(logits, actions[..., None], axis=-1)[..., 0]
    v = jax.nn.logsumexp(logits, axis=-1)
    return q, v, q - v


def masked_reverse_cumsum(x: jax.Array, mask: jax.Array) -> jax.Array:
    """out[t] = sum_{l >= t} x[l] * mask[l] along axis 1 (zero where mask is 0)."""
    xm = x * mask
    return jnp.flip(jnp.cumsum(jnp.flip(xm, axis=1), axis=1), axis=1) * mask


def _last_mask(mask: jax.Array) -> jax.Array:
    nxt = jnp.concatenate([mask[:, 1:], jnp.zeros_like(mask[:, :1])], axis=1)
    return mask * (1 - nxt)


def single_step_pcl(logits: jax.Array, target_logits: jax.Array, actions: jax.Array, mask: jax.Array,
                    reward: jax.Array) -> jax.Array:
    """Mean over valid steps of (A_t - (V_tgt(s_{t+1}) - V_tgt(s_t)))^2, with r - V_tgt(s_T) at the end."""
    mask = mask.astype(jnp.float32)
    _, _, a = soft_values(logits, actions)
    _, v_t, _ = soft_values(jax.lax.stop_gradient(target_logits), actions)
    v_next = jnp.concatenate([v_t[:, 1:], jnp.zeros_like(v_t[:, :1])], axis=1)
    last = _last_mask(mask)
    target = jnp.where(last > 0, reward[:, None] - v_t, v_next - v_t)
    err = (a - jax.lax.stop_gradient(target)) ** 2 * mask
    return jnp.sum(err) / jnp.maximum(jnp.sum(mask), 1.0)


def multi_step_pcl(logits: jax.Array, target_logits: jax.Array, actions: jax.Array, mask: jax.Array,
                   reward: jax.Array) -> jax.Array:
    """Mean over valid steps of (sum_{l >= t} A_l - (r - V_tgt(s_t)))^2."""
    mask = mask.astype(jnp.float32)
    _, _, a = soft_values(logits, actions)
    _, v_t, _ = soft_values(jax.lax.stop_gradient(target_logits), actions)
    err = (masked_reverse_cumsum(a, mask) - jax.lax.stop_gradient(reward[:, None] - v_t)) ** 2 * mask
    return jnp.sum(err) / jnp.maximum(jnp.sum(mask), 1.0)


def pcl_loss(logits, target_logits, actions, mask, reward, loss_type: str = "both") -> jax.Array:
    """single | multi | both (the average of the two, the default of the paper)."""
    if loss_type == "single":
        return single_step_pcl(logits, target_logits, actions, mask, reward)
    if loss_type == "multi":
        return multi_step_pcl(logits, target_logits, actions, mask, reward)
    if loss_type == "both":
        return 0.5 * (single_step_pcl(logits, target_logits, actions, mask, reward)
                      + multi_step_pcl(logits, target_logits, actions, mask, reward))
    raise ValueError(f"loss_type {loss_type!r}: single, multi or both")


# ---- the recipe ----------------------------------------------------------------------------


def make(apply_fn: Callable, tokenizer: Any, reward_fn: RewardFn, *, max_prompt_length: int = 32,
         max_new_tokens: int = 32, tau: float = 0.001, mix: float = 0.5, reward_min: float = -50.0,
         reward_max: float = 50.0, top_k: int = 50, loss_type: str = "both") -> Recipe:
    """Soft-Q recipe for a decoder apply_fn(params, ids, mask) -> logits.

    Examples: {"prompt"?: str, "target": str}. `mix` is the weight of the on-policy half (0 =
    off-policy only, 1 = on-policy only). reward_fn(prompts, outputs) returns raw rewards in
    [0, 100], shaped onto [reward_min, reward_max].
    """
    tok = tokenizer
    if not 0.0 <= mix <= 1.0:
        raise ValueError("mix must be within [0, 1]")

    def rewards(prompts: Sequence[str], outputs: Sequence[str]) -> np.ndarray:
        raw = np.asarray(reward_fn(list(prompts), list(outputs)), dtype=np.float32)
        return shape_reward(raw, reward_min, reward_max).astype(np.float32)

    def collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        prompts = [ex.get("prompt", ex.get("source", "")) for ex in examples]
        targets = [ex.get("target", ex.get("output", "")) for ex in examples]
        p_ids, p_mask = pad_left([[tok.bos_id] + tok.encode(p) for p in prompts], max_prompt_length, tok.pad_id)
        t_ids, t_mask = pad_right([tok.encode(t) + [tok.eos_id] for t in targets], max_new_tokens, tok.eos_id)
        return {"prompt_ids": p_ids, "prompt_mask": p_mask, "off_ids": t_ids, "off_mask": t_mask,
                "off_reward": rewards(prompts, targets)}

    def pred_collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        b = collate_fn(examples)
        return {"prompt_ids": b["prompt_ids"], "prompt_mask": b["prompt_mask"]}

    def seq_loss(params, target_params, batch, ids, mask, reward):
        p = batch["prompt_ids"].shape[1]
        full = jnp.concatenate([batch["prompt_ids"], ids], axis=1)
        full_mask = jnp.concatenate([batch["prompt_mask"], mask], axis=1)
        logits = apply_fn(params, full, full_mask)[:, p - 1 : -1]
        t_logits = apply_fn(target_params, full, full_mask)[:, p - 1 : -1]
        return pcl_loss(logits, t_logits, ids, mask, reward, loss_type)

    def loss_fn(rng, state, params, batch, is_training):
        target = state.extra["target"] if state is not None and state.extra is not None else params
        off = seq_loss(params, target, batch, batch["off_ids"], batch["off_mask"], batch["off_reward"])
        if "on_ids" not in batch or mix == 0.0:
            return off
        on = seq_loss(params, target, batch, batch["on_ids"], batch["on_mask"], batch["on_reward"])
        return (1.0 - mix) * off + mix * on

    def sample_fn(rng, params, batch):
        return generate_decoder(apply_fn, params, batch["prompt_ids"], batch["prompt_mask"], max_new_tokens,
                                rng, tok.eos_id, temperature=1.0, top_k=top_k)

    def pred_fn(rng, params, batch):
        return generate_decoder(apply_fn, params, batch["prompt_ids"], batch["prompt_mask"], max_new_tokens,
                                rng, tok.eos_id)

    def decode(rows: np.ndarray) -> list[str]:
        return decode_rows(tok, rows)

    augment_fn = OnPolicySamples(sample_fn, tok, rewards) if mix > 0.0 else _unchanged

    def output_fn(batch_preds) -> list[str]:
        return decode(batch_preds)

    def eval_metric_fn(examples, preds) -> dict[str, float]:
        prompts = [ex.get("prompt", ex.get("source", "")) for ex in examples]
        raw = np.asarray(reward_fn(prompts, list(preds)), dtype=np.float64)
        return {"reward": float(raw.mean()) if raw.size else 0.0}

    return Recipe(
        collate_fn, loss_fn, pred_fn, output_fn, eval_metric_fn, pred_collate_fn=pred_collate_fn,
        init_extra=lambda params: {"target": jax.tree_util.tree_map(jnp.array, params)},
        update_extra=lambda extra, params: {"target": polyak(extra["target"], params, tau)},
        augment_fn=augment_fn,
    )


def decode_rows(tok: Any, rows: np.ndarray) -> list[str]:
    """Generated token rows as text, each cut after its first eos."""
    return [tok.decode(strip_after_eos(r, tok.eos_id)) for r in np.asarray(rows)]


def action_mask(rows: np.ndarray, eos_id: int) -> np.ndarray:
    """1 up to and including the first eos (the eos is an action too)."""
    rows = np.asarray(rows)
    is_eos = rows == eos_id
    before = np.cumsum(is_eos, axis=1) - is_eos  # eos seen strictly before t
    return (before == 0).astype(np.int32)


def _unchanged(trainer: Any, batch: dict) -> dict:
    return batch


class OnPolicySamples:
    """augment_fn: add the current model's samples and their rewards (host side, before the step)."""

    def __init__(self, sample_fn: Callable, tok: Any, rewards: Callable[[Sequence[str], Sequence[str]], np.ndarray]):
        self.sample_fn, self.tok, self.rewards = sample_fn, tok, rewards
        self.jitted: Optional[Callable] = None

    def __call__(self, trainer: Any, batch: dict) -> dict:
        d, tok = trainer.deployer, self.tok
        if self.jitted is None:
            pb = {k: batch[k] for k in ("prompt_ids", "prompt_mask")}
            self.jitted = jax.jit(self.sample_fn, in_shardings=(
                d.replicated, trainer.state_shardings.params, {k: d.data_sharding(2) for k in pb}))
        pb = d.shard_batch({k: batch[k] for k in ("prompt_ids", "prompt_mask")})
        rows = np.asarray(_host(self.jitted(d.gen_rng(), trainer.state.params, pb)))
        prompts = [tok.decode([t for t in r if t != tok.bos_id]) for r in np.asarray(batch["prompt_ids"])]
        out = dict(batch)
        out["on_ids"] = rows.astype(np.int32)
        out["on_mask"] = action_mask(rows, tok.eos_id)
        out["on_reward"] = self.rewards(prompts, decode_rows(tok, rows))
        return out


def _host(x: Any) -> Any:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(x, tiled=True)
    return jax.device_get(x)


def make_sampler(apply_fn: Callable, tokenizer: Any, max_new_tokens: int, top_k: int = 0) -> Callable:
    """sample(rng, params, prompt_ids, prompt_mask) -> tokens, temperature 1 (for measuring rewards)."""

    def sample(rng, params, prompt_ids, prompt_mask):
        return generate_decoder(apply_fn, params, prompt_ids, prompt_mask, max_new_tokens, rng,
                                tokenizer.eos_id, temperature=1.0, top_k=top_k)

    return jax.jit(sample)


__all__ = ["make", "make_sampler", "masked_reverse_cumsum", "multi_step_pcl", "pcl_loss", "polyak",
           "shape_reward", "single_step_pcl", "soft_values"]
