"""World-size independence in real processes (DDP over gloo on CPU): 1, 2 and 4 workers on the same
global batch of 8 (4x2x1, 4x1x2, 2x1x4 as micro-batch x accumulation x workers) see the same
samples in the same order (the published order digests agree), train to the same losses and
weights, and a run checkpointed by 4 workers finishes on 2 with the same result."""

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
from test_pretrain_ddp import STEPS, _compare, _stop_at, free_port, launch

pytestmark = pytest.mark.slow


def spec4():
    return tiny_spec(training={"maxSteps": STEPS, "microBatchSize": 2, "gradientAccumulationSteps": 1},
                     checkpoint={"everySteps": 3})


def _worker(rank: int, world: int, port: int, root: str, stop_at: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        run_pretrain(resource(spec4()), LocalStore(root),
                     hooks=TrainHooks(quiet=True, on_step=_stop_at(stop_at) if stop_at else None))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch_spec4(world: int, root: Path, stop_at: int = 0):
    mp.start_processes(_worker, args=(world, free_port(), str(root), stop_at), nprocs=world, start_method="spawn",
                       join=True)
    run = LocalStore(root).sub(resource(spec4()).run_prefix)
    m = read_manifest(run)
    return m, load_file(run.root / m.latest.path / "model.safetensors")


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return launch(1, tmp_path_factory.mktemp("one"))


def test_one_two_and_four_workers_train_the_same_run(single, tmp_path: Path) -> None:
    two = launch(2, tmp_path / "two")
    four = launch_spec4(4, tmp_path / "four")
    _compare(single, two, rtol=1e-5)
    _compare(single, four, rtol=1e-5)
    digests = [[c.data.order_digest for c in m.checkpoints] for m in (single[0], two[0], four[0])]
    assert digests[0] == digests[1] == digests[2] and all(digests[0])
    assert [c.data.samples_end for c in four[0].checkpoints] == [24, 48]


def test_four_worker_checkpoint_finishes_on_two(single, tmp_path: Path) -> None:
    """4 workers x micro-batch 2 checkpoint at step 3; 2 workers resume with accumulation 2 (the
    global batch of 8 kept), on the same samples."""
    root = tmp_path / "shrink"
    with pytest.raises(Exception, match="stopped after step 4"):
        launch_spec4(4, root, stop_at=4)
    run = LocalStore(root).sub(resource(spec4()).run_prefix)
    assert [c.step for c in read_manifest(run).checkpoints] == [3]
    m, w = launch_spec4(2, root)
    assert [c.step for c in m.checkpoints] == [3, 6] and m.state == "completed"
    _compare(single, (m, w), rtol=1e-5)
