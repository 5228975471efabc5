"""A LLaMA-style decoder (RMSNorm, rotary positions, SwiGLU, grouped-query attention) in Flax.

Parameter names mirror HF's LlamaForCausalLM (model/layers_N/self_attn/q_proj/kernel, ...), so a
torch checkpoint maps one to one (kernels transposed).
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from .config import ModelConfig
from .layers import RMSNorm, attention_bias, dense, dot_attention, merge_heads, split_heads


def rope_tables(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """cos/sin of shape (B, T, 1, head_dim), HF's 'default' rope (two halves, not interleaved)."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq
    emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
    return jnp.cos(emb), jnp.sin(emb)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return (x.astype(jnp.float32) * cos + rotated.astype(jnp.float32) * sin).astype(x.dtype)


class LlamaAttention(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array, bias: jax.Array) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        hd = c.head_dim
        q = split_heads(dense(c.num_heads * hd, "q_proj", False, dt)(x), c.num_heads)
        k = split_heads(dense(c.kv_heads * hd, "k_proj", False, dt)(x), c.kv_heads)
        v = split_heads(dense(c.kv_heads * hd, "v_proj", False, dt)(x), c.kv_heads)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = c.num_heads // c.kv_heads
        if rep > 1:  # query head h reads kv head h // rep, as HF's repeat_kv
            k, v = jnp.repeat(k, rep, axis=2), jnp.repeat(v, rep, axis=2)
        out = dot_attention(q, k, v, bias, hd**-0.5)
        return dense(c.hidden_size, "o_proj", False, dt)(merge_heads(out))


class LlamaMLP(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        gate = dense(c.intermediate_size, "gate_proj", False, dt)(x)
        up = dense(c.intermediate_size, "up_proj", False, dt)(x)
        return dense(c.hidden_size, "down_proj", False, dt)(nn.silu(gate) * up)


class LlamaBlock(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array, bias: jax.Array) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        h = RMSNorm(c.norm_eps, dt, name="input_layernorm")(x)
        x = x + LlamaAttention(c, name="self_attn")(h, cos, sin, bias)
        h = RMSNorm(c.norm_eps, dt, name="post_attention_layernorm")(x)
        return x + LlamaMLP(c, name="mlp")(h)


class LlamaModel(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, attention_mask: Optional[jax.Array], position_ids: Optional[jax.Array]) -> tuple[jax.Array, nn.Embed]:
        c = self.config
        dt = jnp.dtype(c.dtype)
        embed = nn.Embed(c.vocab_size, c.hidden_size, name="embed_tokens", dtype=dt, param_dtype=jnp.float32,
                         embedding_init=nn.initializers.normal(0.02))
        x = embed(input_ids)
        t = input_ids.shape[1]
        if position_ids is None:
            position_ids = default_positions(input_ids, attention_mask)
        cos, sin = rope_tables(position_ids, c.head_dim, c.rope_theta)
        bias = attention_bias(attention_mask, attention_mask, True, t, t)
        for i in range(c.num_layers):
            x = LlamaBlock(c, name=f"layers_{i}")(x, cos, sin, bias)
        return RMSNorm(c.norm_eps, dt, name="norm")(x), embed


def default_positions(input_ids: jax.Array, attention_mask: Optional[jax.Array]) -> jax.Array:
    """0, 1, 2, ... counting only real tokens, so left-padded prompts get the same positions."""
    if attention_mask is None:
        return jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
    return jnp.maximum(jnp.cumsum(attention_mask, axis=-1) - 1, 0)


class LlamaForCausalLM(nn.Module):
    """Logits (B, T, vocab) in float32."""

    config: ModelConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, attention_mask: Optional[jax.Array] = None,
                 position_ids: Optional[jax.Array] = None) -> jax.Array:
        c = self.config
        h, embed = LlamaModel(c, name="model")(input_ids, attention_mask, position_ids)
        if c.tie_word_embeddings:
            return embed.attend(h).astype(jnp.float32)
        return dense(c.vocab_size, "lm_head", False, jnp.dtype(c.dtype))(h).astype(jnp.float32)
