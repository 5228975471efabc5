"""The Predictor: pred_fn over any number of examples, outputs back in input order."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from .deployer import Deployer


class Predictor:
    """Pads the last batch (repeating the last example), runs pred_fn sharded, drops the padding."""

    def __init__(self, deployer: Deployer, collate_fn: Callable[[list], dict],
                 pred_fn: Callable[[jax.Array, Any, dict], Any], output_fn: Optional[Callable[[Any], list]] = None,
                 params_specs: Optional[Any] = None):
        self.deployer = deployer
        self.collate_fn = collate_fn
        self.pred_fn = pred_fn
        self.output_fn = output_fn
        self.params_specs = params_specs
        self._jit: dict[Any, Callable] = {}

    def _compiled(self, params: Any, batch: dict) -> Callable:
        key = tuple(sorted((k, np.shape(v)) for k, v in batch.items()))
        if key not in self._jit:
            d = self.deployer
            specs = self.params_specs if self.params_specs is not None else d.param_specs(params)
            self._jit[key] = jax.jit(
                self.pred_fn,
                in_shardings=(d.replicated, d.shardings(specs), {k: d.data_sharding(np.ndim(v)) for k, v in batch.items()}),
                out_shardings=None,
            )
        return self._jit[key]

    def predict(self, examples: Sequence[Any], per_device_batch_size: int, params: Any,
                rng: Optional[jax.Array] = None) -> list[Any]:
        """One output per example, in the order of `examples`."""
        if not examples:
            return []
        d = self.deployer
        gbs = d.global_batch_size(per_device_batch_size)
        n = len(examples)
        padded = list(examples) + [examples[-1]] * (-n % gbs)
        rng = rng if rng is not None else jax.random.key(0)
        outputs: list[Any] = []
        for i, hb in enumerate(d.get_model_input_batches(padded, per_device_batch_size, self.collate_fn,
                                                         shuffle=False, drop_last=True)):
            batch = d.shard_batch(hb)
            preds = self._compiled(params, batch)(jax.random.fold_in(rng, i), params, batch)
            preds = _to_host(preds)
            outputs.extend(self.output_fn(preds) if self.output_fn else _rows(preds))
        return outputs[:n]


def _to_host(tree: Any) -> Any:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _rows(preds: Any) -> list[Any]:
    """Split batched outputs (an array or a dict of arrays) into one item per example."""
    if isinstance(preds, dict):
        keys = list(preds)
        n = len(preds[keys[0]])
        return [{k: np.asarray(preds[k][i]) for k in keys} for i in range(n)]
    return [np.asarray(p) for p in preds]
