"""A BART-style encoder-decoder (post-LayerNorm, learned positions with offset 2) in Flax.

Names mirror HF's BartForConditionalGeneration (model/encoder/layers_N/self_attn/q_proj/kernel,
model/shared/embedding, final_logits_bias), so torch checkpoints map one to one.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from .config import ModelConfig
from .layers import attention_bias, dense, dot_attention, merge_heads, split_heads

POSITION_OFFSET = 2  # HF BartLearnedPositionalEmbedding reserves two rows


class BartAttention(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, kv: jax.Array, bias: jax.Array) -> jax.Array:
        c = self.config
        dt = jnp.dtype(c.dtype)
        d, h = c.hidden_size, c.num_heads
        q = split_heads(dense(d, "q_proj", True, dt)(x), h)
        k = split_heads(dense(d, "k_proj", True, dt)(kv), h)
        v = split_heads(dense(d, "v_proj", True, dt)(kv), h)
        return dense(d, "out_proj", True, dt)(merge_heads(dot_attention(q, k, v, bias, c.head_dim**-0.5)))


class BartLayer(nn.Module):
    config: ModelConfig
    decoder: bool = False

    @nn.compact
    def __call__(self, x, self_bias, enc=None, cross_bias=None):
        c = self.config
        dt = jnp.dtype(c.dtype)

        def ln(name):
            return nn.LayerNorm(c.norm_eps, dtype=dt, name=name)

        x = ln("self_attn_layer_norm")(x + BartAttention(c, name="self_attn")(x, x, self_bias))
        if self.decoder:
            x = ln("encoder_attn_layer_norm")(x + BartAttention(c, name="encoder_attn")(x, enc, cross_bias))
        h = nn.gelu(dense(c.intermediate_size, "fc1", True, dt)(x), approximate=False)
        return ln("final_layer_norm")(x + dense(c.hidden_size, "fc2", True, dt)(h))


class BartStack(nn.Module):
    """Encoder (decoder=False) or decoder stack; the token embedding is shared and passed in."""

    config: ModelConfig
    decoder: bool = False

    @nn.compact
    def __call__(self, ids, mask, embed: nn.Embed, enc=None, enc_mask=None):
        c = self.config
        dt = jnp.dtype(c.dtype)
        pos = nn.Embed(c.max_position_embeddings + POSITION_OFFSET, c.hidden_size, name="embed_positions",
                       dtype=dt, embedding_init=nn.initializers.normal(0.02))
        t = ids.shape[1]
        scale = c.hidden_size**0.5 if c.scale_embedding else 1.0
        x = embed(ids) * scale + pos(jnp.arange(t)[None] + POSITION_OFFSET)
        x = nn.LayerNorm(c.norm_eps, dtype=dt, name="layernorm_embedding")(x)
        self_bias = attention_bias(mask, mask, self.decoder, t, t)
        cross_bias = attention_bias(None, enc_mask, False, t, enc.shape[1]) if self.decoder else None
        for i in range(c.num_layers):
            x = BartLayer(c, self.decoder, name=f"layers_{i}")(x, self_bias, enc, cross_bias)
        return x


class BartModel(nn.Module):
    config: ModelConfig

    def setup(self) -> None:
        c = self.config
        self.shared = nn.Embed(c.vocab_size, c.hidden_size, dtype=jnp.dtype(c.dtype),
                               embedding_init=nn.initializers.normal(0.02))
        self.encoder = BartStack(c, False)
        self.decoder = BartStack(c, True)

    def encode(self, input_ids, attention_mask):
        return self.encoder(input_ids, attention_mask, self.shared)

    def decode(self, decoder_input_ids, decoder_attention_mask, encoder_hidden, attention_mask):
        return self.decoder(decoder_input_ids, decoder_attention_mask, self.shared, encoder_hidden, attention_mask)

    def __call__(self, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask):
        enc = self.encode(input_ids, attention_mask)
        return self.decode(decoder_input_ids, decoder_attention_mask, enc, attention_mask)


class BartForConditionalGeneration(nn.Module):
    """Logits (B, T_dec, vocab) in float32; `encode` and `decode` for generation."""

    config: ModelConfig

    def setup(self) -> None:
        c = self.config
        self.model = BartModel(c)
        self.final_logits_bias = self.param("final_logits_bias", nn.initializers.zeros, (c.vocab_size,), jnp.float32)
        if not c.tie_word_embeddings:
            self.lm_head = dense(c.vocab_size, "lm_head", False, jnp.dtype(c.dtype))

    def _logits(self, h: jax.Array) -> jax.Array:
        if self.config.tie_word_embeddings:
            out = self.model.shared.attend(h)
        else:
            out = self.lm_head(h)
        return out.astype(jnp.float32) + self.final_logits_bias

    def encode(self, input_ids, attention_mask=None):
        return self.model.encode(input_ids, attention_mask)

    def decode(self, decoder_input_ids, encoder_hidden, attention_mask=None, decoder_attention_mask=None):
        return self._logits(self.model.decode(decoder_input_ids, decoder_attention_mask, encoder_hidden, attention_mask))

    def __call__(self, input_ids: jax.Array, attention_mask: Optional[jax.Array] = None,
                 decoder_input_ids: Optional[jax.Array] = None,
                 decoder_attention_mask: Optional[jax.Array] = None) -> jax.Array:
        if decoder_input_ids is None:
            decoder_input_ids = shift_right(input_ids, self.config.pad_token_id, self.config.start_token_id)
        return self._logits(self.model(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask))


def shift_right(labels: jax.Array, pad_id: int, start_id: int) -> jax.Array:
    """Decoder inputs from labels: start token, then labels[:-1]; -100 becomes pad (as HF)."""
    shifted = jnp.concatenate([jnp.full_like(labels[:, :1], start_id), labels[:, :-1]], axis=1)
    return jnp.where(shifted == -100, pad_id, shifted)
