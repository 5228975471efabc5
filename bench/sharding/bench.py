"""Sharded finetune step time and per-device memory: Redco's automatic plan vs data parallel and
vs a hand-written Megatron-style plan, side by side on 8 simulated CPU devices (one run).

    python bench/sharding/bench.py [--steps 8] [--rounds 3] [--hidden 256] [--layers 4]

Every configuration trains the same LLaMA-style model on the same global batch with AdamW, through
the same Trainer; only the parameter PartitionSpecs differ. Timed steps are interleaved one by one
across the configurations in a random order, so a noisy neighbour on the machine, or the plan that
ran just before, weighs on them all alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "workloads"), str(ROOT / "api")]

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from glassbox_workloads.flax_models import ModelConfig, build_model, count_params, init_params  # noqa: E402
from glassbox_workloads.recipes.common import masked_cross_entropy  # noqa: E402
from glassbox_workloads.redco import Deployer, Trainer  # noqa: E402
from glassbox_workloads.redco.sharding import path_names  # noqa: E402


def megatron_specs(params, mp: int):
    """The plan a person writes for LLaMA from the Megatron-LM paper, by hand, name by name."""
    col, row, rep = P(None, "mp"), P("mp", None), P()
    by_name = {"q_proj": col, "k_proj": col, "v_proj": col, "o_proj": row, "gate_proj": col, "up_proj": col,
               "down_proj": row, "lm_head": col, "embed_tokens": row}

    def spec(path, leaf):
        names = path_names(path)
        if leaf.ndim < 2 or mp == 1:
            return P(*([None] * leaf.ndim)) if leaf.ndim else rep
        return by_name[names[-2]]

    return jax.tree_util.tree_map_with_path(spec, params)


def device0_bytes(tree) -> int:
    dev = jax.devices()[0]
    return sum(s.data.nbytes for leaf in jax.tree_util.tree_leaves(tree) for s in leaf.addressable_shards
               if s.device == dev)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per configuration per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--per-device-batch", type=int, default=2)
    args = ap.parse_args()
    assert jax.device_count() == 8, jax.devices()

    cfg = ModelConfig(architecture="llama", vocab_size=args.vocab, hidden_size=args.hidden,
                      intermediate_size=int(args.hidden * 2.6875) // 8 * 8, num_layers=args.layers,
                      num_heads=max(1, args.hidden // 32), max_position_embeddings=args.seq)
    model = build_model(cfg)
    params = init_params(cfg, jax.random.key(0))

    def loss_fn(rng, state, p, batch, is_training):
        logits = model.apply({"params": p}, batch["input_ids"])
        return masked_cross_entropy(logits[:, :-1], batch["input_ids"][:, 1:], batch["mask"][:, 1:])

    gbs = args.per_device_batch * 8  # the same global batch for every mesh
    rs = np.random.RandomState(0)
    batch = {"input_ids": rs.randint(0, args.vocab, (gbs, args.seq)).astype(np.int32),
             "mask": np.ones((gbs, args.seq), np.int32)}

    configs = [("data parallel", 1, None)]
    for mp in (2, 4, 8):
        configs += [(f"redco auto mp={mp}", mp, "auto"), (f"megatron mp={mp}", mp, "megatron")]
    trainers = {}
    for label, mp, plan in configs:
        d = Deployer(n_model_shards=mp)
        pbd = gbs // d.dp_size  # per-device batch along 'dp' keeps the global batch fixed
        specs = megatron_specs(params, mp) if plan == "megatron" else None
        tr = Trainer(d, lambda ex: ex, loss_fn, params, optax.adamw(1e-3), params_specs=specs)
        t0 = time.perf_counter()
        loss = tr.train_step(batch)["loss"]  # compiles
        compile_s = time.perf_counter() - t0
        trainers[label] = {"tr": tr, "mp": mp, "dp": d.dp_size, "pbd": pbd, "times": [], "compile": compile_s,
                           "loss0": loss, "state": device0_bytes((tr.state.params, tr.state.opt_state)),
                           "params": device0_bytes(tr.state.params)}
        print(f"compiled {label:<20} in {compile_s:5.1f} s, first loss {loss:.5f}", flush=True)

    from glassbox_workloads.redco.sharding import param_specs

    same = {mp: jax.tree_util.tree_leaves(param_specs(params, mp), is_leaf=lambda x: isinstance(x, P))
            == jax.tree_util.tree_leaves(megatron_specs(params, mp), is_leaf=lambda x: isinstance(x, P))
            for mp in (2, 4, 8)}
    losses = {k: v["loss0"] for k, v in trainers.items()}
    spread = max(losses.values()) - min(losses.values())
    order_rng = np.random.default_rng(1)
    labels = list(trainers)
    for r in range(args.rounds):
        # one step of each plan in turn, in a fresh random order each time: noise and any effect of
        # the plan that ran just before (cache, allocator, threads) land on all plans alike
        for _ in range(args.steps):
            for label in order_rng.permutation(labels):
                t = trainers[label]
                t0 = time.perf_counter()
                t["tr"].train_step(batch)
                # the loss comes from one device; wait for every device's shard of the new state, or
                # the tail of this step would be billed to the next plan's
                jax.block_until_ready(t["tr"].state)
                t["times"].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    dp = trainers["data parallel"]
    dp_ms = statistics.median(dp["times"]) * 1e3
    lines = [
        f"model: llama, {count_params(params):,} params, hidden {cfg.hidden_size}, {cfg.num_layers} layers, "
        f"vocab {cfg.vocab_size}, seq {args.seq}; global batch {gbs}; AdamW; 8 simulated CPU devices",
        f"first-step losses agree across plans within {spread:.2e}",
        "automatic plan identical to the hand-written one, spec for spec: "
        + ", ".join(f"mp={mp} {'yes' if v else 'NO'}" for mp, v in same.items()),
        "",
        "| plan | mesh dp x mp | step ms (median) | vs data parallel | vs megatron same mp | params MiB/device "
        "| params+Adam MiB/device | memory vs data parallel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, t in trainers.items():
        ms = statistics.median(t["times"]) * 1e3
        meg = trainers.get(f"megatron mp={t['mp']}")
        vs_meg = f"{ms / (statistics.median(meg['times']) * 1e3):.3f}" if meg and "auto" in label else "-"
        lines.append(f"| {label} | {t['dp']} x {t['mp']} | {ms:.1f} | {ms / dp_ms:.3f} | {vs_meg} | "
                     f"{t['params'] / 2**20:.2f} | {t['state'] / 2**20:.2f} | {t['state'] / dp['state']:.3f} |")
    print("\n".join(lines))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; jax {jax.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
