"""Which pool a ShardedFinetune run plans for: an accelerator pool by its hardware, any other
operator pool name (the real test node's `real` CPU pool) by the devices the process has."""

from __future__ import annotations

from types import SimpleNamespace

from glassbox_workloads.finetune.workload import run_pool
from glassbox_workloads.redco.autoshard import ACCELERATOR_MEMORY


def _jax_on_cpu() -> SimpleNamespace:
    device = SimpleNamespace(platform="cpu")
    return SimpleNamespace(devices=lambda: [device], local_device_count=lambda: 1)


def test_an_accelerator_pool_plans_by_its_hardware() -> None:
    pool = run_pool(SimpleNamespace(backend="jobset", accelerator="h100"), _jax_on_cpu())
    assert pool.name == "h100" and pool.device_memory == ACCELERATOR_MEMORY["h100"]


def test_a_pool_name_that_is_no_hardware_plans_from_the_devices_present() -> None:
    # Before: "unknown accelerator 'real'" and the workload exited at once on the real node.
    pool = run_pool(SimpleNamespace(backend="jobset", accelerator="real"), _jax_on_cpu())
    assert pool.name == "cpu" and pool.devices_per_host == 1 and pool.device_memory > 0


def test_the_local_backend_plans_from_the_devices_present() -> None:
    pool = run_pool(SimpleNamespace(backend="local", accelerator="h100"), _jax_on_cpu())
    assert pool.name == "cpu"
