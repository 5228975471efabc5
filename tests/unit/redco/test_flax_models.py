"""The Flax llama / gpt2 / bart match transformers' torch models on the same weights and inputs."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from glassbox_workloads.flax_models import build_model, init_params, tiny_config  # noqa: E402
from glassbox_workloads.flax_models import safetensors_io as st  # noqa: E402
from glassbox_workloads.flax_models.hf import CheckpointMismatch, flax_to_hf, hf_to_flax, load_pretrained, save_pretrained  # noqa: E402

TORCH = {
    "llama": ("LlamaForCausalLM", "LlamaConfig"),
    "gpt2": ("GPT2LMHeadModel", "GPT2Config"),
    "bart": ("BartForConditionalGeneration", "BartConfig"),
}


def torch_model(cfg):
    cls, ccls = (getattr(transformers, n) for n in TORCH[cfg.architecture])
    hf = {k: v for k, v in cfg.to_hf().items() if k not in ("model_type", "architectures")}
    torch.manual_seed(0)
    return cls(ccls(**hf)).eval()


def logits_both(cfg, params, tm):
    rs = np.random.RandomState(0)
    ids = rs.randint(3, cfg.vocab_size, (2, 9))
    model = build_model(cfg)
    if cfg.architecture == "bart":
        dec = rs.randint(3, cfg.vocab_size, (2, 5))
        fl = model.apply({"params": params}, ids, np.ones_like(ids), dec, None)
        with torch.no_grad():
            tl = tm(input_ids=torch.tensor(ids), decoder_input_ids=torch.tensor(dec)).logits.numpy()
    else:
        fl = model.apply({"params": params}, ids)
        with torch.no_grad():
            tl = tm(torch.tensor(ids)).logits.numpy()
    return np.asarray(fl), tl


@pytest.mark.parametrize("arch", ["llama", "gpt2", "bart"])
def test_flax_logits_match_torch_on_converted_weights(arch):
    cfg = tiny_config(arch)
    tm = torch_model(cfg)
    params = hf_to_flax({k: v.detach().numpy() for k, v in tm.state_dict().items()}, cfg)
    fl, tl = logits_both(cfg, params, tm)
    np.testing.assert_allclose(fl, tl, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "bart"])
def test_flax_weights_export_to_hf_and_load_in_transformers(arch, tmp_path):
    from glassbox_api.store import open_store

    cfg = tiny_config(arch)
    params = init_params(cfg, jax.random.key(3))
    save_pretrained(open_store(tmp_path), "export", cfg, params)
    cls = getattr(transformers, TORCH[arch][0])
    tm = cls.from_pretrained(tmp_path / "export").eval()
    fl, tl = logits_both(cfg, params, tm)
    np.testing.assert_allclose(fl, tl, rtol=1e-4, atol=1e-4)


def test_llama_checkpoint_saved_by_transformers_loads_from_the_store(tmp_path):
    """What a PretrainRun publishes: save_pretrained's directory, read back through the store."""
    from glassbox_api.store import open_store

    cfg = tiny_config("llama", vocab_size=96, num_kv_heads=2)
    tm = torch_model(cfg)
    tm.save_pretrained(tmp_path / "ckpt")
    loaded_cfg, params = load_pretrained(open_store(tmp_path), "ckpt")
    assert loaded_cfg.num_kv_heads == 2 and loaded_cfg.vocab_size == 96
    fl, tl = logits_both(loaded_cfg, params, tm)
    np.testing.assert_allclose(fl, tl, rtol=1e-4, atol=1e-4)


def test_bf16_safetensors_round_trip_and_mismatch_errors():
    import ml_dtypes

    a = np.arange(12, dtype=np.float32).reshape(3, 4).astype(ml_dtypes.bfloat16)
    back = st.load(st.dump({"w": a, "s": np.asarray(3, np.int32)}))
    assert back["w"].dtype == a.dtype and np.array_equal(back["w"], a) and back["s"].shape == ()
    cfg = tiny_config("llama")
    state = flax_to_hf(init_params(cfg, jax.random.key(0)), cfg)
    with pytest.raises(CheckpointMismatch, match="lacks"):
        hf_to_flax({k: v for k, v in state.items() if "q_proj" not in k}, cfg)
    with pytest.raises(CheckpointMismatch, match="unexpected"):
        hf_to_flax({**state, "model.mystery.weight": np.zeros((2, 2), np.float32)}, cfg)
    bad = dict(state)
    bad["model.norm.weight"] = np.zeros(7, np.float32)
    with pytest.raises(CheckpointMismatch, match="shape"):
        hf_to_flax(bad, cfg)
