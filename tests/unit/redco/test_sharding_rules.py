"""Golden plans of the Redco rule generator (SEEDS.md section 2) on synthetic parameter trees."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

from jax import ShapeDtypeStruct as S  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from glassbox_workloads.redco.autoshard import GiB, choose_model_shards, pool_info  # noqa: E402
from glassbox_workloads.redco.sharding import (  # noqa: E402
    follow_params,
    param_specs,
    plan_params,
    state_bytes_per_device,
)

F32 = jax.numpy.float32
MP = "mp"


def t(*shape):
    return S(shape, F32)


def flat_specs(tree, n):
    return {r.name: r.spec for r in plan_params(tree, n)}


def llama_tree(v=32000, d=4096, ff=11008, kv=4096, layers=2):
    layer = {
        "self_attn": {"q_proj": {"kernel": t(d, d)}, "k_proj": {"kernel": t(d, kv)}, "v_proj": {"kernel": t(d, kv)},
                      "o_proj": {"kernel": t(d, d)}},
        "mlp": {"gate_proj": {"kernel": t(d, ff)}, "up_proj": {"kernel": t(d, ff)}, "down_proj": {"kernel": t(ff, d)}},
        "input_layernorm": {"weight": t(d)}, "post_attention_layernorm": {"weight": t(d)},
    }
    return {"model": {"embed_tokens": {"embedding": t(v, d)}, "norm": {"weight": t(d)},
                      **{f"layers_{i}": layer for i in range(layers)}},
            "lm_head": {"kernel": t(d, v)}}


def test_llama_golden_plan_n4():
    specs = flat_specs(llama_tree(), 4)
    L = "model/layers_1/"
    assert specs[L + "self_attn/q_proj/kernel"] == P(None, MP)
    assert specs[L + "self_attn/k_proj/kernel"] == P(None, MP)
    assert specs[L + "self_attn/v_proj/kernel"] == P(None, MP)
    assert specs[L + "self_attn/o_proj/kernel"] == P(MP, None)
    assert specs[L + "mlp/gate_proj/kernel"] == P(None, MP)
    assert specs[L + "mlp/up_proj/kernel"] == P(None, MP)
    assert specs[L + "mlp/down_proj/kernel"] == P(MP, None)
    assert specs["lm_head/kernel"] == P(None, MP)
    assert specs["model/embed_tokens/embedding"] == P(MP, None)
    assert specs[L + "input_layernorm/weight"] == P(None)
    assert specs["model/norm/weight"] == P(None)


def test_llama_from_the_real_flax_model_matches_the_table():
    from glassbox_workloads.flax_models import param_shapes, tiny_config

    cfg = tiny_config("llama", vocab_size=256, hidden_size=64, intermediate_size=128, num_heads=4, num_kv_heads=4)
    specs = flat_specs(param_shapes(cfg), 4)
    assert specs["model/layers_0/self_attn/q_proj/kernel"] == P(None, MP)
    assert specs["model/layers_0/self_attn/o_proj/kernel"] == P(MP, None)
    assert specs["model/layers_0/mlp/down_proj/kernel"] == P(MP, None)
    assert specs["model/embed_tokens/embedding"] == P(MP, None)
    assert specs["lm_head/kernel"] == P(None, MP)
    assert specs["model/norm/weight"] == P(None)


def test_llama_single_shard_replicates_everything():
    assert all(all(a is None for a in s) for s in flat_specs(llama_tree(layers=1), 1).values())


def gpt2_tree(v=50257, d=768, layers=2, n_pos=1024):
    layer = {"ln_1": {"scale": t(d), "bias": t(d)}, "ln_2": {"scale": t(d), "bias": t(d)},
             "attn": {"c_attn": {"kernel": t(d, 3 * d), "bias": t(3 * d)}, "c_proj": {"kernel": t(d, d), "bias": t(d)}},
             "mlp": {"c_fc": {"kernel": t(d, 4 * d), "bias": t(4 * d)}, "c_proj": {"kernel": t(4 * d, d), "bias": t(d)}}}
    return {"transformer": {"wte": {"embedding": t(v, d)}, "wpe": {"embedding": t(n_pos, d)},
                            "ln_f": {"scale": t(d), "bias": t(d)}, **{f"h_{i}": layer for i in range(layers)}}}


def test_gpt2_golden_plan_alternates_unnamed_kernels_and_falls_back_on_odd_vocab():
    specs = flat_specs(gpt2_tree(), 4)
    # 50257 is not divisible by 4: the embedding shards its other dimension
    assert specs["transformer/wte/embedding"] == P(None, MP)
    assert specs["transformer/wpe/embedding"] == P(MP, None)
    for i in range(2):
        h = f"transformer/h_{i}/"
        # c_attn, c_proj, c_fc, c_proj match no name rule: they alternate column, row, column, row
        assert specs[h + "attn/c_attn/kernel"] == P(None, MP)
        assert specs[h + "attn/c_proj/kernel"] == P(MP, None)
        assert specs[h + "mlp/c_fc/kernel"] == P(None, MP)
        assert specs[h + "mlp/c_proj/kernel"] == P(MP, None)
        assert specs[h + "attn/c_attn/bias"] == P(None)
        assert specs[h + "ln_1/scale"] == P(None)


def test_gpt2_untied_head_with_odd_vocab_falls_back_to_rows():
    tree = gpt2_tree(layers=1)
    tree["lm_head"] = {"kernel": t(768, 50257)}
    assert flat_specs(tree, 4)["lm_head/kernel"] == P(MP, None)


def t5_tree(v=32128, d=512, ff=2048, heads=8, layers=1):
    def attn(name):
        return {name: {"q": {"kernel": t(d, d)}, "k": {"kernel": t(d, d)}, "v": {"kernel": t(d, d)},
                       "o": {"kernel": t(d, d)}, "relative_attention_bias": {"embedding": t(32, heads)}},
                "layer_norm": {"weight": t(d)}}

    enc = {f"block_{i}": {"layer_0": attn("SelfAttention"),
                          "layer_1": {"DenseReluDense": {"wi": {"kernel": t(d, ff)}, "wo": {"kernel": t(ff, d)}},
                                      "layer_norm": {"weight": t(d)}}} for i in range(layers)}
    dec = {f"block_{i}": {"layer_0": attn("SelfAttention"), "layer_1": attn("EncDecAttention"),
                          "layer_2": {"DenseReluDense": {"wi_0": {"kernel": t(d, ff)}, "wi_1": {"kernel": t(d, ff)},
                                                         "wo": {"kernel": t(ff, d)}},
                                      "layer_norm": {"weight": t(d)}}} for i in range(layers)}
    return {"shared": {"embedding": t(v, d)}, "encoder": {**enc, "final_layer_norm": {"weight": t(d)}},
            "decoder": {**dec, "final_layer_norm": {"weight": t(d)}}, "lm_head": {"kernel": t(d, v)}}


def test_t5_golden_plan_n4():
    specs = flat_specs(t5_tree(), 4)
    e = "encoder/block_0/"
    assert specs["shared/embedding"] == P(MP, None)
    for p in ("q", "k", "v"):
        assert specs[e + f"layer_0/SelfAttention/{p}/kernel"] == P(None, MP)
        assert specs[f"decoder/block_0/layer_1/EncDecAttention/{p}/kernel"] == P(None, MP)
    assert specs[e + "layer_0/SelfAttention/o/kernel"] == P(MP, None)
    assert specs[e + "layer_1/DenseReluDense/wi/kernel"] == P(None, MP)
    assert specs[e + "layer_1/DenseReluDense/wo/kernel"] == P(MP, None)
    assert specs["decoder/block_0/layer_2/DenseReluDense/wi_0/kernel"] == P(None, MP)
    assert specs["decoder/block_0/layer_2/DenseReluDense/wi_1/kernel"] == P(None, MP)
    assert specs["decoder/block_0/layer_2/DenseReluDense/wo/kernel"] == P(MP, None)
    assert specs[e + "layer_0/SelfAttention/relative_attention_bias/embedding"] == P(MP, None)
    assert specs["lm_head/kernel"] == P(None, MP)
    assert specs["encoder/final_layer_norm/weight"] == P(None)


def test_t5_non_divisible_fallbacks_n3():
    # d=512, ff=2048, vocab 32128: none divisible by 3 -> replicated; 8 heads -> buckets 32 not either
    specs = flat_specs(t5_tree(), 3)
    assert all(all(a is None for a in s) for s in specs.values())
    # d=384 is divisible by 3, vocab 32128 is not: the embedding takes its other dimension
    specs = flat_specs(t5_tree(d=384, ff=1536), 3)
    assert specs["shared/embedding"] == P(None, MP)
    assert specs["encoder/block_0/layer_0/SelfAttention/q/kernel"] == P(None, MP)
    assert specs["lm_head/kernel"] == P(MP, None)  # column candidate 32128 fails, rows 384 work


def test_per_candidate_fallbacks():
    tree = {"blk": {"q_proj": {"kernel": t(512, 6)}, "o_proj": {"kernel": t(6, 512)}, "up_proj": {"kernel": t(6, 10)},
                    "embed_tokens": {"embedding": t(32101, 6)}}}
    specs = flat_specs(tree, 4)
    assert specs["blk/q_proj/kernel"] == P(MP, None)  # out dim 6 not divisible: in dim
    assert specs["blk/o_proj/kernel"] == P(None, MP)  # in dim 6 not divisible: out dim
    assert specs["blk/up_proj/kernel"] == P(None, None)  # neither: replicated
    assert specs["blk/embed_tokens/embedding"] == P(None, None)


def test_optimizer_state_follows_params():
    params = llama_tree(v=64, d=16, ff=32, kv=16, layers=1)
    specs = param_specs(params, 2)
    for tx in (optax.adamw(1e-3), optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))):
        state = jax.eval_shape(tx.init, params)
        st_specs = follow_params(state, params, specs)
        leaves = jax.tree_util.tree_leaves(st_specs, is_leaf=lambda x: isinstance(x, P))
        n_param = len(jax.tree_util.tree_leaves(params))
        assert len(leaves) == len(jax.tree_util.tree_leaves(state))
        # mu and nu: two param-shaped subtrees take the params' specs; counters are replicated
        sharded = [s for s in leaves if any(a is not None for a in s)]
        n_sharded_params = sum(1 for s in jax.tree_util.tree_leaves(specs, is_leaf=lambda x: isinstance(x, P)) if any(a is not None for a in s))
        assert len(sharded) == 2 * n_sharded_params
        assert len(leaves) - 2 * n_param == sum(1 for s in leaves if s == P())


def test_bytes_per_device_shrink_by_n_for_sharded_tensors():
    tree = llama_tree(v=32000, d=512, ff=1024, kv=512, layers=2)
    full = {r.name: r.bytes_total for r in plan_params(tree, 1)}
    for n in (2, 4, 8):
        for r in plan_params(tree, n):
            if r.sharded:
                assert r.bytes_per_device * n == full[r.name]
            else:
                assert r.bytes_per_device == full[r.name]


def llama7b():
    from glassbox_workloads.flax_models import ModelConfig, param_shapes

    return param_shapes(ModelConfig(architecture="llama", vocab_size=32000, hidden_size=4096,
                                    intermediate_size=11008, num_layers=32, num_heads=32,
                                    max_position_embeddings=4096))


def test_auto_picks_smallest_fitting_shards_and_says_why():
    shapes = llama7b()
    n = sum(x.size for x in jax.tree_util.tree_leaves(shapes))
    assert 6.7e9 < n < 6.8e9
    h100 = pool_info("h100")
    c = choose_model_shards(shapes, 8, h100.device_memory)
    # 6.74B params x (4 params + 4 grads + 8 adam) bytes = 108 GB: n=1 over 60 GiB, n=2 fits
    assert c.n_model_shards == 2 and c.fits
    assert "n_model_shards=2" in c.reason and "n=1 would need" in c.reason
    v5e = pool_info("tpu-v5e-16")
    assert v5e.device_memory == 16 * GiB and v5e.slice_chips == 16
    c = choose_model_shards(shapes, 16, v5e.device_memory)
    assert c.n_model_shards == 16 and c.fits
    c = choose_model_shards(shapes, 4, v5e.device_memory)
    assert not c.fits and "does not fit" in c.reason
    # monotone: more memory never needs more shards
    small = choose_model_shards(shapes, 8, 200 * GiB)
    assert small.n_model_shards == 1


def test_auto_is_consistent_with_state_bytes():
    tree = llama_tree(v=1024, d=256, ff=512, kv=256, layers=2)
    need = {n: state_bytes_per_device(tree, n)["total"] for n in (1, 2, 4, 8)}
    mem = int(need[4] / 0.75) + 1
    assert choose_model_shards(tree, 8, mem).n_model_shards == 4
    assert need[1] > need[2] > need[4] > need[8]


def test_pool_table():
    assert pool_info("h100").device_memory == 80 * GiB
    assert pool_info("a100-40g").device_memory == 40 * GiB
    assert pool_info("cpu", host_memory=8 * GiB).device_memory == 8 * GiB
    assert pool_info(None, host_memory=3).name == "cpu"
    with pytest.raises(ValueError):
        pool_info("abacus")
