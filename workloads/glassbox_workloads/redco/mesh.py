"""The ('dp', 'mp') device mesh, and multi-host start-up from a JobSet pod's environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from glassbox_api.podcontract import JAX_COORDINATOR_PORT, Env

from ..runtime.context import JaxProcess

DEFAULT_COORDINATOR_PORT = JAX_COORDINATOR_PORT


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


def distributed_init_args(env: Union[JaxProcess, Mapping[str, str]],
                          num_processes: Optional[int] = None) -> Optional[DistributedInit]:
    """jax.distributed arguments for this pod, or None for a single-process run.

    The pod contract (glassbox_api.podcontract.Env; the jobset renderer sets these), read into a
    JaxProcess (RunContext.jax) or given as a mapping:
    - NUM_PROCESSES (or the `num_processes` argument, from spec.resources.workers);
    - JOB_COMPLETION_INDEX: the pod's index in its Indexed Job (set by Kubernetes);
    - JOBSET_NAME and REPLICATED_JOB_NAME (downward API from the jobset.sigs.k8s.io annotations):
      the coordinator is pod 0 of job 0, reachable through the JobSet's headless service as
      `<jobset>-<replicatedjob>-0-0.<jobset>` (JobSet's subdomain defaults to the JobSet name;
      JOBSET_SUBDOMAIN overrides it);
    - JOB_INDEX and PODS_PER_JOB when a replicated job has several Jobs (one per TPU slice):
      process id = JOB_INDEX * pods_per_job + JOB_COMPLETION_INDEX;
    - COORDINATOR_ADDRESS (host:port) overrides the derived address; COORDINATOR_PORT the port.
    """
    p = env if isinstance(env, JaxProcess) else JaxProcess.from_env(env)
    n = p.num_processes or num_processes or 1
    if n <= 1:
        return None
    address = p.coordinator_address
    if not address:
        if not p.jobset_name or not p.replicated_job_name:
            raise ValueError(
                f"{n} processes need a coordinator: set {Env.JOBSET_NAME} and {Env.REPLICATED_JOB_NAME} "
                f"(the jobset backend does) or {Env.COORDINATOR_ADDRESS}"
            )
        subdomain = p.jobset_subdomain or p.jobset_name
        address = f"{p.jobset_name}-{p.replicated_job_name}-0-0.{subdomain}:{p.coordinator_port}"
    if p.job_completion_index is None:
        raise ValueError(f"{Env.JOB_COMPLETION_INDEX} is not set: multi-host runs need an Indexed Job per replicated job")
    pid = p.job_index * p.pods_per_job + p.job_completion_index
    if not 0 <= pid < n:
        raise ValueError(f"process id {pid} is outside 0..{n - 1}")
    return DistributedInit(address, n, pid)


def initialize_distributed(proc: JaxProcess, num_processes: Optional[int] = None) -> bool:
    """Call jax.distributed.initialize when the pod is one of several; True if it did."""
    args = distributed_init_args(proc, num_processes)
    if args is None:
        return False
    import jax

    jax.distributed.initialize(**args.kwargs())
    return True
