"""Recipes: what the collate functions mask, seq2seq training and decoding, user recipes by reference."""

from __future__ import annotations

import sys
import textwrap

import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec  # noqa: E402

from glassbox_workloads.flax_models import build_model, init_params, tiny_config  # noqa: E402
from glassbox_workloads.recipes import ByteTokenizer, resolve  # noqa: E402
from glassbox_workloads.recipes import causal_lm, seq2seq  # noqa: E402
from glassbox_workloads.recipes.common import rouge_scores  # noqa: E402
from glassbox_workloads.redco import Deployer, Predictor, Trainer  # noqa: E402


def test_causal_lm_loss_covers_exactly_the_response_and_eos():
    tok = ByteTokenizer()
    r = causal_lm.make(lambda p, i, m: None, tok, max_length=64)
    b = r.collate_fn([{"instruction": "Say hi.", "output": "hi"}, {"text": "abc"}])
    ids, mask = b["input_ids"], b["loss_mask"]
    targets = [ids[0, t + 1] for t in range(63) if mask[0, t]]
    assert tok.decode(targets[:-1]) == "hi" and targets[-1] == tok.eos_id
    targets = [ids[1, t + 1] for t in range(63) if mask[1, t]]
    assert tok.decode(targets[:-1]) == "abc"  # plain text: every token after bos
    p = r.pred_collate_fn([{"prompt": "x", "response": "y"}, {"prompt": "long prompt", "response": "z"}])
    assert (p["prompt_ids"][:, -1] != tok.pad_id).all()  # left padded: prompts end together


@pytest.mark.slow
def test_seq2seq_bart_trains_and_decodes_in_order():
    tok = ByteTokenizer()
    cfg = tiny_config("bart", vocab_size=tok.vocab_size, max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2)
    model = build_model(cfg)
    r = seq2seq.make(model, tok, max_source_length=24, max_target_length=8, start_token_id=cfg.start_token_id)
    data = [{"document": f"the number is {i}", "summary": f"n{i}"} for i in range(16)]
    d = Deployer(n_model_shards=1)
    tr = Trainer(d, r.collate_fn, r.loss_fn, init_params(cfg, jax.random.key(0)), optax.adam(3e-3))
    first = tr.train_step(r.collate_fn(data[:8]))["loss"]
    for _ in range(5):
        last = tr.train_step(r.collate_fn(data[:8]))["loss"]
    assert last < first
    preds = Predictor(d, r.pred_collate_fn, r.pred_fn, r.output_fn).predict(data[:5], 2, tr.params)
    assert len(preds) == 5 and all(isinstance(p, str) for p in preds)
    assert set(r.eval_metric_fn(data[:5], preds)) == {"rouge1", "rouge2", "rougeL"}


def test_rouge_identity_and_disjoint():
    assert rouge_scores(["a b c"], ["a b c"]) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert rouge_scores(["x y"], ["a b"])["rougeL"] == 0.0


def test_user_recipe_is_three_module_function_references(tmp_path, monkeypatch):
    (tmp_path / "my_recipe.py").write_text(textwrap.dedent("""
        import numpy as np, jax.numpy as jnp
        def collate(examples):
            return {"x": np.asarray([e["x"] for e in examples], np.float32)}
        def loss(rng, state, params, batch, is_training):
            return jnp.mean((batch["x"] * params["w"]["kernel"].sum() - 1.0) ** 2)
        def pred(rng, params, batch):
            return batch["x"] * 2
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from glassbox_workloads.finetune.setup import build_recipe

    spec = ShardedFinetuneSpec.model_validate({
        "model": {"architecture": "llama"}, "data": {"train": {"uri": "x.jsonl"}},
        "recipe": {"name": "custom", "collateFn": "my_recipe:collate", "lossFn": "my_recipe:loss",
                   "predFn": "my_recipe:pred"}})
    r = build_recipe(spec, None, tiny_config("llama"), ByteTokenizer())
    assert r.collate_fn([{"x": 1.0}])["x"].tolist() == [1.0]
    assert resolve("my_recipe:pred") is r.pred_fn
    with pytest.raises(ValueError):
        resolve("no_colon_here")
    sys.modules.pop("my_recipe", None)
