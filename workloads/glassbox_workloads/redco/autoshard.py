"""`modelShards: auto`: the smallest n_model_shards whose training state fits a device.

Pure functions of (parameter shapes, device count, per-device memory): no devices are touched, so
the operator's `glassbox plan` and the workload agree on the choice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from .sharding import state_bytes_per_device

GiB = 1024**3

# Per-device memory of common accelerators (HBM per chip / GPU), in bytes.
ACCELERATOR_MEMORY: dict[str, int] = {
    "h100": 80 * GiB,
    "h200": 141 * GiB,
    "a100": 80 * GiB,
    "a100-80g": 80 * GiB,
    "a100-40g": 40 * GiB,
    "l4": 24 * GiB,
    "a10g": 24 * GiB,
    "t4": 16 * GiB,
    "v100": 16 * GiB,
    "tpu-v4": 32 * GiB,
    "tpu-v5e": 16 * GiB,
    "tpu-v5p": 95 * GiB,
    "tpu-v6e": 32 * GiB,
}
# Chips per host of TPU slices and per node of GPU pools (used when a spec leaves it unset).
DEVICES_PER_HOST: dict[str, int] = {"tpu-v4": 4, "tpu-v5e": 4, "tpu-v5p": 4, "tpu-v6e": 4}
DEFAULT_GPUS_PER_NODE = 8

# Part of device memory the training state may take; the rest is left for activations, XLA
# workspace and fragmentation (a state that fills a device to the byte does not train).
DEFAULT_STATE_FRACTION = 0.75


@dataclass(frozen=True)
class Pool:
    """What the plan needs to know about a node pool."""

    name: str
    device_memory: int
    devices_per_host: int
    slice_chips: Optional[int] = None  # tpu-v5e-16 -> 16


def pool_info(accelerator: Optional[str], host_memory: Optional[int] = None) -> Pool:
    """Pool facts from its name: 'h100', 'tpu-v5e-16' (a 16-chip slice), or None/'cpu' (host RAM)."""
    if not accelerator or accelerator == "cpu":
        mem = host_memory if host_memory is not None else _host_memory()
        return Pool("cpu", mem, 1)
    name = accelerator.lower()
    m = re.fullmatch(r"(tpu-v\d+[a-z]*)(?:-(\d+))?", name)
    if m:
        family, chips = m.group(1), m.group(2)
        if family not in ACCELERATOR_MEMORY:
            raise ValueError(f"unknown TPU generation {family!r}; known: {sorted(k for k in ACCELERATOR_MEMORY if k.startswith('tpu'))}")
        return Pool(name, ACCELERATOR_MEMORY[family], DEVICES_PER_HOST.get(family, 4), int(chips) if chips else None)
    for key in sorted(ACCELERATOR_MEMORY, key=len, reverse=True):  # 'a100-40g' before 'a100'
        if name == key or name.startswith(key + "-") or name.startswith(key + "_"):
            return Pool(name, ACCELERATOR_MEMORY[key], DEFAULT_GPUS_PER_NODE)
    raise ValueError(f"unknown accelerator {accelerator!r}; known: {sorted(ACCELERATOR_MEMORY)} or cpu")


def _host_memory() -> int:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * GiB


@dataclass(frozen=True)
class AutoChoice:
    """The chosen n_model_shards and why."""

    n_model_shards: int
    fits: bool
    bytes_per_device: int
    budget_bytes: int
    reason: str
    tried: tuple[tuple[int, int], ...]  # (n, bytes per device) for each candidate looked at


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def choose_model_shards(
    params: Any,
    n_devices: int,
    device_memory: int,
    *,
    optimizer_slots: int = 2,
    param_copies: int = 0,
    state_fraction: float = DEFAULT_STATE_FRACTION,
) -> AutoChoice:
    """Smallest divisor n of n_devices whose params + grads + optimizer state fit a device.

    `params` holds arrays or jax.ShapeDtypeStruct; `optimizer_slots` counts f32 copies per
    parameter (2 for Adam); `param_copies` counts extra param-shaped trees (a soft-Q target net).
    """
    budget = int(device_memory * state_fraction)
    tried: list[tuple[int, int]] = []
    for n in divisors(n_devices):
        need = state_bytes_per_device(params, n, optimizer_slots, param_copies)["total"]
        tried.append((n, need))
        if need <= budget:
            why = (
                f"n_model_shards={n}: params+grads+optimizer state need {_gib(need)} per device, within "
                f"{state_fraction:.0%} of {_gib(device_memory)} device memory ({_gib(budget)})"
            )
            if n > 1:
                prev = tried[-2]
                why += f"; n={prev[0]} would need {_gib(prev[1])}"
            return AutoChoice(n, True, need, budget, why, tuple(tried))
    n, need = tried[-1]
    why = (
        f"does not fit: even n_model_shards={n} (all {n_devices} devices) needs {_gib(need)} per device, "
        f"over {state_fraction:.0%} of {_gib(device_memory)}; use a larger pool or more workers"
    )
    return AutoChoice(n, False, need, budget, why, tuple(tried))


def _gib(b: int) -> str:
    return f"{b / GiB:.2f} GiB" if b >= GiB // 100 else f"{b / 1024**2:.2f} MiB"
