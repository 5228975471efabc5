"""backend ray: the entrypoint runs on the Ray head (KubeRay's RayJob) and fans the same worker
function out to `resources.workers` x accelerators Ray Train workers through TorchTrainer, which
builds the torch process group (NCCL on GPUs, gloo on CPUs) that run_pretrain then joins.

Retries belong to the operator (it resumes from the latest published checkpoint), so Ray Train's
own failure handling is off: a failed worker fails the job.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from glassbox_api.kinds.pretrainrun import PretrainRunSpec
from glassbox_api.podcontract import Env

from ..runtime.context import RunContext, TorchProcess
from ..runtime.spec import Resource


def ray_requested(resource: Resource[PretrainRunSpec], ctx: RunContext) -> bool:
    """Fan out through Ray when the resource asks for it, a Ray cluster is there (a Ray job's driver
    has RAY_ADDRESS; launcher "ray" starts a local one) and this is not already a worker.
    `glassbox run` of a ray resource on a laptop trains in-process instead."""
    if ctx.launcher == "local":
        return False
    return (resource.spec.resources.backend == "ray" and not ctx.torch.launched and not ctx.ray_worker
            and bool(ctx.ray_address or ctx.launcher == "ray"))


def wants_gpus(resource: Resource[PretrainRunSpec], ctx: RunContext, cluster_gpus: float) -> bool:
    """Ray Train workers ask for GPUs when the run names an accelerator and the Ray cluster has GPUs.
    The accelerator is the name of an operator node pool: one without GPUs (a CPU pool, such as the
    real test node's `real`) trains on CPU workers, as the Job backend does on a node without CUDA,
    instead of waiting for GPUs no node has. The driver runs on the head (no GPU of its own), so it
    asks Ray what the cluster's nodes registered."""
    return resource.spec.resources.accelerator is not None and not ctx.force_cpu and cluster_gpus > 0


def _worker_loop(config: dict[str, Any]) -> None:
    # Runs in every Ray Train worker: the process group exists; name this worker's place in it.
    import ray.train
    import yaml

    from glassbox_api.store import open_store

    from ..runtime.spec import load_resource_doc
    from .train import run_pretrain

    rt = ray.train.get_context()
    proc = TorchProcess(world_size=rt.get_world_size(), rank=rt.get_world_rank(), local_rank=rt.get_local_rank(),
                        launched=True)
    # For the libraries that read these themselves (DeepSpeed, torch.distributed's env:// init).
    os.environ.update({Env.RAY_WORKER: "1", "RANK": str(proc.rank), "WORLD_SIZE": str(proc.world_size),
                       "LOCAL_RANK": str(proc.local_rank)})
    ctx: RunContext = replace(config["ctx"], ray_worker=True, torch=proc, quiet=proc.rank != 0 or config["ctx"].quiet)
    resource = load_resource_doc(yaml.safe_load(config["doc"]), "PretrainRun", run_id=config["run_id"])
    result = run_pretrain(resource, open_store(config["store"]), ctx=ctx)
    # report() is a collective in Ray Train: every worker calls it, or the group waits forever.
    ray.train.report({"steps": result.steps, "final_loss": result.final_loss or float("nan")})


def launch(resource: Resource[PretrainRunSpec], doc_text: str, store_uri: str, ctx: RunContext) -> Any:
    """Start TorchTrainer with one worker per accelerator (or per worker pod on CPU) and wait."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    r = resource.spec.resources
    if not ray.is_initialized():
        ray.init(address=ctx.ray_address)
    use_gpu = wants_gpus(resource, ctx, ray.cluster_resources().get("GPU", 0))
    n = r.workers * ((r.accelerators_per_worker or 1) if use_gpu else 1)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"doc": doc_text, "run_id": resource.uid, "store": store_uri, "ctx": ctx},
        scaling_config=ScalingConfig(num_workers=n, use_gpu=use_gpu),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name=f"{resource.name}-{resource.uid[:8]}", failure_config=FailureConfig(max_failures=0),
                             storage_path=ctx.ray_storage),
    )
    return trainer.fit()
