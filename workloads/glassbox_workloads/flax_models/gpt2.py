"""A GPT-2-style decoder (pre-LayerNorm, learned positions, fused qkv, gelu_new) in Flax.

Names mirror HF's GPT2LMHeadModel (transformer/h_N/attn/c_attn/kernel, ...). HF's GPT-2 uses
Conv1D, whose weights are already (in, out): they load without a transpose.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from .config import ModelConfig
from .layers import attention_bias, dense, dot_attention, merge_heads, split_heads
from .llama import default_positions


class GPT2Attention(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        qkv = dense(3 * c.hidden_size, "c_attn", True, dt)(x)
        q, k, v = (split_heads(t, c.num_heads) for t in jnp.split(qkv, 3, axis=-1))
        a = dot_attention(q, k, v, bias, c.head_dim**-0.5)
        return dense(c.hidden_size, "c_proj", True, dt)(merge_heads(a))


class GPT2MLP(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        h = nn.gelu(dense(c.intermediate_size, "c_fc", True, dt)(x), approximate=True)  # HF gelu_new
        return dense(c.hidden_size, "c_proj", True, dt)(h)


class GPT2Block(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        x = x + GPT2Attention(c, name="attn")(nn.LayerNorm(c.norm_eps, dtype=dt, name="ln_1")(x), bias)
        return x + GPT2MLP(c, name="mlp")(nn.LayerNorm(c.norm_eps, dtype=dt, name="ln_2")(x))


class GPT2LMHeadModel(nn.Module):
    """Logits (B, T, vocab) in float32; the head is tied to wte unless tie_word_embeddings is off."""

    config: ModelConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, attention_mask: Optional[jax.Array] = None,
                 position_ids: Optional[jax.Array] = None) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        tr = _Transformer(c, name="transformer")
        h, wte = tr(input_ids, attention_mask, position_ids)
        if c.tie_word_embeddings:
            return wte.attend(h).astype(jnp.float32)
        return dense(c.vocab_size, "lm_head", False, dt)(h).astype(jnp.float32)


class _Transformer(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, input_ids, attention_mask, position_ids, token_type_ids=None):
        c = self.config
        dt = jnp.dtype(c.dtype)
        init = nn.initializers.normal(0.02)
        wte = nn.Embed(c.vocab_size, c.hidden_size, name="wte", dtype=dt, embedding_init=init)
        wpe = nn.Embed(c.max_position_embeddings, c.hidden_size, name="wpe", dtype=dt, embedding_init=init)
        if position_ids is None:
            position_ids = default_positions(input_ids, attention_mask)
        x = wte(input_ids) + wpe(position_ids)
        if token_type_ids is not None:  # HF GPT-2 embeds token types with the word embeddings
            x = x + wte(token_type_ids)
        t = input_ids.shape[1]
        bias = attention_bias(attention_mask, attention_mask, True, t, t)
        for i in range(c.num_layers):
            x = GPT2Block(c, name=f"h_{i}")(x, bias)
        return nn.LayerNorm(c.norm_eps, dtype=dt, name="ln_f")(x), wte


class GPT2DoubleHeadsModel(nn.Module):
    """HF's GPT2DoubleHeadsModel: the tied LM head plus a multiple-choice head.

    Inputs are (B, C, T) for C choices; returns (lm_logits (B, C, T, vocab), mc_logits (B, C)).
    The multiple-choice head is HF's SequenceSummary with summary_type cls_index: a dense layer
    to one logit, read at mc_token_ids (B, C) (the eos of each choice).
    """

    config: ModelConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, attention_mask: Optional[jax.Array] = None,
                 token_type_ids: Optional[jax.Array] = None, mc_token_ids: Optional[jax.Array] = None):
        c = self.config
        b, n, t = input_ids.shape
        flat = lambda x: None if x is None else x.reshape(b * n, t)  # noqa: E731
        h, wte = _Transformer(c, name="transformer")(flat(input_ids), flat(attention_mask), None, flat(token_type_ids))
        lm = wte.attend(h).astype(jnp.float32).reshape(b, n, t, -1)
        idx = jnp.zeros((b * n,), jnp.int32) if mc_token_ids is None else mc_token_ids.reshape(b * n)
        picked = jnp.take_along_axis(h, idx[:, None, None], axis=1)[:, 0]
        mc = dense(1, "multiple_choice_head", True, jnp.dtype(c.dtype))(picked)
        return lm, mc.astype(jnp.float32).reshape(b, n)
