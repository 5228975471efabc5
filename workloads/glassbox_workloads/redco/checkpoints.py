"""Sharded checkpoints: every host writes the shards it owns; restore reassembles any layout.

Layout of one checkpoint directory (in a local staging dir, then the artifact store):

    index.json                     every array: global shape, dtype, spec; the step metadata
    shards-<process>.safetensors   this host's unique shards, named '<tree path>@<start:stop,...>'

Restore reads the index, then builds each array with jax.make_array_from_callback, cutting the
requested slice out of whichever shards cover it, so a checkpoint saved with n_model_shards=4 on
8 devices restores onto 2 devices with n_model_shards=1 (or any other mesh).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

import jax
import numpy as np
from jax.sharding import NamedSharding

from ..flax_models import safetensors_io as st
from .sharding import path_names, spec_str

INDEX = "index.json"


def _shard_file(process: int) -> str:
    return f"shards-{process:05d}.safetensors"


def _slice_str(index: tuple, shape: tuple) -> str:
    parts = []
    for sl, dim in zip(index, shape):
        start, stop, _ = sl.indices(dim)
        parts.append(f"{start}:{stop}")
    return ",".join(parts)


def _parse_slice(s: str) -> tuple[slice, ...]:
    if not s:
        return ()
    return tuple(slice(int(a), int(b)) for a, b in (p.split(":") for p in s.split(",")))


def flatten(tree: Any) -> dict[str, Any]:
    """{'params/model/.../kernel': leaf} for a tree of arrays."""
    return {"/".join(path_names(p)): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def write_local(directory: str | Path, tree: Any, meta: dict[str, Any]) -> list[str]:
    """Write this host's shards (and, on process 0, the index) into a local directory."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    index: dict[str, Any] = {}
    for name, arr in flatten(tree).items():
        if not isinstance(arr, jax.Array):
            arr = jax.numpy.asarray(arr)
        spec = arr.sharding.spec if isinstance(arr.sharding, NamedSharding) else None
        index[name] = {"shape": list(arr.shape), "dtype": str(arr.dtype),
                       "spec": spec_str(spec) if spec is not None else None}
        for shard in arr.addressable_shards:
            if shard.replica_id != 0:  # one copy of each slice across the whole mesh
                continue
            data = np.asarray(shard.data)
            if data.dtype == np.dtype("V") or str(arr.dtype).startswith("key"):
                raise TypeError(f"{name}: store typed PRNG keys as key_data")
            tensors[f"{name}@{_slice_str(shard.index, arr.shape)}"] = data
    written = []
    pid = jax.process_index()
    (d / _shard_file(pid)).write_bytes(st.dump(tensors))
    written.append(_shard_file(pid))
    if pid == 0:
        body = {"format": "glassbox-sharded-v1", "processes": jax.process_count(), "arrays": index, "meta": meta}
        (d / INDEX).write_text(json.dumps(body, indent=1, sort_keys=True))
        written.append(INDEX)
    return written


def read_index(read_bytes: Callable[[str], bytes]) -> dict[str, Any]:
    return json.loads(read_bytes(INDEX).decode("utf-8"))


def restore(read_bytes: Callable[[str], bytes], target: Any, shardings: Any) -> Any:
    """Arrays shaped like `target` (arrays or ShapeDtypeStructs), laid out by `shardings`.

    read_bytes(name) returns one file of the checkpoint directory (from the store or a local dir).
    """
    index = read_index(read_bytes)
    arrays = index["arrays"]
    pieces: dict[str, list[tuple[tuple[slice, ...], np.ndarray]]] = {}
    for p in range(int(index["processes"])):
        for key, value in st.load(read_bytes(_shard_file(p))).items():
            name, _, sl = key.rpartition("@")
            pieces.setdefault(name, []).append((_parse_slice(sl), value))

    names = list(flatten(target))
    leaves, treedef = jax.tree_util.tree_flatten(target)
    sh_leaves = jax.tree_util.tree_leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    if len(sh_leaves) != len(leaves):
        raise ValueError("shardings do not match the target tree")
    out = []
    for name, leaf, sh in zip(names, leaves, sh_leaves):
        if name not in arrays:
            raise KeyError(f"checkpoint has no array {name}")
        shape = tuple(arrays[name]["shape"])
        if tuple(leaf.shape) != shape:
            raise ValueError(f"{name}: checkpoint shape {shape} != target {tuple(leaf.shape)}")
        full = _assemble(name, shape, np.dtype(arrays[name]["dtype"]), pieces.get(name, []))
        out.append(jax.make_array_from_callback(shape, sh, lambda idx, f=full: f[idx]))
    return jax.tree_util.tree_unflatten(treedef, out)


def _assemble(name: str, shape: tuple, dtype: np.dtype, pieces: list) -> np.ndarray:
    if len(pieces) == 1 and all(s.stop - s.start == d for s, d in zip(pieces[0][0], shape)):
        return pieces[0][1]
    full = np.empty(shape, dtype=dtype)
    covered = 0
    for sl, value in pieces:
        full[sl] = value
        covered += value.size
    if covered < int(np.prod(shape)):
        raise ValueError(f"{name}: checkpoint shards cover {covered} of {int(np.prod(shape))} elements")
    return full


def local_reader(directory: str | Path) -> Callable[[str], bytes]:
    d = Path(directory)
    return lambda name: (d / name).read_bytes()


def store_reader(store: Any, prefix: str, sha256: Optional[dict[str, str]] = None) -> Callable[[str], bytes]:
    """Read checkpoint files from an ArtifactStore, verifying manifest digests when given."""
    base = prefix.strip("/")
    return lambda name: store.get_bytes(f"{base}/{name}" if base else name, sha256=(sha256 or {}).get(name))
