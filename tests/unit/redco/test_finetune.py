"""The ShardedFinetune workload end to end on the CPU, and `glassbox plan` (plan_cli)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec  # noqa: E402
from glassbox_api.manifest import CheckpointEntry, Manifest, read_manifest  # noqa: E402
from glassbox_api.store import open_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "examples" / "data"


def publish_pretrain_run(root, tmp_path, name="tiny-pt"):
    """What a PretrainRun publishes: an HF LLaMA checkpoint dir listed in its manifest."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from glassbox_workloads.flax_models import tiny_config

    cfg = tiny_config("llama", vocab_size=259, hidden_size=32, intermediate_size=64, num_kv_heads=2,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    hf = {k: v for k, v in cfg.to_hf().items() if k not in ("model_type", "architectures")}
    torch.manual_seed(0)
    tm = transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf)).eval()
    run = root.sub(f"default/pretrainrun/{name}-abcdef12")
    tm.save_pretrained(tmp_path / "hf")
    for f in sorted((tmp_path / "hf").iterdir()):
        run.put_file(f"checkpoints/00000007/{f.name}", f)
    m = Manifest(kind="PretrainRun", name=name, namespace="default", uid="abcdef12")
    run.write_json("manifest.json", m.with_checkpoint(CheckpointEntry(step=7, tokens=0, path="checkpoints/00000007")).to_json())
    return tm, run


def spec(**over):
    base = {
        "model": {"fromRun": {"kind": "PretrainRun", "name": "tiny-pt", "checkpoint": "latest"}},
        "data": {"train": {"uri": str(DATA / "instructions-train.jsonl")},
                 "eval": {"uri": str(DATA / "instructions-eval.jsonl"), "limit": 4},
                 "maxSourceLength": 48, "maxTargetLength": 8},
        "recipe": {"name": "causal-lm"},
        "sharding": {"modelShards": 1},
        "training": {"perDeviceBatchSize": 4, "maxSteps": 3, "learningRate": 1e-3, "checkpointEvery": 2},
        "resources": {"backend": "local"},
    }
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return ShardedFinetuneSpec.model_validate(base)


def test_a_published_hf_llama_checkpoint_resolves_and_matches_torch_logits(tmp_path):
    import torch

    from glassbox_workloads.finetune.setup import resolve_model_source
    from glassbox_workloads.flax_models import build_model
    from glassbox_workloads.flax_models.hf import load_pretrained

    root = open_store(tmp_path / "store")
    tm, _ = publish_pretrain_run(root, tmp_path)
    src = resolve_model_source(spec(), root)  # fromRun -> the source run's manifest -> its checkpoint
    assert src.description == "PretrainRun/tiny-pt@step-7"
    cfg, params = load_pretrained(src.store, src.prefix)
    ids = np.random.RandomState(0).randint(3, 259, (2, 12))
    fl = np.asarray(build_model(cfg).apply({"params": params}, ids))
    with torch.no_grad():
        tl = tm(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(fl, tl, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_causal_lm_finetune_starts_from_a_published_hf_llama_checkpoint(tmp_path):
    import torch
    import transformers

    from glassbox_workloads import finetune

    root = open_store(tmp_path / "store")
    tm, _ = publish_pretrain_run(root, tmp_path)
    ids = np.random.RandomState(0).randint(3, 259, (2, 12))
    with torch.no_grad():
        tl = tm(torch.tensor(ids)).logits.numpy()
    run_store = root.sub("default/shardedfinetune/ft-1234abcd")
    res = finetune.run(spec(), run_store, root=root, name="ft", uid="1234abcd")
    assert res.steps == 3 and res.resumed_from is None
    m = read_manifest(run_store)
    assert m.state == "completed" and [c.step for c in m.checkpoints] == [2, 3]
    assert m.checkpoints[-1].evals["eval_loss"] > 0
    assert np.isfinite(res.history[-1]["loss"])
    # the operator's ShardedFinetune home reads the shard count from the manifest's final block
    from glassbox_operator.kinds.shardedfinetune import ShardedFinetuneHome

    assert m.final["modelShards"] == 1
    assert ShardedFinetuneHome().progress(None, m, run_store.uri())["modelShards"] == 1
    # the finetuned weights are published in HF layout too: transformers loads them
    final = Path(tmp_path / "store" / run_store.uri().split("/store/", 1)[1] / "checkpoints/00000003")
    tuned = transformers.LlamaForCausalLM.from_pretrained(final).eval()
    with torch.no_grad():
        assert not np.allclose(tuned(torch.tensor(ids)).logits.numpy(), tl, atol=1e-3)  # it trained


@pytest.mark.slow
def test_a_rerun_resumes_from_the_latest_checkpoint(tmp_path):
    from glassbox_workloads import finetune

    root = open_store(tmp_path / "store")
    publish_pretrain_run(root, tmp_path)
    run_store = root.sub("default/shardedfinetune/ft-resume00")
    first = finetune.run(spec(training={"maxSteps": 2, "checkpointEvery": 2}), run_store, root=root, name="ft")
    assert first.steps == 2
    # the manifest said completed; a longer run of the same directory continues from step 2
    run_store.write_json("manifest.json", read_manifest(run_store).model_copy(update={"state": "running"}).to_json())
    second = finetune.run(spec(training={"maxSteps": 4, "checkpointEvery": 2}), run_store, root=root, name="ft")
    assert second.resumed_from == 2 and second.steps == 4
    assert [h["step"] for h in second.history] == [3, 4]
    assert [c.step for c in read_manifest(run_store).checkpoints] == [2, 4]
    again = finetune.run(spec(training={"maxSteps": 4}), run_store, root=root, name="ft")
    assert again.already_complete


def run_plan(*args, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "workloads"), str(ROOT / "api"), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "glassbox_workloads.plan_cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout, time.perf_counter() - t0


def test_plan_of_the_tiny_example_on_8_simulated_devices():
    out, _ = run_plan("--spec", "examples/finetune-tiny.yaml", "--json",
                      env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
    plan = json.loads(out)
    assert plan["devices"] == 8 and plan["modelShards"] == 1 and plan["reason"].startswith("auto:")
    rows = {r["path"]: r for r in plan["params"]}
    assert rows["model/layers_0/self_attn/q_proj/kernel"]["shape"] == [64, 64]
    table, _ = run_plan("--spec", "examples/finetune-tiny.yaml")
    assert "model/layers_1/mlp/down_proj/kernel" in table and "modelShards:  1" in table


def test_plan_of_the_7b_tpu_example_picks_shards_from_device_memory_in_seconds(tmp_path):
    from glassbox_workloads.flax_models import ModelConfig

    store = open_store(tmp_path / "store")
    run = store.sub("llm-research/pretrainrun/amber-7b-0123abcd")
    cfg = ModelConfig(architecture="llama", vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                      num_layers=32, num_heads=32, max_position_embeddings=2048)
    run.write_json("checkpoints/00001000/config.json", cfg.to_hf())  # the plan reads no weights
    m = Manifest(kind="PretrainRun", name="amber-7b", namespace="llm-research", uid="0123abcd")
    run.write_json("manifest.json", m.with_checkpoint(CheckpointEntry(step=1000, tokens=0, path="checkpoints/00001000")).to_json())
    out, seconds = run_plan("--spec", "examples/finetune-tpu.yaml", "--json", "--store", str(tmp_path / "store"))
    plan = json.loads(out)
    assert plan["devices"] == 16 and plan["pool"] == "tpu-v5e-16"
    assert plan["modelShards"] == 16 and "16.00 GiB" in plan["reason"]
    assert 6.7e9 < plan["model"]["parameters"] < 6.8e9
    rows = {r["path"]: r for r in plan["params"]}
    assert rows["model/layers_31/mlp/down_proj/kernel"]["spec"] == "(mp, None)"
    assert rows["model/layers_31/mlp/down_proj/kernel"]["bytesPerDevice"] == 11008 * 4096 * 4 // 16
    assert plan["totals"]["stateBytesPerDevice"] <= 0.75 * 16 * 2**30
    assert seconds < 60


@pytest.mark.slow
def test_soft_q_finetune_from_a_spec_publishes_and_resumes_its_target_network(tmp_path):
    from glassbox_workloads import finetune
    from glassbox_workloads.recipes.rewards import vowel_share

    assert vowel_share([""], ["aab", ""]) == [100.0 * 2 / 3, 0.0]
    data = tmp_path / "targets.jsonl"
    data.write_text("".join(json.dumps({"prompt": "w", "target": t}) + "\n" for t in ["banana", "kiwi", "fig", "plum"] * 4))
    s = ShardedFinetuneSpec.model_validate({
        "model": {"architecture": "gpt2", "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 1,
                                                     "numHeads": 2, "maxPositionEmbeddings": 32}},
        "data": {"train": {"uri": str(data)}, "eval": {"uri": str(data), "limit": 4},
                 "maxSourceLength": 8, "maxTargetLength": 8},
        "recipe": {"name": "soft-q", "softQ": {"rewardFn": "glassbox_workloads.recipes.rewards:vowel_share",
                                               "tau": 0.5, "topK": 20, "rewardRange": {"min": -5, "max": 5}}},
        "training": {"perDeviceBatchSize": 4, "maxSteps": 2, "checkpointEvery": 1, "learningRate": 1e-3},
        "resources": {"backend": "local"},
    })
    root = open_store(tmp_path / "store")
    run_store = root.sub("default/shardedfinetune/sq-00000000")
    res = finetune.run(s, run_store, root=root, name="sq")
    m = read_manifest(run_store)
    assert res.steps == 2 and [c.step for c in m.checkpoints] == [1, 2]
    assert "reward" in m.checkpoints[-1].evals
    index = json.loads((tmp_path / "store" / "default/shardedfinetune/sq-00000000/checkpoints/00000002/sharded/index.json").read_text())
    assert any(k.startswith("extra/target/") for k in index["arrays"])  # the target network is saved
    run_store.write_json("manifest.json", m.model_copy(update={"state": "running"}).to_json())
    s3 = s.model_copy(update={"training": s.training.model_copy(update={"max_steps": 3})})
    again = finetune.run(s3, run_store, root=root, name="sq")
    assert again.resumed_from == 2 and again.steps == 3
