"""Checks that need 8 simulated CPU devices, each run in its own process.

XLA reads --xla_force_host_platform_device_count only before jax initialises its backends, and
other test modules import jax first in the pytest process: so test_multidevice.py runs
`python multidevice.py CASE` in a subprocess, where this file sets the flag before importing jax.
"""

from __future__ import annotations

import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from glassbox_workloads.flax_models import build_model, init_params, tiny_config  # noqa: E402
from glassbox_workloads.recipes import ByteTokenizer  # noqa: E402
from glassbox_workloads.recipes.causal_lm import decoder_apply, make  # noqa: E402
from glassbox_workloads.redco import Deployer, Predictor, Trainer  # noqa: E402
from glassbox_workloads.redco import checkpoints as ckpt  # noqa: E402

EXAMPLES = [{"prompt": f"q{i}", "response": f"answer {i * 7 % 13}"} for i in range(64)]


def _setup(arch: str = "llama"):
    cfg = tiny_config(arch, vocab_size=259, hidden_size=32, intermediate_size=64, num_layers=2,
                      num_heads=4, max_position_embeddings=64)
    model = build_model(cfg)
    recipe = make(decoder_apply(model), ByteTokenizer(), max_length=24, max_new_tokens=6)
    return cfg, model, recipe, init_params(cfg, jax.random.key(0))


def equivalence() -> None:
    """n_model_shards 1, 2, 4 on 8 devices: same losses and gradients as one device, 3 steps."""
    assert jax.device_count() == 8
    _, _, recipe, params = _setup()
    batch = recipe.collate_fn(EXAMPLES[:16])
    runs = {}
    for mp in (None, 1, 2, 4):
        d = Deployer(n_model_shards=mp or 1, devices=[jax.devices()[0]] if mp is None else None)
        tr = Trainer(d, recipe.collate_fn, recipe.loss_fn, params, optax.adamw(3e-3), keep_grads=True)
        steps = []
        for _ in range(3):
            loss = tr.train_step(batch)["loss"]
            steps.append((loss, jax.device_get(tr.last_grads)))
        runs[mp] = (steps, jax.device_get(tr.params))
        if mp:
            q = tr.params["model"]["layers_0"]["self_attn"]["q_proj"]["kernel"]
            assert q.sharding.spec == jax.sharding.PartitionSpec(None, "mp" if mp > 1 else None), q.sharding.spec
    ref_steps, ref_params = runs[None]
    for mp in (1, 2, 4):
        steps, params_mp = runs[mp]
        for (l0, g0), (l1, g1) in zip(ref_steps, steps):
            np.testing.assert_allclose(l1, l0, rtol=1e-5)
            jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6), g0, g1)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5), ref_params, params_mp)
    print("losses", [s[0] for s in ref_steps])


def memory() -> None:
    """Per-device parameter bytes of sharded tensors shrink by n_model_shards; the rest stay whole."""
    _, _, _, params = _setup()
    dev0 = jax.devices()[0]
    is_spec = lambda x: isinstance(x, jax.sharding.PartitionSpec)  # noqa: E731
    report = {}
    for mp in (1, 2, 4, 8):
        d = Deployer(n_model_shards=mp)
        placed = d.shard_params(params)
        on_dev = full = replicated = 0
        for leaf, spec in zip(jax.tree_util.tree_leaves(placed), jax.tree_util.tree_leaves(d.param_specs(params), is_leaf=is_spec)):
            nbytes = sum(s.data.nbytes for s in leaf.addressable_shards if s.device == dev0)
            if any(a is not None for a in spec):
                on_dev += nbytes
                full += leaf.nbytes
            else:
                assert nbytes == leaf.nbytes
                replicated += nbytes
        if mp > 1:
            assert full > 0.9 * (full + replicated), "the big tensors must be the sharded ones"
            assert on_dev * mp == full, (mp, on_dev, full)
        report[mp] = on_dev + replicated
    print(report)


def predictor_order() -> None:
    """Outputs come back in input order for any count, including ones not divisible by the batch."""
    _, _, _, params = _setup()

    def collate(examples):
        return {"x": np.asarray([e["i"] for e in examples], np.int32)}

    def pred_fn(rng, params, batch):
        return batch["x"] * 10 + 1

    for mp in (1, 2):
        d = Deployer(n_model_shards=mp)
        p = Predictor(d, collate, pred_fn)
        for n in (1, 3, 7, 8, 9, 17, 33):
            ex = [{"i": i} for i in range(n)]
            out = p.predict(ex, per_device_batch_size=2, params=params)
            assert [int(o) for o in out] == [i * 10 + 1 for i in range(n)], (mp, n, out)
    # a real generation recipe too: greedy decode is deterministic, so order is checkable per example
    _, _, recipe, params = _setup()
    d = Deployer(n_model_shards=2)
    p = Predictor(d, recipe.pred_collate_fn, recipe.pred_fn, recipe.output_fn)
    ex = EXAMPLES[:11]
    together = p.predict(ex, 1, d.shard_params(params))
    alone = [p.predict([e], 1, d.shard_params(params))[0] for e in ex[:3]]
    assert together[:3] == alone, (together[:3], alone)
    print("ok")


def checkpoint_roundtrip() -> None:
    """Save sharded with mp=4, restore onto mp=2 and onto one device: identical values."""
    import tempfile

    _, _, recipe, params = _setup()
    d4 = Deployer(n_model_shards=4)
    tr = Trainer(d4, recipe.collate_fn, recipe.loss_fn, params, optax.adamw(1e-3))
    # non-trivial optimizer state without compiling a training step: moments set from the params
    opt = jax.tree_util.tree_map(lambda x: x + 0.5 if x.dtype == np.float32 else x + 3, tr.state.opt_state)
    tree = {"params": tr.state.params, "opt_state": opt}
    with tempfile.TemporaryDirectory() as tmp:
        files = ckpt.write_local(tmp, tree, {"step": 1})
        assert sorted(files) == ["index.json", "shards-00000.safetensors"]
        for mp, devs in ((2, None), (1, [jax.devices()[0]])):
            d = Deployer(n_model_shards=mp, devices=devs)
            target = jax.eval_shape(lambda: tree)
            p_specs = d.param_specs(tree["params"])
            shardings = {"params": d.shardings(p_specs), "opt_state": d.follow(target["opt_state"], target["params"], p_specs)}
            back = ckpt.restore(ckpt.local_reader(tmp), target, shardings)
            jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), tree, back)
            k = back["params"]["model"]["layers_0"]["mlp"]["down_proj"]["kernel"]
            assert k.sharding.spec == jax.sharding.PartitionSpec("mp" if mp > 1 else None, None)
    print("ok")


def accumulation() -> None:
    """Two micro-batches of 8 accumulate to the gradient of one batch of 16 (mean losses)."""
    _, _, recipe, params = _setup()
    batch = recipe.collate_fn(EXAMPLES[:16])
    # equal token counts per half, so the mean of means equals the global mean
    batch["loss_mask"][:] = 0
    batch["loss_mask"][:, 3:9] = 1
    grads = {}
    for accum in (1, 2):
        d = Deployer(n_model_shards=2)
        tr = Trainer(d, recipe.collate_fn, recipe.loss_fn, params, optax.sgd(0.1), accumulate_grad_batches=accum,
                     keep_grads=True)
        tr.train_step(batch)
        grads[accum] = jax.device_get(tr.last_grads)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads[1], grads[2])
    print("ok")


if __name__ == "__main__":
    for case in sys.argv[1:]:
        globals()[case]()
