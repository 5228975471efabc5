"""Building blocks shared by the Flax models (names follow HF so checkpoints map one to one)."""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

NEG_INF = -1e9  # finite: fully masked rows (left padding) must stay NaN-free


class RMSNorm(nn.Module):
    """LLaMA's RMSNorm: computed in float32, parameter named 'weight' as in HF."""

    eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("weight", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (w * x32).astype(self.dtype)


def dense(features: int, name: str, use_bias: bool, dtype: jnp.dtype) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, name=name, dtype=dtype, param_dtype=jnp.float32,
                    kernel_init=nn.initializers.normal(0.02))


def attention_bias(mask_q: Optional[jax.Array], mask_k: Optional[jax.Array], causal: bool, tq: int, tk: int) -> jax.Array:
    """Additive bias (B or 1, 1, Tq, Tk): 0 where attending is allowed, NEG_INF elsewhere."""
    allowed = jnp.ones((1, 1, tq, tk), dtype=bool)
    if causal:
        allowed = allowed & jnp.tril(jnp.ones((tq, tk), dtype=bool))[None, None]
    if mask_k is not None:
        allowed = allowed & mask_k[:, None, None, :].astype(bool)
    return jnp.where(allowed, 0.0, NEG_INF).astype(jnp.float32)


def dot_attention(q: jax.Array, k: jax.Array, v: jax.Array, bias: jax.Array, scale: float) -> jax.Array:
    """softmax(q k^T * scale + bias) v with q (B,Tq,H,D), k/v (B,Tk,H,D); softmax in float32."""
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) * scale + bias
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


def split_heads(x: jax.Array, heads: int) -> jax.Array:
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads)


def merge_heads(x: jax.Array) -> jax.Array:
    b, t, h, d = x.shape
    return x.reshape(b, t, h * d)
