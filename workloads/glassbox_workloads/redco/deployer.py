"""The Deployer: mesh, shardings, batching, RNG, learning-rate schedules and logging.

Everything a Trainer or Predictor needs from "the cluster" goes through here, so the three user
functions never see a device, a host or a mesh.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Iterator, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from .mesh import make_mesh
from .sharding import follow_params, param_specs

log = logging.getLogger("glassbox.redco")


class Deployer:
    """Owns the ('dp', 'mp') mesh and the plumbing around the three functions."""

    def __init__(self, n_model_shards: int = 1, seed: int = 0, devices: Optional[Sequence] = None,
                 logger: Optional[logging.Logger] = None):
        self.mesh = make_mesh(n_model_shards, devices)
        self.n_model_shards = n_model_shards
        self._rng = jax.random.key(seed)
        self.seed = seed
        self.log = logger or log

    # ---- mesh facts ----
    @property
    def dp_size(self) -> int:
        return self.mesh.shape["dp"]

    @property
    def mp_size(self) -> int:
        return self.mesh.shape["mp"]

    def global_batch_size(self, per_device_batch_size: int) -> int:
        """Examples per step across all hosts: per-device batch times the data-parallel width."""
        return per_device_batch_size * self.dp_size

    # ---- RNG ----
    def gen_rng(self) -> jax.Array:
        """A fresh key; the sequence is the same on every host (the seed is)."""
        self._rng, out = jax.random.split(self._rng)
        return out

    def rng_state(self) -> np.ndarray:
        return np.asarray(jax.random.key_data(self._rng))

    def set_rng_state(self, data: np.ndarray) -> None:
        self._rng = jax.random.wrap_key_data(jnp.asarray(data, dtype=jnp.uint32))

    # ---- shardings ----
    def param_specs(self, params: Any) -> Any:
        """The Redco plan for this mesh's 'mp' width."""
        return param_specs(params, self.mp_size)

    def shardings(self, specs: Any) -> Any:
        return jax.tree_util.tree_map(lambda s: NamedSharding(self.mesh, s), specs,
                                      is_leaf=lambda x: isinstance(x, P))

    def follow(self, tree: Any, params: Any, specs: Any) -> Any:
        """Shardings for a tree embedding param-shaped subtrees (optimizer state, target nets)."""
        return self.shardings(follow_params(tree, params, specs))

    def place(self, tree: Any, shardings: Any) -> Any:
        """Put arrays onto the mesh; host arrays go shard by shard (no full copy on one device)."""

        def put(x: Any, sh: NamedSharding) -> jax.Array:
            if isinstance(x, jax.Array):
                return jax.jit(jnp.copy, out_shardings=sh)(x)  # a fresh buffer: the step donates its state
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sh, lambda idx: x[idx])

        return jax.tree_util.tree_map(put, tree, shardings)

    def init_sharded(self, init_fn: Callable[[jax.Array], Any], rng: jax.Array) -> Any:
        """Run init_fn(rng) with every parameter created directly in its shard (no full copy)."""
        shapes = jax.eval_shape(init_fn, rng)
        return jax.jit(init_fn, out_shardings=self.shardings(self.param_specs(shapes)))(rng)

    def shard_params(self, params: Any, specs: Optional[Any] = None) -> Any:
        return self.place(params, self.shardings(specs if specs is not None else self.param_specs(params)))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def data_sharding(self, ndim: int, leading: int = 0) -> NamedSharding:
        """Batch dimension on 'dp' (after `leading` unsharded dims, e.g. micro-batch index)."""
        return NamedSharding(self.mesh, P(*([None] * leading), "dp", *([None] * (ndim - 1 - leading))))

    def shard_batch(self, batch: dict[str, np.ndarray], leading: int = 0) -> dict[str, jax.Array]:
        """This host's rows of a global batch -> global arrays sharded on 'dp'."""
        out = {}
        for k, v in batch.items():
            v = np.asarray(v)
            sh = self.data_sharding(v.ndim, leading)
            if jax.process_count() == 1:
                out[k] = jax.device_put(v, sh)
            else:
                out[k] = jax.make_array_from_process_local_data(sh, v)
        return out

    # ---- batching ----
    def get_model_input_batches(self, examples: Sequence[Any], per_device_batch_size: int,
                                collate_fn: Callable[[list], dict], *, shuffle: bool, seed: int = 0,
                                drop_last: bool = True, skip: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Collated host batches, this host's share of each global batch, in a seeded order.

        The order depends only on (seed, len(examples)), so a resumed run sees the same stream;
        `skip` drops the first batches (the data cursor of a checkpoint).
        """
        gbs = self.global_batch_size(per_device_batch_size)
        order = np.random.default_rng(seed).permutation(len(examples)) if shuffle else np.arange(len(examples))
        n_batches = len(order) // gbs if drop_last else math.ceil(len(order) / gbs)
        host_bs = gbs // jax.process_count()
        lo = jax.process_index() * host_bs
        for b in range(skip, n_batches):
            idx = order[b * gbs : (b + 1) * gbs][lo : lo + host_bs]
            yield collate_fn([examples[i] for i in idx])

    def n_batches(self, n_examples: int, per_device_batch_size: int, drop_last: bool = True) -> int:
        gbs = self.global_batch_size(per_device_batch_size)
        return n_examples // gbs if drop_last else math.ceil(n_examples / gbs)

    # ---- schedules ----
    @staticmethod
    def get_lr_schedule(learning_rate: float, total_steps: int, schedule: str = "linear",
                        warmup_steps: int = 0, end_factor: float = 0.0) -> optax.Schedule:
        """constant | linear | cosine decay after a linear warm-up from 0."""
        decay_steps = max(1, total_steps - warmup_steps)
        end = learning_rate * end_factor
        if schedule == "constant":
            after = optax.constant_schedule(learning_rate)
        elif schedule == "linear":
            after = optax.linear_schedule(learning_rate, end, decay_steps)
        elif schedule == "cosine":
            after = optax.cosine_decay_schedule(learning_rate, decay_steps, alpha=end_factor)
        else:
            raise ValueError(f"unknown schedule {schedule!r}: constant, linear or cosine")
        if warmup_steps <= 0:
            return after
        return optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup_steps), after], [warmup_steps])

    # ---- logging ----
    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        if jax.process_index() == 0:
            self.log.info("step %d %s", step, " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
