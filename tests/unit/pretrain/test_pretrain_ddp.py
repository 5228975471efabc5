"""Data parallelism over gloo: 2 processes on the same global batch give the loss of 1 process, and
FSDP2 agrees with both. Each worker is the real entry (run_pretrain) publishing to its own store."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from pretrain_tiny import resource, tiny_spec

STEPS = 6


def spec_for(world: int, strategy: str = "ddp"):
    # Global batch 8 in every case: micro-batch 4 x accumulation (2 // world) x world.
    return tiny_spec(training={"maxSteps": STEPS, "gradientAccumulationSteps": 2 // world, "strategy": strategy},
                     checkpoint={"everySteps": 3})


class Interrupted(Exception):
    pass


def _stop_at(step: int):
    def hook(s, stats):
        if s == step:
            raise Interrupted(f"stopped after step {s}")
    return hook


def _worker(rank: int, world: int, port: int, root: str, strategy: str, stop_at: int = 0,
            accum_one: bool = False) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        sp = spec_for(2 if accum_one else world, strategy)
        run_pretrain(resource(sp), LocalStore(root),
                     hooks=TrainHooks(quiet=True, on_step=_stop_at(stop_at) if stop_at else None))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, root: Path, strategy: str = "ddp"):
    if world == 1:
        run_pretrain(resource(spec_for(1)), LocalStore(root), hooks=TrainHooks(quiet=True))
    else:
        mp.start_processes(_worker, args=(world, free_port(), str(root), strategy), nprocs=world,
                           start_method="spawn", join=True)
    run = LocalStore(root).sub(resource(spec_for(world, strategy)).run_prefix)
    m = read_manifest(run)
    return m, load_file(run.root / m.latest.path / "model.safetensors")


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return launch(1, tmp_path_factory.mktemp("one"))


def _compare(single, other, rtol: float) -> None:
    m1, w1 = single
    m2, w2 = other
    assert [c.step for c in m2.checkpoints] == [c.step for c in m1.checkpoints] == [3, 6]
    for a, b in zip(m1.checkpoints, m2.checkpoints):
        assert b.loss == pytest.approx(a.loss, rel=rtol)
        assert b.tokens == a.tokens and b.data.order_digest == a.data.order_digest
        assert b.evals["perplexity"] == pytest.approx(a.evals["perplexity"], rel=1e-3)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-3, atol=1e-4)


def test_ddp_two_processes_match_one(single, tmp_path: Path) -> None:
    _compare(single, launch(2, tmp_path / "two"), rtol=1e-5)


@pytest.mark.slow
def test_fsdp_two_processes_match_one(single, tmp_path: Path) -> None:
    _compare(single, launch(2, tmp_path / "fsdp", "fsdp"), rtol=1e-5)


@pytest.mark.slow
def test_fsdp_checkpoint_resumes_on_one_process(single, tmp_path: Path) -> None:
    """Checkpointed by 2 FSDP workers, finished by 1 process: the world size changed, the global
    batch (kept by more accumulation), the data order and the result did not."""
    root = tmp_path / "shrink"
    with pytest.raises(Exception, match="stopped after step 4"):
        mp.start_processes(_worker, args=(2, free_port(), str(root), "fsdp", 4, True), nprocs=2,
                           start_method="spawn", join=True)
    sp = spec_for(2, "fsdp")  # the same spec: accumulation 1 was written for 2 workers
    run = LocalStore(root).sub(resource(sp).run_prefix)
    assert [c.step for c in read_manifest(run).checkpoints] == [3]
    res = run_pretrain(resource(sp), LocalStore(root), hooks=TrainHooks(quiet=True))
    assert res.resumed_from == 3
    m = read_manifest(run)
    _compare(single, (m, load_file(run.root / m.latest.path / "model.safetensors")), rtol=1e-5)
