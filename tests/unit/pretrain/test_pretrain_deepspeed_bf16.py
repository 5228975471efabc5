"""DeepSpeed ZeRO-3 under bf16 (forced onto the CPU: 2 processes over gloo): checkpoints publish ZeRO's
fp32 master weights, not the module's bf16 copy, with config.json saying so; and a run interrupted
and resumed ends bit for bit where the uninterrupted one does, which needs the resume to restore
the fp32 master rather than re-deriving it from rounded weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from pretrain_tiny import resource, tiny_spec
from test_pretrain_ddp import _stop_at, free_port

pytest.importorskip("deepspeed", reason="deepspeed is not installed (the deepspeed extra)")
pytestmark = pytest.mark.slow

STEPS = 6


def spec(stage: int):
    # Global batch 8: micro-batch 4 x 2 workers; a checkpoint every 3 steps.
    return tiny_spec(training={"maxSteps": STEPS, "gradientAccumulationSteps": 1, "strategy": "deepspeed",
                               "zeroStage": stage, "precision": "bf16"},
                     checkpoint={"everySteps": 3}, analysis={"perplexity": True, "memorization": {"enabled": False}})


def _worker(rank: int, world: int, port: int, root: str, stage: int, stop_at: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        run_pretrain(resource(spec(stage)), LocalStore(root),
                     hooks=TrainHooks(quiet=True, cpu_bf16=True, on_step=_stop_at(stop_at) if stop_at else None))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def run_ds(root: Path, stage: int, stop_at: int = 0):
    mp.start_processes(_worker, args=(2, free_port(), str(root), stage, stop_at), nprocs=2, start_method="spawn",
                       join=True)
    run = LocalStore(root).sub(resource(spec(stage)).run_prefix)
    m = read_manifest(run)
    return m, run.root / m.latest.path


@pytest.fixture(scope="module")
def zero3(tmp_path_factory):
    return run_ds(tmp_path_factory.mktemp("zero3-bf16"), 3)


def test_zero3_bf16_checkpoint_publishes_the_fp32_master(zero3) -> None:
    m, ckpt = zero3
    assert [c.step for c in m.checkpoints] == [3, 6]
    w = load_file(ckpt / "model.safetensors")
    assert w and all(v.dtype == torch.float32 for v in w.values())
    # The bf16 module copy rounds every weight to 8 significant bits; the master does not.
    unrounded = [k for k, v in w.items() if v.dim() >= 1 and not torch.equal(v, v.bfloat16().float())]
    assert len(unrounded) >= len(w) // 2, sorted(set(w) - set(unrounded))
    assert json.loads((ckpt / "config.json").read_text())["dtype"] == "float32"


def test_zero3_bf16_resume_is_bit_for_bit(zero3, tmp_path: Path) -> None:
    root = tmp_path / "broken"
    with pytest.raises(Exception, match="stopped after step 4"):
        run_ds(root, 3, stop_at=4)
    run = LocalStore(root).sub(resource(spec(3)).run_prefix)
    assert [c.step for c in read_manifest(run).checkpoints] == [3]
    m, ckpt = run_ds(root, 3)
    assert [c.step for c in m.checkpoints] == [3, 6] and m.state == "completed"
    want, got = load_file(zero3[1] / "model.safetensors"), load_file(ckpt / "model.safetensors")
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert torch.equal(got[k], v), k
    assert [c.loss for c in m.checkpoints] == [c.loss for c in zero3[0].checkpoints]


def _check_exact_master(rank: int, stage: int) -> None:
    from glassbox_workloads.pretrain.strategy import DeepSpeedStrategy, DistInfo

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 4))
    exact = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(not torch.equal(v, v.bfloat16().float()) for v in exact.values())
    strat = DeepSpeedStrategy(model, spec(stage).training, DistInfo(), micro_batch=4, grad_accum=1, cpu_bf16=True)
    assert next(strat.eval_model.parameters()).dtype == torch.bfloat16
    state = strat.full_model_state()
    assert state.keys() == exact.keys()
    for k, v in exact.items():
        assert torch.equal(state[k], v), f"stage {stage}: {k} is not the fp32 weight it started from"


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_master_starts_from_the_exact_fp32_weights_at_every_stage(stage: int) -> None:
    """deepspeed.initialize casts the module to bf16 and derives its fp32 master from that copy;
    the strategy puts the exact fp32 weights back, and full_model_state returns them (one process,
    a group of one; a fresh process per stage, as DeepSpeed caches its groups per process)."""
    mp.start_processes(_check_exact_master, args=(stage,), nprocs=1, start_method="spawn", join=True)
