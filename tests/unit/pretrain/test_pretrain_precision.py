"""The MFU options against the plain path: training.lossChunkTokens (cross-entropy fused with the
output projection, chunk by chunk) gives the plain loss and gradients to rounding, in fp32 and under
bf16 autocast; training.paramDtype bf16 (bf16 parameters, fp32 master copy) trains what autocast
over fp32 parameters trains to bf16 rounding, steps the fp32 master (updates too small for bf16
still count) and publishes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.loss import fused_cross_entropy, hidden_states_out, output_layer, plain_cross_entropy
from glassbox_workloads.pretrain.precision import MasterCopy
from glassbox_workloads.pretrain.strategy import DistInfo, Strategy
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from pretrain_tiny import resource, tiny_spec


def tiny_llama(seed: int = 0, tie: bool = False):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=32, tie_word_embeddings=tie)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)


def batch(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 97, (3, 17), generator=torch.Generator().manual_seed(seed))


def grads_of(model, x: torch.Tensor, chunk: int, autocast: bool) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    if chunk:
        with ctx, hidden_states_out(model) as head:
            hidden = model(input_ids=x[:, :-1], use_cache=False).logits
        with ctx:
            loss = fused_cross_entropy(hidden, head.weight, x[:, 1:], chunk)
    else:
        with ctx:
            logits = model(input_ids=x[:, :-1], use_cache=False).logits
        loss = plain_cross_entropy(logits, x[:, 1:])
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [1, 7, 48, 1000])
@pytest.mark.parametrize("tie", [False, True])
def test_fused_loss_matches_plain_in_fp32(chunk: int, tie: bool) -> None:
    model = tiny_llama(tie=tie)
    ref_loss, ref = grads_of(model, batch(), 0, autocast=False)
    loss, got = grads_of(model, batch(), chunk, autocast=False)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    assert got.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-7)


def test_fused_loss_matches_plain_under_bf16_autocast() -> None:
    model = tiny_llama()
    ref_loss, ref = grads_of(model, batch(), 0, autocast=True)
    loss, got = grads_of(model, batch(), 16, autocast=True)
    assert loss == pytest.approx(ref_loss, rel=1e-3)
    for k in ref:
        scale = ref[k].abs().max().item()
        assert (got[k] - ref[k]).abs().max().item() <= 0.02 * scale + 1e-6, k


def test_head_is_itself_again_after_the_fused_forward() -> None:
    model = tiny_llama()
    x = batch()
    with hidden_states_out(model):
        assert model(input_ids=x, use_cache=False).logits.shape[-1] == 32  # hidden size
    assert model(input_ids=x, use_cache=False).logits.shape[-1] == 97  # vocabulary
    assert "forward" not in vars(output_layer(model))


def test_fused_loss_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        fused_cross_entropy(torch.zeros(2, 4), torch.zeros(5, 4), torch.zeros(2, dtype=torch.long), 0)
    model = torch.nn.Module()
    model.get_output_embeddings = lambda: torch.nn.Linear(4, 5, bias=True)
    with pytest.raises(ValueError, match="lossChunkTokens needs a bias-free linear output layer"):
        output_layer(model)


def test_master_copy_keeps_updates_bf16_would_round_away() -> None:
    lin = torch.nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    mc = MasterCopy(lin)
    assert lin.weight.dtype == torch.bfloat16 and mc.master.weight.dtype == torch.float32
    opt = torch.optim.SGD(mc.master.parameters(), lr=1e-3)
    for _ in range(10):
        lin.weight.grad = torch.ones_like(lin.weight)  # 1e-3 per step: below bf16's 2^-8 spacing at 1.0
        mc.grads_to_master()
        opt.step()
        mc.write_back()
        assert lin.weight.grad is None and mc.master.weight.grad is None
    torch.testing.assert_close(mc.master.weight, torch.full((4, 4), 0.99), rtol=0, atol=1e-6)
    assert torch.equal(lin.weight, mc.master.weight.bfloat16())  # rounded from the master, not stuck at 1.0
    assert not torch.equal(lin.weight.float(), torch.ones(4, 4))


def _train(strategy: Strategy, steps: int = 4) -> list[float]:
    losses = []
    for s in range(steps):
        strategy.set_lr(1e-2)
        x = batch(10 + s)
        with strategy.autocast():
            logits = strategy.train_model(input_ids=x[:, :-1], use_cache=False).logits
        loss = plain_cross_entropy(logits, x[:, 1:])
        strategy.backward(loss)
        strategy.clip()
        strategy.step()
        losses.append(loss.item())
    return losses


def test_bf16_parameters_train_what_autocast_trains() -> None:
    training = tiny_spec(training={"precision": "bf16"}).training
    auto = Strategy(tiny_llama(), training, DistInfo(), cpu_bf16=True)
    pure = Strategy(tiny_llama(), training.model_copy(update={"param_dtype": "bf16"}), DistInfo(), cpu_bf16=True)
    assert auto.master is None and pure.master is not None
    assert next(pure.model.parameters()).dtype == torch.bfloat16
    init = {k: v.clone() for k, v in auto.full_model_state().items()}
    la, lp = _train(auto), _train(pure)
    assert lp == pytest.approx(la, rel=2e-2)
    sa, sp = auto.full_model_state(), pure.full_model_state()
    assert all(v.dtype == torch.float32 for v in sp.values())
    for k in sa:
        # Adam moves every weight by about lr per step whatever its gradient's size, so a gradient
        # near zero that bf16 rounds to the other sign moves a weight the other way: compare the
        # typical gap with the typical update, not the largest.
        moved = (sa[k] - init[k]).abs().mean()
        assert (sp[k] - sa[k]).abs().mean() <= 0.1 * moved, k
    # What is published is the master, not the bf16 weights the model computes with.
    assert any(not torch.equal(v, v.bfloat16().float()) for v in sp.values())
    opt = pure.full_optimizer_state()
    assert set(opt["state"]) == {n for n, _ in pure.model.named_parameters()}


def test_bf16_parameter_run_publishes_and_resumes_from_the_fp32_master(tmp_path: Path) -> None:
    """A whole run with paramDtype bf16 (forced onto the CPU): checkpoints hold fp32 weights that
    are not bf16-rounded, config.json says float32, and a resumed run ends bit for bit where the
    uninterrupted one does."""
    spec = tiny_spec(training={"maxSteps": 6, "precision": "bf16", "paramDtype": "bf16"}, checkpoint={"everySteps": 3},
                     analysis={"perplexity": True, "memorization": {"enabled": False}})
    straight = run_pretrain(resource(spec), LocalStore(tmp_path / "a"), hooks=TrainHooks(quiet=True, cpu_bf16=True))
    run = LocalStore(tmp_path / "a").sub(resource(spec).run_prefix)
    w = load_file(run.root / straight.manifest.latest.path / "model.safetensors")
    assert all(v.dtype == torch.float32 for v in w.values())
    assert sum(not torch.equal(v, v.bfloat16().float()) for v in w.values()) >= len(w) // 2
    assert json.loads((run.root / straight.manifest.latest.path / "config.json").read_text())["dtype"] == "float32"

    def stop(step: int, stats) -> None:
        if step == 4:
            raise KeyboardInterrupt

    broken = LocalStore(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        run_pretrain(resource(spec), broken, hooks=TrainHooks(quiet=True, cpu_bf16=True, on_step=stop))
    resumed = run_pretrain(resource(spec), broken, hooks=TrainHooks(quiet=True, cpu_bf16=True))
    assert resumed.resumed_from == 3
    w2 = load_file(broken.sub(resource(spec).run_prefix).root / read_manifest(broken.sub(resource(spec).run_prefix)).latest.path / "model.safetensors")
    for k in w:
        assert torch.equal(w2[k], w[k]), k


def test_chunked_loss_run_trains_what_the_plain_run_trains(tmp_path: Path) -> None:
    def run(chunk: int, root: Path):
        spec = tiny_spec(training={"maxSteps": 4, "lossChunkTokens": chunk}, checkpoint={"everySteps": 4},
                         analysis={"perplexity": True, "memorization": {"enabled": False}})
        res = run_pretrain(resource(spec), LocalStore(root), hooks=TrainHooks(quiet=True))
        r = LocalStore(root).sub(resource(spec).run_prefix)
        return res, load_file(r.root / res.manifest.latest.path / "model.safetensors")

    plain, wp = run(0, tmp_path / "plain")
    fused, wf = run(40, tmp_path / "fused")
    assert fused.manifest.latest.loss == pytest.approx(plain.manifest.latest.loss, rel=1e-5)
    assert fused.manifest.latest.evals["perplexity"] == pytest.approx(plain.manifest.latest.evals["perplexity"], rel=1e-5)
    for k in wp:
        torch.testing.assert_close(wf[k], wp[k], rtol=1e-4, atol=1e-6)




@pytest.mark.slow
def test_compiled_fused_loss_trains_what_the_eager_plain_loss_trains(tmp_path: Path) -> None:
    """compile + lossChunkTokens: the head's pass-through is traced into the compiled graph and
    the fused loss runs outside it; results match eager mode with the plain loss to rounding."""
    def run(root: Path, **training):
        spec = tiny_spec(training={"maxSteps": 4, "deterministic": False, **training}, checkpoint={"everySteps": 4},
                         analysis={"perplexity": True, "memorization": {"enabled": False}})
        res = run_pretrain(resource(spec), LocalStore(root), hooks=TrainHooks(quiet=True))
        r = LocalStore(root).sub(resource(spec).run_prefix)
        return res, load_file(r.root / res.manifest.latest.path / "model.safetensors")

    eager, we = run(tmp_path / "eager")
    compiled, wc = run(tmp_path / "compiled", compile=True, lossChunkTokens=40)
    assert wc.keys() == we.keys() and not any("_orig_mod" in k for k in wc)
    assert compiled.manifest.latest.loss == pytest.approx(eager.manifest.latest.loss, rel=1e-4)
    assert compiled.manifest.latest.evals["perplexity"] == pytest.approx(eager.manifest.latest.evals["perplexity"], rel=1e-3)
    for k in we:
        torch.testing.assert_close(wc[k], we[k], rtol=1e-3, atol=1e-5)
