"""The Trainer: fit(train_examples, per_device_batch_size, n_epochs, ...) around loss_fn.

The step is split by role (torchtitan): `_forward_backward` (one micro-batch), `_accumulate`
(gradient accumulation with lax.scan) and `_step` (optimizer update + recipe-owned state such as a
soft-Q target network). All of it is one jitted program whose shardings come from the Redco plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .deployer import Deployer

LossFn = Callable[[jax.Array, Any, Any, dict, bool], jax.Array]


class TrainState(flax.struct.PyTreeNode):
    """What a step reads and writes: step counter, params, optimizer state, recipe extras."""

    step: jax.Array
    params: Any
    opt_state: Any
    extra: Any = None


@dataclass
class Cursor:
    """Where the data stream stands: completed epochs and batches into the current epoch."""

    epoch: int = 0
    batch: int = 0


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


class Trainer:
    """Data parallel on 'dp', parameters sharded on 'mp', gradient accumulation, evaluation."""

    def __init__(
        self,
        deployer: Deployer,
        collate_fn: Callable[[list], dict],
        loss_fn: LossFn,
        params: Any,
        optimizer: optax.GradientTransformation,
        lr_schedule: Optional[optax.Schedule] = None,
        accumulate_grad_batches: int = 1,
        params_specs: Optional[Any] = None,
        init_extra: Optional[Callable[[Any], Any]] = None,
        update_extra: Optional[Callable[[Any, Any], Any]] = None,
        augment_fn: Optional[Callable[["Trainer", dict], dict]] = None,
        keep_grads: bool = False,
    ):
        self.deployer = deployer
        self.collate_fn = collate_fn
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.accum = max(1, int(accumulate_grad_batches))
        self.update_extra = update_extra
        self.augment_fn = augment_fn
        self.keep_grads = keep_grads  # also return each step's gradients (tests, debugging)
        self.last_grads: Any = None
        self.cursor = Cursor()
        specs = params_specs if params_specs is not None else deployer.param_specs(params)
        self.params_specs = specs
        params = deployer.shard_params(params, specs)
        extra = init_extra(params) if init_extra else None
        shapes = jax.eval_shape(lambda p: optimizer.init(p), params)
        p_sh = deployer.shardings(specs)
        opt_sh = deployer.follow(shapes, params, specs)
        opt_state = jax.jit(optimizer.init, out_shardings=opt_sh)(params)
        extra_sh = deployer.follow(extra, params, specs) if extra is not None else None
        if extra is not None:
            extra = deployer.place(extra, extra_sh)
        step = jax.device_put(jnp.zeros((), jnp.int32), deployer.replicated)
        self.state = TrainState(step, params, opt_state, extra)
        self.state_shardings = TrainState(deployer.replicated, p_sh, opt_sh, extra_sh)
        self._jit_step: dict[int, Callable] = {}
        self._jit_eval: Optional[Callable] = None
        self._jit_grads: Optional[Callable] = None

    # ---- the step, by role ----
    def _forward_backward(self, state: TrainState, params: Any, batch: dict, rng: jax.Array):
        return jax.value_and_grad(lambda p: self.loss_fn(rng, state, p, batch, True))(params)

    def _accumulate(self, state: TrainState, batch: dict, rng: jax.Array, accum: int):
        if accum == 1:
            return self._forward_backward(state, state.params, batch, rng)

        def body(carry, mb):
            lsum, gsum, i = carry
            loss, g = self._forward_backward(state, state.params, mb, jax.random.fold_in(rng, i))
            return (lsum + loss, jax.tree_util.tree_map(jnp.add, gsum, g), i + 1), None

        zeros = jax.tree_util.tree_map(jnp.zeros_like, state.params)
        (lsum, gsum, _), _ = jax.lax.scan(body, (jnp.zeros(()), zeros, 0), batch)
        return lsum / accum, jax.tree_util.tree_map(lambda g: g / accum, gsum)

    def _step(self, state: TrainState, batch: dict, rng: jax.Array, accum: int):
        loss, grads = self._accumulate(state, batch, rng, accum)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        extra = self.update_extra(state.extra, params) if self.update_extra else state.extra
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
        if self.lr_schedule is not None:
            metrics["lr"] = self.lr_schedule(state.step)
        if self.keep_grads:
            return TrainState(state.step + 1, params, opt_state, extra), metrics, grads
        return TrainState(state.step + 1, params, opt_state, extra), metrics

    def _batch_sharding(self, batch: dict, leading: int) -> dict:
        return {k: self.deployer.data_sharding(np.ndim(v), leading) for k, v in batch.items()}

    def _compiled_step(self, batch: dict) -> Callable:
        lead = 1 if self.accum > 1 else 0
        key = (lead, tuple(sorted((k, np.shape(v)) for k, v in batch.items())))
        if key not in self._jit_step:
            rep = self.deployer.replicated
            outs = (self.state_shardings, rep) + ((self.state_shardings.params,) if self.keep_grads else ())
            self._jit_step[key] = jax.jit(
                lambda s, b, r: self._step(s, b, r, self.accum),
                in_shardings=(self.state_shardings, self._batch_sharding(batch, lead), rep),
                out_shardings=outs,
                donate_argnums=(0,),
            )
        return self._jit_step[key]

    # ---- public ----
    def train_step(self, host_batch: dict) -> dict[str, float]:
        """One optimizer step on a collated global batch (this host's rows)."""
        if self.augment_fn is not None:
            host_batch = self.augment_fn(self, host_batch)
        if self.accum > 1:
            host_batch = {k: _split_micro(np.asarray(v), self.accum) for k, v in host_batch.items()}
        batch = self.deployer.shard_batch(host_batch, leading=1 if self.accum > 1 else 0)
        out = self._compiled_step(batch)(self.state, batch, self.deployer.gen_rng())
        self.state, metrics = out[0], out[1]
        if self.keep_grads:
            self.last_grads = out[2]
        return {k: float(v) for k, v in jax.device_get(metrics).items()}  # a host sync point, once per step

    def loss_and_grads(self, host_batch: dict, rng: Optional[jax.Array] = None) -> tuple[float, Any]:
        """Loss and gradients of the current params on a batch, without updating (for tests)."""
        batch = self.deployer.shard_batch(host_batch)
        if self._jit_grads is None:
            self._jit_grads = jax.jit(lambda s, b, r: self._forward_backward(s, s.params, b, r),
                                      out_shardings=(self.deployer.replicated, self.state_shardings.params))
        loss, grads = self._jit_grads(self.state, batch, rng if rng is not None else jax.random.key(0))
        return float(loss), grads

    def eval_loss(self, examples: Sequence[Any], per_device_batch_size: int) -> float:
        """Mean loss over examples (is_training=False), batches weighted by their real examples.

        The last batch is padded with repeats of the last example, so a set smaller than one
        global batch still evaluates.
        """
        if not examples:
            return float("nan")
        if self._jit_eval is None:
            self._jit_eval = jax.jit(lambda s, b, r: self.loss_fn(r, s, s.params, b, False),
                                     out_shardings=self.deployer.replicated)
        gbs = self.deployer.global_batch_size(per_device_batch_size)
        n = len(examples)
        padded = list(examples) + [examples[-1]] * (-n % gbs)
        total = weight = 0.0
        for i, hb in enumerate(self.deployer.get_model_input_batches(padded, per_device_batch_size, self.collate_fn,
                                                                      shuffle=False, drop_last=True)):
            real = min(gbs, n - i * gbs)
            total += real * float(self._jit_eval(self.state, self.deployer.shard_batch(hb), jax.random.key(0)))
            weight += real
        return total / weight

    @property
    def params(self) -> Any:
        return self.state.params

    @property
    def step(self) -> int:
        return int(self.state.step)

    def fit(
        self,
        train_examples: Sequence[Any],
        per_device_batch_size: int,
        n_epochs: int = 1,
        *,
        max_steps: Optional[int] = None,
        eval_examples: Optional[Sequence[Any]] = None,
        eval_per_device_batch_size: Optional[int] = None,
        eval_every: Optional[int] = None,
        eval_fn: Optional[Callable[["Trainer"], dict[str, Any]]] = None,
        save_every: Optional[int] = None,
        save_fn: Optional[Callable[["Trainer", dict[str, float]], None]] = None,
        log_every: int = 1,
        seed: int = 0,
    ) -> FitResult:
        """Train n_epochs (or max_steps) from the cursor; evaluate and save on the given cadences.

        eval_fn(trainer) -> metrics runs every eval_every steps and at the end (the default eval is
        the loss on eval_examples); save_fn(trainer, last_metrics) every save_every steps and at
        the end.
        """
        res = FitResult()
        t0 = time.perf_counter()
        micro_bs = per_device_batch_size * self.accum
        per_epoch = self.deployer.n_batches(len(train_examples), micro_bs)
        if per_epoch == 0:
            raise ValueError(f"{len(train_examples)} examples make no full global batch of "
                             f"{self.deployer.global_batch_size(micro_bs)}")
        total = n_epochs * per_epoch if max_steps is None else min(max_steps, n_epochs * per_epoch)
        ebs = eval_per_device_batch_size or per_device_batch_size

        def evaluate() -> None:
            out: dict[str, Any] = {"step": self.step}
            if eval_fn is not None:
                out.update(eval_fn(self))
            elif eval_examples:
                out["eval_loss"] = self.eval_loss(eval_examples, ebs)
            if len(out) > 1:
                res.evals.append(out)
                self.deployer.log_metrics(self.step, {k: v for k, v in out.items() if isinstance(v, (int, float))})

        last: dict[str, float] = {}
        while self.step < total and self.cursor.epoch < n_epochs:
            batches = self.deployer.get_model_input_batches(
                train_examples, micro_bs, self.collate_fn, shuffle=True, seed=seed + self.cursor.epoch,
                skip=self.cursor.batch)
            for hb in batches:
                if self.step >= total:
                    break
                last = self.train_step(hb)
                self.cursor.batch += 1
                res.history.append({"step": self.step, **last})
                if log_every and self.step % log_every == 0:
                    self.deployer.log_metrics(self.step, last)
                if eval_every and self.step % eval_every == 0 and self.step < total:
                    evaluate()
                if save_fn and save_every and self.step % save_every == 0 and self.step < total:
                    save_fn(self, last)
            if self.cursor.batch >= per_epoch:
                self.cursor = Cursor(self.cursor.epoch + 1, 0)
        evaluate()
        if save_fn:
            save_fn(self, last)
        res.steps = self.step
        res.seconds = time.perf_counter() - t0
        return res


def _split_micro(x: np.ndarray, accum: int) -> np.ndarray:
    """(accum * b, ...) -> (accum, b, ...): micro-batch i takes rows i*b..(i+1)*b."""
    if x.shape[0] % accum:
        raise ValueError(f"batch of {x.shape[0]} rows does not split into {accum} micro-batches")
    return x.reshape(accum, x.shape[0] // accum, *x.shape[1:])

