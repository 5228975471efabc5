"""Flax models written for glassbox (transformers has no Flax models any more).

    model = build_model(config)                  # a flax.linen Module
    shapes = param_shapes(config)                # ShapeDtypeStructs, no allocation
    params = init_params(config, jax.random.key(0))
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .bart import BartForConditionalGeneration
from .config import ARCHITECTURES, ModelConfig, tiny_config
from .gpt2 import GPT2LMHeadModel
from .llama import LlamaForCausalLM

_MODELS = {"llama": LlamaForCausalLM, "gpt2": GPT2LMHeadModel, "bart": BartForConditionalGeneration}


def build_model(config: ModelConfig):
    """The Flax module of config.architecture."""
    return _MODELS[config.architecture](config)


def is_encoder_decoder(config: ModelConfig) -> bool:
    return config.architecture == "bart"


def _dummy_inputs(config: ModelConfig) -> tuple[Any, ...]:
    ids = jnp.zeros((1, 8), jnp.int32)
    if is_encoder_decoder(config):
        return ids, jnp.ones_like(ids), ids, jnp.ones_like(ids)
    return (ids,)


def init_params(config: ModelConfig, rng: jax.Array) -> Any:
    """Randomly initialised parameters (a plain nested dict)."""
    return build_model(config).init(rng, *_dummy_inputs(config))["params"]


def param_shapes(config: ModelConfig) -> Any:
    """The parameter tree as jax.ShapeDtypeStruct: seconds even for a 7B model."""
    return jax.eval_shape(lambda r: init_params(config, r), jax.random.key(0))


def count_params(tree: Any) -> int:
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))


__all__ = [
    "ARCHITECTURES",
    "ModelConfig",
    "build_model",
    "count_params",
    "init_params",
    "is_encoder_decoder",
    "param_shapes",
    "tiny_config",
]
