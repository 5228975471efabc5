"""The ('dp', 'mp') device mesh, and multi-host start-up from a JobSet pod's environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

DEFAULT_COORDINATOR_PORT = 8476


def make_mesh(n_model_shards: int, devices: Optional[Sequence] = None):
    """Devices reshaped to (n / n_model_shards, n_model_shards) with axes ('dp', 'mp').

    On TPU/GPU the topology-aware layout of mesh_utils keeps each 'mp' group on neighbouring chips
    (the all-reduces of tensor parallelism are the chattiest); elsewhere a plain reshape.
    """
    import jax
    from jax.sharding import Mesh

    devs = list(devices) if devices is not None else jax.devices()
    n = len(devs)
    if n_model_shards < 1 or n % n_model_shards:
        raise ValueError(f"n_model_shards={n_model_shards} must divide the {n} devices")
    shape = (n // n_model_shards, n_model_shards)
    if devices is None and devs[0].platform in ("tpu", "gpu"):
        try:
            from jax.experimental import mesh_utils

            return Mesh(mesh_utils.create_device_mesh(shape, devs), ("dp", "mp"))
        except (ValueError, NotImplementedError, AssertionError):  # odd topologies: plain order
            pass
    return Mesh(np.asarray(devs, dtype=object).reshape(shape), ("dp", "mp"))


@dataclass(frozen=True)
class DistributedInit:
    """Arguments for jax.distributed.initialize."""

    coordinator_address: str
    num_processes: int
    process_id: int

    def kwargs(self) -> dict:
        return {"coordinator_address": self.coordinator_address, "num_processes": self.num_processes,
                "process_id": self.process_id}


def distributed_init_args(env: Mapping[str, str], num_processes: Optional[int] = None) -> Optional[DistributedInit]:
    """jax.distributed arguments for this pod, or None for a single-process run.

    The pod contract (the jobset renderer sets these):
    - GLASSBOX_NUM_PROCESSES (or the `num_processes` argument, from spec.resources.workers);
    - JOB_COMPLETION_INDEX: the pod's index in its Indexed Job (set by Kubernetes);
    - JOBSET_NAME and REPLICATED_JOB_NAME (downward API from the jobset.sigs.k8s.io annotations):
      the coordinator is pod 0 of job 0, reachable through the JobSet's headless service as
      `<jobset>-<replicatedjob>-0-0.<jobset>` (JobSet's subdomain defaults to the JobSet name;
      GLASSBOX_JOBSET_SUBDOMAIN overrides it);
    - JOB_INDEX and GLASSBOX_PODS_PER_JOB when a replicated job has several Jobs (one per TPU
      slice): process id = JOB_INDEX * pods_per_job + JOB_COMPLETION_INDEX;
    - GLASSBOX_COORDINATOR_ADDRESS (host:port) overrides the derived address;
      GLASSBOX_COORDINATOR_PORT the port (default 8476).
    """
    n = int(env.get("GLASSBOX_NUM_PROCESSES") or num_processes or 1)
    if n <= 1:
        return None
    port = int(env.get("GLASSBOX_COORDINATOR_PORT") or DEFAULT_COORDINATOR_PORT)
    address = env.get("GLASSBOX_COORDINATOR_ADDRESS")
    if not address:
        jobset, rjob = env.get("JOBSET_NAME"), env.get("REPLICATED_JOB_NAME")
        if not jobset or not rjob:
            raise ValueError(
                f"{n} processes need a coordinator: set JOBSET_NAME and REPLICATED_JOB_NAME "
                "(the jobset backend does) or GLASSBOX_COORDINATOR_ADDRESS"
            )
        subdomain = env.get("GLASSBOX_JOBSET_SUBDOMAIN") or jobset
        address = f"{jobset}-{rjob}-0-0.{subdomain}:{port}"
    if "JOB_COMPLETION_INDEX" not in env:
        raise ValueError("JOB_COMPLETION_INDEX is not set: multi-host runs need an Indexed Job per replicated job")
    pid = int(env.get("JOB_INDEX") or 0) * int(env.get("GLASSBOX_PODS_PER_JOB") or 1) + int(env["JOB_COMPLETION_INDEX"])
    if not 0 <= pid < n:
        raise ValueError(f"process id {pid} is outside 0..{n - 1}")
    return DistributedInit(address, n, pid)


def initialize_distributed(num_processes: Optional[int] = None, env: Optional[Mapping[str, str]] = None) -> bool:
    """Call jax.distributed.initialize when the pod is one of several; True if it did."""
    args = distributed_init_args(os.environ if env is None else env, num_processes)
    if args is None:
        return False
    import jax

    jax.distributed.initialize(**args.kwargs())
    return True
