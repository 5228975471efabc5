"""HF-format checkpoints (config.json + safetensors) to Flax parameters and back.

torch nn.Linear weights are (out, in) and Flax kernels (in, out): they are transposed. GPT-2's
Conv1D weights are already (in, out) and are not. Names map one to one otherwise
('model.layers.3.self_attn.q_proj.weight' <-> model/layers_3/self_attn/q_proj/kernel).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Optional

import jax
import numpy as np

from . import param_shapes
from . import safetensors_io as st
from .config import ModelConfig

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"

_INDEXED = {"layers", "h"}  # module lists whose items HF names 'layers.3' and Flax 'layers_3'
_GPT2_CONV1D = {"c_attn", "c_proj", "c_fc"}
# Buffers and tied duplicates HF checkpoints may carry that have no Flax parameter.
_IGNORED = (
    re.compile(r".*\.attn\.(masked_)?bias$"),
    re.compile(r".*rotary_emb\.inv_freq$"),
    re.compile(r"^model\.(encoder|decoder)\.embed_tokens\.weight$"),
)


class CheckpointMismatch(ValueError):
    """The checkpoint's tensors do not match the model (missing, unexpected or misshapen)."""


def _is_conv1d(config: ModelConfig, module: str) -> bool:
    return config.architecture == "gpt2" and module in _GPT2_CONV1D


def _flax_path(key: str) -> tuple[str, ...]:
    merged: list[str] = []
    for part in key.split("."):
        if part.isdigit() and merged:
            merged[-1] = f"{merged[-1]}_{part}"
        else:
            merged.append(part)
    return tuple(merged)


def _node(tree: Mapping[str, Any], path: tuple[str, ...]) -> Optional[Mapping[str, Any]]:
    for p in path:
        if not isinstance(tree, Mapping) or p not in tree:
            return None
        tree = tree[p]
    return tree if isinstance(tree, Mapping) else None


def _paths(tree: Any) -> set[str]:
    return {"/".join(str(getattr(k, "key", k)) for k in p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}


def hf_to_flax(state: Mapping[str, np.ndarray], config: ModelConfig) -> dict[str, Any]:
    """A Flax parameter tree from an HF state dict (numpy arrays, any float dtype -> float32)."""
    shapes = param_shapes(config)
    out: dict[str, Any] = {}
    unexpected = []
    for key, value in state.items():
        path = _flax_path(key)
        leaf, module = path[-1], path[:-1]
        if key == "final_logits_bias":
            target, arr = ("final_logits_bias",), np.reshape(value, (-1,))
        else:
            node = _node(shapes, module)
            if node is None or leaf not in ("weight", "bias"):
                if (key == "lm_head.weight" and config.tie_word_embeddings) or any(p.match(key) for p in _IGNORED):
                    continue
                unexpected.append(key)
                continue
            arr = np.asarray(value)
            if leaf == "bias":
                name = "bias"
            elif "kernel" in node:
                name = "kernel"
                if not _is_conv1d(config, module[-1]):
                    arr = arr.T
            else:
                name = next((n for n in ("embedding", "scale", "weight") if n in node), None)
                if name is None:
                    unexpected.append(key)
                    continue
            target = (*module, name)
        want = _node(shapes, target[:-1]) if len(target) > 1 else shapes
        if want is None or target[-1] not in want:
            unexpected.append(key)
            continue
        if tuple(want[target[-1]].shape) != tuple(arr.shape):
            raise CheckpointMismatch(f"{key}: checkpoint shape {tuple(arr.shape)} != model shape {tuple(want[target[-1]].shape)}")
        cur = out
        for p in target[:-1]:
            cur = cur.setdefault(p, {})
        cur[target[-1]] = np.asarray(arr, dtype=np.float32)
    if unexpected:
        raise CheckpointMismatch(f"unexpected tensors for {config.architecture}: {sorted(unexpected)[:8]}")
    missing = sorted(_paths(shapes) - _paths(out))
    if missing:
        raise CheckpointMismatch(f"checkpoint lacks {len(missing)} tensors, e.g. {missing[:8]}")
    return out


def flax_to_hf(params: Any, config: ModelConfig) -> dict[str, np.ndarray]:
    """The HF state dict (numpy, float32) of a Flax parameter tree."""
    out: dict[str, np.ndarray] = {}
    for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = [str(getattr(k, "key", k)) for k in path]
        leaf, module = names[-1], names[:-1]
        arr = np.asarray(jax.device_get(value), dtype=np.float32)
        if names == ["final_logits_bias"]:
            out["final_logits_bias"] = arr.reshape(1, -1)
            continue
        parts = []
        for m in module:
            base, _, idx = m.rpartition("_")
            parts.extend([base, idx] if base in _INDEXED and idx.isdigit() else [m])
        if leaf == "kernel":
            if not _is_conv1d(config, module[-1]):
                arr = arr.T
            leaf = "weight"
        elif leaf in ("embedding", "scale"):
            leaf = "weight"
        out[".".join([*parts, leaf])] = np.ascontiguousarray(arr)
    return out


# ---- the store ---------------------------------------------------------------------------


def load_pretrained(store: Any, prefix: str = "") -> tuple[ModelConfig, dict[str, Any]]:
    """(config, params) from an HF-format checkpoint under prefix of an ArtifactStore."""

    def key(name: str) -> str:
        return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name

    config = ModelConfig.from_hf(store.read_json(key(CONFIG)))
    if store.exists(key(SAFETENSORS_INDEX)):
        files = sorted(set(store.read_json(key(SAFETENSORS_INDEX))["weight_map"].values()))
    elif store.exists(key(SAFETENSORS)):
        files = [SAFETENSORS]
    else:
        raise FileNotFoundError(f"no {SAFETENSORS} or {SAFETENSORS_INDEX} under {store.uri(prefix)}")
    state: dict[str, np.ndarray] = {}
    for f in files:
        state.update(st.load(store.get_bytes(key(f))))
    return config, hf_to_flax(state, config)


def save_pretrained(store: Any, prefix: str, config: ModelConfig, params: Any, tokenizer_json: Optional[str] = None) -> list[str]:
    """Write config.json + model.safetensors (+ tokenizer.json); returns the keys written."""

    def key(name: str) -> str:
        return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name

    written = []
    store.put_bytes(key(SAFETENSORS), st.dump(flax_to_hf(params, config), {"format": "pt"}))
    written.append(key(SAFETENSORS))
    store.put_bytes(key(CONFIG), (json.dumps(config.to_hf(), indent=2, sort_keys=True) + "\n").encode())
    written.append(key(CONFIG))
    if tokenizer_json is not None:
        store.put_bytes(key(TOKENIZER), tokenizer_json.encode())
        written.append(key(TOKENIZER))
    return written
