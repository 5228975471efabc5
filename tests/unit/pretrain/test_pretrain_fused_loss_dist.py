"""training.lossChunkTokens under every wrapper that allows it (2 workers over gloo): DDP, FSDP2 and
DeepSpeed ZeRO-2 with the fused chunked loss train what one process trains with the plain loss.
The fused loss takes the output weight outside the output layer's own forward, so each wrapper's
gradient hooks must still see its gradient: a wrapper that missed it would diverge here."""

from __future__ import annotations

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
from test_pretrain_ddp import STEPS, _compare, free_port, launch

pytestmark = pytest.mark.slow


def spec(strategy: str):
    training = {"maxSteps": STEPS, "gradientAccumulationSteps": 1, "strategy": strategy, "lossChunkTokens": 40}
    if strategy == "deepspeed":
        training["zeroStage"] = 2
    return tiny_spec(training=training, checkpoint={"everySteps": 3})


def _worker(rank: int, world: int, port: int, root: str, strategy: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        run_pretrain(resource(spec(strategy)), LocalStore(root), hooks=TrainHooks(quiet=True))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return launch(1, tmp_path_factory.mktemp("one"))  # the plain loss, one process


@pytest.mark.parametrize("strategy", ["ddp", "fsdp", "deepspeed"])
def test_fused_loss_on_two_workers_matches_plain_loss_on_one(single, tmp_path: Path, strategy: str) -> None:
    if strategy == "deepspeed":
        pytest.importorskip("deepspeed", reason="deepspeed is not installed (the deepspeed extra)")
    mp.start_processes(_worker, args=(2, free_port(), str(tmp_path), strategy), nprocs=2, start_method="spawn",
                       join=True)
    run = LocalStore(tmp_path).sub(resource(spec(strategy)).run_prefix)
    m = read_manifest(run)
    _compare(single, (m, load_file(run.root / m.latest.path / "model.safetensors")), rtol=1e-5)
