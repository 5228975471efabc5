"""backend ray: the entrypoint runs on the Ray head (KubeRay's RayJob) and fans the same worker
function out to `resources.workers` x accelerators Ray Train workers through TorchTrainer, which
builds the torch process group (NCCL on GPUs, gloo on CPUs) that run_pretrain then joins.

Retries belong to the operator (it resumes from the latest published checkpoint), so Ray Train's
own failure handling is off: a failed worker fails the job.
"""

from __future__ import annotations

import os
from typing import Any


def ray_requested(resource) -> bool:
    """Fan out through Ray when the resource asks for it, a Ray cluster is there (a Ray job's driver
    has RAY_ADDRESS; GLASSBOX_LAUNCHER=ray starts a local one) and this is not already a worker.
    `glassbox run` of a ray resource on a laptop trains in-process instead."""
    if os.environ.get("GLASSBOX_LAUNCHER") == "local":
        return False
    return (resource.spec.resources.backend == "ray" and "WORLD_SIZE" not in os.environ
            and os.environ.get("GLASSBOX_RAY_WORKER") != "1"
            and bool(os.environ.get("RAY_ADDRESS") or os.environ.get("GLASSBOX_LAUNCHER") == "ray"))


def _worker_loop(config: dict[str, Any]) -> None:
    # Runs in every Ray Train worker: the process group exists; name this worker's place in it.
    import ray.train
    import yaml

    from glassbox_api.store import open_store

    from ..runtime.spec import Resource, load_resource_doc
    from .train import TrainHooks, run_pretrain

    ctx = ray.train.get_context()
    os.environ.update(GLASSBOX_RAY_WORKER="1", RANK=str(ctx.get_world_rank()),
                      WORLD_SIZE=str(ctx.get_world_size()), LOCAL_RANK=str(ctx.get_local_rank()))
    resource: Resource = load_resource_doc(yaml.safe_load(config["doc"]), "PretrainRun", run_id=config["run_id"])
    result = run_pretrain(resource, open_store(config["store"]), hooks=TrainHooks(quiet=ctx.get_world_rank() != 0))
    # report() is a collective in Ray Train: every worker calls it, or the group waits forever.
    ray.train.report({"steps": result.steps, "final_loss": result.final_loss or float("nan")})


def launch(resource, doc_text: str, store_uri: str) -> Any:
    """Start TorchTrainer with one worker per accelerator (or per worker pod on CPU) and wait."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    r = resource.spec.resources
    gpus = r.accelerators_per_worker or 1
    use_gpu = r.accelerator is not None and os.environ.get("GLASSBOX_FORCE_CPU") != "1"
    n = r.workers * (gpus if use_gpu else 1)
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"doc": doc_text, "run_id": resource.uid, "store": store_uri},
        scaling_config=ScalingConfig(num_workers=n, use_gpu=use_gpu),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name=f"{resource.name}-{resource.uid[:8]}", failure_config=FailureConfig(max_failures=0),
                             storage_path=os.environ.get("GLASSBOX_RAY_STORAGE", "/tmp/ray-results")),
    )
    return trainer.fit()
