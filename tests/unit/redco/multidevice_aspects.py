"""aspect-summarization on 8 simulated CPU devices (run in a subprocess, as multidevice.py explains)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from glassbox_workloads.flax_models import build_model, init_params, tiny_config  # noqa: E402
from glassbox_workloads.recipes import ByteTokenizer  # noqa: E402
from glassbox_workloads.redco import Deployer, Trainer  # noqa: E402

COUNTRIES = [("norway", "oslo"), ("japan", "tokyo"), ("italy", "rome"), ("egypt", "cairo")]


def aspect_equivalence() -> None:
    """The aspect-conditioned bart loss (examples expanded by the builder) at mp 1, 2, 4 equals one
    device's, 3 steps."""
    from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec
    from glassbox_workloads.finetune.aspects import RecipeInputs
    from glassbox_workloads.finetune.setup import build_recipe

    assert jax.device_count() == 8
    kg = Path(tempfile.mkdtemp()) / "kg.tsv"
    kg.write_text("".join(f"{c}\tcapital_of\t{k}\t1.0\n" for c, k in COUNTRIES))
    pairs = [{"document": f"{c.title()} voted. Crowds met in {k.title()}. Rain {i}.",
              "summary": f"{c.title()} voted. Crowds met in {k.title()}.", "entities": [c.title()]}
             for i, (c, k) in enumerate(COUNTRIES * 2)]
    spec = ShardedFinetuneSpec.model_validate({
        "model": {"architecture": "bart", "config": {"hiddenSize": 32, "numLayers": 2, "numHeads": 4}},
        "data": {"train": {"uri": "x.jsonl"}, "maxSourceLength": 64, "maxTargetLength": 48},
        "recipe": {"name": "aspect-summarization",
                   "aspectSummarization": {"knowledge": {"uri": str(kg)}, "ner": {"source": "provided"}}},
    })
    cfg = tiny_config("bart", vocab_size=259, hidden_size=32, intermediate_size=64, num_heads=4,
                      max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    recipe = build_recipe(spec, build_model(cfg), cfg, ByteTokenizer(), pairs, RecipeInputs())
    examples = recipe.expand_fn(pairs, "train")
    assert len(examples) == 16  # each pair: its country and the sampled capital
    batch = recipe.collate_fn(examples)
    params = init_params(cfg, jax.random.key(0))
    runs = {}
    for mp in (None, 1, 2, 4):
        d = Deployer(n_model_shards=mp or 1, devices=[jax.devices()[0]] if mp is None else None)
        tr = Trainer(d, recipe.collate_fn, recipe.loss_fn, params, optax.adamw(3e-3))
        runs[mp] = [float(tr.train_step(batch)["loss"]) for _ in range(3)]
    for mp in (1, 2, 4):
        np.testing.assert_allclose(runs[mp], runs[None], rtol=2e-5)
    print("losses", runs)


if __name__ == "__main__":
    for case in sys.argv[1:]:
        globals()[case]()
