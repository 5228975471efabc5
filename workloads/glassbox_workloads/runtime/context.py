"""RunContext: everything a workload learns from its command line and environment, read once.

The entrypoint (`python -m glassbox_workloads`) builds it and passes it down; nothing else in the
workloads reads os.environ. The names are the pod contract's (glassbox_api.podcontract.Env).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from glassbox_api.podcontract import JAX_COORDINATOR_PORT, Env

from .faults import Faults

DEFAULT_RAY_STORAGE = "/tmp/ray-results"


def _int(env: Mapping[str, str], name: str) -> Optional[int]:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str) -> Optional[float]:
    raw = env.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class TorchProcess:
    """This process's place in a torch process group, as torchrun or Ray Train describe it."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    launched: bool = False
    """True when a launcher (torchrun, Ray Train) set WORLD_SIZE: this is one of its workers."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TorchProcess":
        return cls(world_size=_int(env, "WORLD_SIZE") or 1, rank=_int(env, "RANK") or 0,
                   local_rank=_int(env, "LOCAL_RANK") or 0, launched="WORLD_SIZE" in env)


@dataclass(frozen=True)
class JaxProcess:
    """What a multi-host JAX pod needs to find its coordinator (the JobSet renderer sets these)."""

    num_processes: Optional[int] = None
    """Env.NUM_PROCESSES; None: take spec.resources.workers."""
    pods_per_job: int = 1
    job_index: int = 0
    job_completion_index: Optional[int] = None
    jobset_name: Optional[str] = None
    replicated_job_name: Optional[str] = None
    jobset_subdomain: Optional[str] = None
    coordinator_address: Optional[str] = None
    coordinator_port: int = JAX_COORDINATOR_PORT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "JaxProcess":
        return cls(
            num_processes=_int(env, Env.NUM_PROCESSES),
            pods_per_job=_int(env, Env.PODS_PER_JOB) or 1,
            job_index=_int(env, Env.JOB_INDEX) or 0,
            job_completion_index=_int(env, Env.JOB_COMPLETION_INDEX),
            jobset_name=env.get(Env.JOBSET_NAME) or None,
            replicated_job_name=env.get(Env.REPLICATED_JOB_NAME) or None,
            jobset_subdomain=env.get(Env.JOBSET_SUBDOMAIN) or None,
            coordinator_address=env.get(Env.COORDINATOR_ADDRESS) or None,
            coordinator_port=_int(env, Env.COORDINATOR_PORT) or JAX_COORDINATOR_PORT,
        )


@dataclass(frozen=True)
class RunContext:
    """One workload process: what to run, where to publish, and how this process is placed."""

    kind: str = ""
    """The resource kind, lower case (`pretrainrun`)."""
    spec_file: Optional[Path] = None
    """The resource file (`--spec`); relative dataset paths may resolve against its folder."""
    store: Optional[str] = None
    """Artifact store root (`--store`, else Env.STORE)."""
    run_id: Optional[str] = None
    """Run id (`--run-id`, else Env.RUN_ID); None: metadata.uid, else podcontract.run_id."""
    quiet: bool = False
    """No progress output (`--quiet`)."""
    log_level: str = "WARNING"
    """Env.LOG_LEVEL, or `--log-level`."""
    code_version: Optional[str] = None
    """Env.CODE_VERSION: recorded in run.json (None: the installed glassbox version)."""
    image: Optional[str] = None
    """Env.IMAGE: recorded in run.json."""
    staging_dir: Optional[str] = None
    """Env.STAGING_DIR: where checkpoints are written before upload (None: the temp dir)."""
    metrics_port: Optional[int] = None
    """Env.METRICS_PORT: serve Prometheus gauges there (None: no endpoint)."""
    peak_tflops: Optional[float] = None
    """Env.PEAK_TFLOPS: one device's peak, for MFU (None: a table by device name)."""
    force_cpu: bool = False
    """Env.FORCE_CPU: train on CPU even where an accelerator is visible."""
    launcher: Optional[str] = None
    """Env.LAUNCHER: "ray" starts a local Ray cluster, "local" never uses Ray, None decides by backend."""
    ray_worker: bool = False
    """Env.RAY_WORKER: this process is a Ray Train worker (it must not launch Ray again)."""
    ray_address: Optional[str] = None
    """RAY_ADDRESS: the Ray cluster a RayJob's driver talks to."""
    ray_storage: str = DEFAULT_RAY_STORAGE
    """Env.RAY_STORAGE: Ray Train's storage path."""
    stage: Optional[str] = None
    """Service kinds: `--stage train|serve` runs one stage; None runs both (glassbox run)."""
    host: Optional[str] = None
    """Service kinds: `--host` the model server binds (None: 127.0.0.1 locally, 0.0.0.0 in a pod)."""
    port: Optional[int] = None
    """Service kinds: `--port` of the model server (None: 8080; 0 picks a free port)."""
    model_dir: Optional[str] = None
    """Env.MODEL_DIR: where KServe's storage initializer put the served model (None: not in an InferenceService)."""
    openai_api_key: Optional[str] = None
    """OPENAI_API_KEY: bearer token for an external OpenAI-compatible generator endpoint."""
    torch: TorchProcess = field(default_factory=TorchProcess)
    jax: JaxProcess = field(default_factory=JaxProcess)
    faults: Faults = field(default_factory=Faults)
    """Test-only fault hooks (runtime.faults)."""

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **given: Any) -> "RunContext":
        """Read the environment (os.environ by default) once; `given` (command-line values that are
        not None) take precedence over it."""
        env = os.environ if env is None else env
        read = cls(
            store=env.get(Env.STORE) or None,
            run_id=env.get(Env.RUN_ID) or None,
            log_level=env.get(Env.LOG_LEVEL) or "WARNING",
            code_version=env.get(Env.CODE_VERSION) or None,
            image=env.get(Env.IMAGE) or None,
            staging_dir=env.get(Env.STAGING_DIR) or None,
            metrics_port=_int(env, Env.METRICS_PORT),
            peak_tflops=_float(env, Env.PEAK_TFLOPS),
            force_cpu=env.get(Env.FORCE_CPU) == "1",
            launcher=env.get(Env.LAUNCHER) or None,
            ray_worker=env.get(Env.RAY_WORKER) == "1",
            ray_address=env.get("RAY_ADDRESS") or None,
            ray_storage=env.get(Env.RAY_STORAGE) or DEFAULT_RAY_STORAGE,
            model_dir=env.get(Env.MODEL_DIR) or None,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            torch=TorchProcess.from_env(env),
            jax=JaxProcess.from_env(env),
            faults=Faults.from_env(env),
        )
        return replace(read, **{k: v for k, v in given.items() if v is not None})


__all__ = ["JaxProcess", "RunContext", "TorchProcess"]
