"""strategy deepspeed (ZeRO over gloo on CPU): 2 workers train what 1 process trains, a ZeRO run
interrupted and resumed ends bit-for-bit where the uninterrupted one does, and its checkpoints carry
the full name-keyed optimizer state, so they resume under another world size or strategy."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.resume_state import load_optimizer
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from pretrain_tiny import resource, tiny_spec
from test_pretrain_ddp import STEPS, _compare, _stop_at, free_port, launch

pytest.importorskip("deepspeed", reason="deepspeed is not installed (the deepspeed extra)")
pytestmark = pytest.mark.slow


def ds_spec(world: int, stage: int = 2, strategy: str = "deepspeed"):
    # Global batch 8 as in test_pretrain_ddp: micro-batch 4 x accumulation (2 // world) x world.
    training = {"maxSteps": STEPS, "gradientAccumulationSteps": 2 // world, "strategy": strategy}
    if strategy == "deepspeed":
        training["zeroStage"] = stage
    return tiny_spec(training=training, checkpoint={"everySteps": 3})


def _worker(rank: int, world: int, port: int, root: str, stage: int, stop_at: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        run_pretrain(resource(ds_spec(world, stage)), LocalStore(root),
                     hooks=TrainHooks(quiet=True, on_step=_stop_at(stop_at) if stop_at else None))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def run_ds(root: Path, world: int = 2, stage: int = 2, stop_at: int = 0):
    mp.start_processes(_worker, args=(world, free_port(), str(root), stage, stop_at), nprocs=world,
                       start_method="spawn", join=True)
    return published(root, ds_spec(world, stage))


def published(root: Path, spec):
    run = LocalStore(root).sub(resource(spec).run_prefix)
    m = read_manifest(run)
    return m, load_file(run.root / m.latest.path / "model.safetensors")


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return launch(1, tmp_path_factory.mktemp("one"))


@pytest.fixture(scope="module")
def zero2(tmp_path_factory):
    return run_ds(tmp_path_factory.mktemp("zero2"))


def test_zero2_two_workers_match_one_process(single, zero2) -> None:
    _compare(single, zero2, rtol=1e-5)


def test_zero2_resume_is_bit_for_bit(zero2, tmp_path: Path) -> None:
    root = tmp_path / "broken"
    with pytest.raises(Exception, match="stopped after step 4"):
        run_ds(root, stop_at=4)
    run = LocalStore(root).sub(resource(ds_spec(2)).run_prefix)
    assert [c.step for c in read_manifest(run).checkpoints] == [3]
    opt = load_optimizer(run.root / read_manifest(run).latest.path)
    assert len(opt["state"]) == len(zero2[1]) and {float(v["step"]) for v in opt["state"].values()} == {3.0}
    m, w = run_ds(root)
    assert [c.step for c in m.checkpoints] == [3, 6] and m.state == "completed"
    for k, v in zero2[1].items():
        assert torch.equal(w[k], v), k
    assert [c.loss for c in m.checkpoints] == [c.loss for c in zero2[0].checkpoints]


def test_zero2_checkpoint_resumes_on_one_process(single, zero2, tmp_path: Path) -> None:
    """Checkpointed by 2 ZeRO workers, finished by 1 process (still ZeRO, a group of one): the
    optimizer moments gathered from both partitions are what the one process continues from."""
    root = tmp_path / "shrink"
    with pytest.raises(Exception, match="stopped after step 4"):
        run_ds(root, stop_at=4)
    res = run_pretrain(resource(ds_spec(2)), LocalStore(root), hooks=TrainHooks(quiet=True))
    assert res.resumed_from == 3
    _compare(single, published(root, ds_spec(2)), rtol=1e-5)


def test_zero3_two_workers_match_one_process(single, tmp_path: Path) -> None:
    _compare(single, run_ds(tmp_path / "zero3", stage=3), rtol=1e-5)


def test_optimizer_state_of_another_model_is_refused() -> None:
    from glassbox_workloads.pretrain.strategy import DeepSpeedStrategy, DistInfo

    strat = DeepSpeedStrategy(torch.nn.Linear(4, 4), ds_spec(1).training, DistInfo(), micro_batch=4, grad_accum=2)
    try:
        with pytest.raises(ValueError, match="no entry for"):
            strat.load_optimizer_state({"state": {"other.weight": {"step": torch.tensor(1.0)}}})
        with pytest.raises(ValueError, match="different steps"):
            strat.load_optimizer_state({"state": {"a": {"step": torch.tensor(1.0)}, "b": {"step": torch.tensor(2.0)}}})
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def test_missing_deepspeed_names_the_field_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from glassbox_workloads.pretrain.strategy import DeepSpeedStrategy, DistInfo

    monkeypatch.setitem(sys.modules, "deepspeed", None)
    with pytest.raises(RuntimeError, match=r"spec.training.strategy deepspeed .*glassbox\[deepspeed\]"):
        DeepSpeedStrategy(torch.nn.Linear(2, 2), ds_spec(1).training, DistInfo(), micro_batch=1, grad_accum=1)
