"""Redco's automatic tensor-parallel plan: a PartitionSpec per parameter from two name rules.

Rules (SEEDS.md section 2), keyed on the last two names of a parameter path:
- 1-D parameters (biases, norm scales) are replicated;
- embeddings shard the vocab dimension on 'mp' (the other dimension if the vocab is not divisible);
- q/k/v projections are column parallel, the attention output projection row parallel;
- up/gate/"in" kernels and heads column parallel, down/"out" kernels row parallel;
- any other kernel alternates column, row, column, ... in path order, so that consecutive dense
  layers pair up and need a single all-reduce;
- a dimension is sharded only when n_model_shards divides it; otherwise the next candidate, else
  replicated.
Optimizer state follows the parameters: every subtree shaped like the parameters takes their specs.

Everything here is pure: no devices, no allocation; shapes may be jax.ShapeDtypeStruct.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import jax
from jax.sharding import PartitionSpec as P

MP = "mp"
DP = "dp"

_QKV = {"q", "k", "v", "qk", "kv", "qkv", "query", "key", "value"}
_OUT_ATTN = {"o", "out", "output"}
_COLUMN = {"up", "gate", "in", "wi", "intermediate", "head", "classifier", "score"}
_ROW = {"down", "out", "wo", "output"}
_EMBED = {"embed", "embedding", "embeddings", "wte", "wpe", "shared", "tok"}


def _tokens(name: str) -> list[str]:
    """'q_proj' -> ['q', 'proj']; 'layers_3' -> ['layers']; 'fc1' -> ['fc1'] (digits kept)."""
    return [t for t in re.split(r"[_.\-]+", name.lower()) if t and not t.isdigit()]


def path_names(path: Sequence[Any]) -> tuple[str, ...]:
    """A jax key path as plain strings (dict keys, attribute names, sequence indices)."""
    out = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                out.append(str(getattr(k, attr)))
                break
        else:
            out.append(str(k))
    return tuple(out)


def classify(names: Sequence[str], ndim: int) -> str:
    """The rule a parameter falls under: replicated | embedding | column | row | other."""
    leaf = names[-1].lower() if names else ""
    if ndim <= 1 or leaf in ("bias", "scale"):
        return "replicated"
    raw = _tokens(names[-2]) if len(names) >= 2 else []
    words = [t.rstrip("0123456789") or t for t in raw]  # 'fc1' -> 'fc', 'w1' -> 'w'
    if leaf == "embedding" or (words and words[0] in _EMBED) or any(w.startswith("embed") for w in words):
        return "embedding"
    if not raw:
        return "other"
    first, last = words[0], words[-1]
    if first in _QKV or last in _QKV:
        return "column"
    if first in _OUT_ATTN and (len(words) == 1 or "proj" in words):
        return "row"
    if raw[0] in ("w1", "w3") or any(w in _COLUMN for w in words):
        return "column"
    if raw[0] == "w2" or any(w in _ROW for w in words):
        return "row"
    return "other"


def _spec_for(shape: Sequence[int], order: Sequence[int], n: int) -> P:
    """Shard the first dimension in `order` that n divides; replicate when none does."""
    if n > 1:
        for d in order:
            if shape[d] % n == 0:
                parts = [None] * len(shape)
                parts[d] = MP
                return P(*parts)
    return P(*([None] * len(shape)))


@dataclass(frozen=True)
class ParamPlan:
    """One row of the plan: a parameter, its rule and its spec."""

    path: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    rule: str
    spec: P
    n_model_shards: int

    @property
    def name(self) -> str:
        return "/".join(self.path)

    @property
    def itemsize(self) -> int:
        return jax.numpy.dtype(self.dtype).itemsize

    @property
    def bytes_total(self) -> int:
        return math.prod(self.shape) * self.itemsize

    @property
    def bytes_per_device(self) -> int:
        return bytes_per_device(self.shape, self.spec, self.itemsize, {MP: self.n_model_shards})

    @property
    def sharded(self) -> bool:
        return any(s is not None for s in self.spec)


def bytes_per_device(shape: Sequence[int], spec: P, itemsize: int, axis_sizes: dict[str, int]) -> int:
    """Bytes one device holds of an array of `shape` laid out by `spec` (ceil for uneven splits)."""
    total = itemsize
    padded = tuple(spec) + (None,) * (len(shape) - len(spec))
    for dim, axis in zip(shape, padded):
        axes = axis if isinstance(axis, tuple) else (axis,) if axis else ()
        split = math.prod(axis_sizes.get(a, 1) for a in axes)
        total *= -(-dim // split)
    return total


def plan_params(params: Any, n_model_shards: int) -> list[ParamPlan]:
    """The plan rows of a parameter tree, in path order (the order jax flattens it)."""
    rows: list[ParamPlan] = []
    other_count = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = path_names(path)
        shape = tuple(int(s) for s in leaf.shape)
        rule = classify(names, len(shape))
        ndim = len(shape)
        column = tuple(range(ndim - 1, -1, -1))  # last dimension first
        row = tuple(range(ndim))  # first dimension first
        if rule == "replicated":
            spec = P(*([None] * ndim))
        elif rule == "embedding":
            spec = _spec_for(shape, row, n_model_shards)  # vocab is the first dimension
        elif rule == "column":
            spec = _spec_for(shape, column, n_model_shards)
        elif rule == "row":
            spec = _spec_for(shape, row, n_model_shards)
        else:
            spec = _spec_for(shape, column if other_count % 2 == 0 else row, n_model_shards)
            other_count += 1
        rows.append(ParamPlan(names, shape, str(jax.numpy.dtype(leaf.dtype)), rule, spec, n_model_shards))
    return rows


def param_specs(params: Any, n_model_shards: int) -> Any:
    """A tree shaped like `params` holding each parameter's PartitionSpec."""
    specs = [row.spec for row in plan_params(params, n_model_shards)]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), specs)


def _same_shapes(a: Any, b: Any) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(getattr(x, "shape", None) == getattr(y, "shape", None) for x, y in zip(la, lb))


def follow_params(tree: Any, params: Any, specs: Any) -> Any:
    """Specs for a tree that embeds param-shaped subtrees (optimizer state, target networks).

    Every subtree with the parameters' structure and shapes takes the parameters' specs; every
    other leaf is replicated (step counters, scalars, masks).
    """
    treedef = jax.tree_util.tree_structure(params)

    def is_param_like(node: Any) -> bool:
        try:
            return jax.tree_util.tree_structure(node) == treedef and _same_shapes(node, params)
        except Exception:  # noqa: BLE001 - exotic nodes simply are not param-shaped
            return False

    def spec_of(node: Any) -> Any:
        if is_param_like(node):
            return specs
        return P()

    return jax.tree_util.tree_map(spec_of, tree, is_leaf=is_param_like)


def state_bytes_per_device(
    params: Any, n_model_shards: int, optimizer_slots: int = 2, param_copies: int = 0
) -> dict[str, int]:
    """Per-device bytes of params, grads and optimizer state (f32 slots) under the plan."""
    p = g = o = 0
    for row in plan_params(params, n_model_shards):
        b = row.bytes_per_device
        p += b
        g += b
        o += optimizer_slots * bytes_per_device(row.shape, row.spec, 4, {MP: n_model_shards})
    extra = param_copies * p
    return {"params": p, "grads": g, "optimizer": o, "extra": extra, "total": p + g + o + extra}


def rows_as_dicts(rows: Iterable[ParamPlan]) -> list[dict[str, Any]]:
    """JSON-friendly plan rows."""
    return [
        {
            "path": r.name,
            "shape": list(r.shape),
            "dtype": r.dtype,
            "rule": r.rule,
            "spec": spec_str(r.spec),
            "bytesPerDevice": r.bytes_per_device,
            "bytesTotal": r.bytes_total,
        }
        for r in rows
    ]


def spec_str(spec: P) -> str:
    """P(None, 'mp') -> '(None, mp)'; P() -> '()'."""
    return "(" + ", ".join("None" if s is None else str(s) for s in spec) + ")"
