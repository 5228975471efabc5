"""Recipe checks on 8 simulated CPU devices (run in a subprocess, as multidevice.py explains)."""

from __future__ import annotations

import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from glassbox_workloads.flax_models import tiny_config  # noqa: E402
from glassbox_workloads.flax_models.gpt2 import GPT2DoubleHeadsModel  # noqa: E402
from glassbox_workloads.recipes import ByteTokenizer  # noqa: E402
from glassbox_workloads.recipes import keyword_summarization as ks  # noqa: E402
from glassbox_workloads.redco import Deployer, Trainer  # noqa: E402


def _equal_runs(recipe, params, batch) -> None:
    runs = {}
    for mp in (None, 1, 2, 4):
        d = Deployer(n_model_shards=mp or 1, devices=[jax.devices()[0]] if mp is None else None)
        tr = Trainer(d, recipe.collate_fn, recipe.loss_fn, params, optax.adamw(3e-3))
        runs[mp] = [float(tr.train_step(batch)["loss"]) for _ in range(3)]
    for mp in (1, 2, 4):
        np.testing.assert_allclose(runs[mp], runs[None], rtol=2e-5)
    print("losses", runs)


def keyword_equivalence() -> None:
    """The double-heads loss (2 LM + MC over four choices) at mp 1, 2, 4 equals one device's, 3 steps."""
    assert jax.device_count() == 8
    tok = ByteTokenizer()
    cfg = tiny_config("gpt2", vocab_size=264, hidden_size=32, intermediate_size=64, num_heads=4,
                      max_position_embeddings=48)
    model = GPT2DoubleHeadsModel(cfg)
    abstracts = [f"virus {i} spreads in city {i * 3 % 7}" for i in range(16)]
    recipe = ks.make(model, tok, abstracts, ks.Settings(max_length=48, max_keyword_tokens=12))
    batch = recipe.collate_fn([{"abstract": a, "keywords": a.split()[::2]} for a in abstracts])
    params = model.init(jax.random.key(0), batch["input_ids"][:1], None, batch["token_type_ids"][:1],
                        batch["mc_token_ids"][:1])["params"]
    _equal_runs(recipe, params, batch)


def progressive_equivalence() -> None:
    """The progressive stage-2 loss (bart, noised stage sources) at mp 1, 2, 4 equals one device's."""
    from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec
    from glassbox_workloads.finetune.setup import progressive_recipe, progressive_vocabs
    from glassbox_workloads.flax_models import build_model, init_params

    assert jax.device_count() == 8
    words = ["volcano", "glacier", "harbor", "meteor", "canyon", "lantern", "orchard", "tundra"]
    examples = [{"condition": f"tale {i}", "text": f"The {words[i % 8]} met the {words[(i * 3 + 1) % 8]}.\nThen rain."}
                for i in range(16)]
    spec = ShardedFinetuneSpec.model_validate({
        "model": {"architecture": "bart", "config": {"hiddenSize": 32, "numLayers": 2, "numHeads": 4}},
        "data": {"train": {"uri": "x.jsonl"}, "maxSourceLength": 64, "maxTargetLength": 48},
        "recipe": {"name": "progressive", "progressive": {"stages": [0.3], "vocab": {"minDf": 2}}},
    })
    cfg = tiny_config("bart", vocab_size=259, hidden_size=32, intermediate_size=64, num_heads=4,
                      max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    recipe = progressive_recipe(spec, build_model(cfg), cfg, ByteTokenizer(), progressive_vocabs(spec, cfg, examples), 2)
    _equal_runs(recipe, init_params(cfg, jax.random.key(0)), recipe.collate_fn(examples))


if __name__ == "__main__":
    for case in sys.argv[1:]:
        globals()[case]()
