"""SEEDS.md section 1: lr(0) = 0, lr(warmup) = peak, lr(end) = min; and the derived batch numbers."""

from __future__ import annotations

import pytest

from glassbox_workloads.pretrain.config import LRSchedule, TrainConfig
from pretrain_tiny import tiny_spec


@pytest.mark.parametrize("warmup,total", [(2000, 10000), (3, 12), (1, 2), (0, 5)])
def test_warmup_then_cosine(warmup: int, total: int) -> None:
    s = LRSchedule(peak=3e-4, minimum=3e-5, warmup=warmup, total=total)
    if warmup:
        assert s(0) == 0.0
    assert s(warmup) == pytest.approx(3e-4)
    assert s(total) == pytest.approx(3e-5)
    assert s(total + 10) == pytest.approx(3e-5)
    values = [s(i) for i in range(total + 1)]
    assert all(a <= b for a, b in zip(values[: warmup + 1], values[1 : warmup + 1]))  # rises
    assert all(a >= b for a, b in zip(values[warmup:], values[warmup + 1 :]))  # then only falls
    if total - warmup >= 2:
        mid = warmup + (total - warmup) / 2
        if mid == int(mid):
            assert s(int(mid)) == pytest.approx((3e-4 + 3e-5) / 2)


def test_amber_schedule_end_points() -> None:
    s = LRSchedule(3e-4, 3e-5, 2000, 100_000)
    assert (s(0), s(1000), s(2000), s(100_000)) == (0.0, pytest.approx(1.5e-4), pytest.approx(3e-4), pytest.approx(3e-5))


def test_derived_values_live_on_the_config() -> None:
    cfg = TrainConfig(tiny_spec(), world_size=2)
    assert cfg.global_batch == 4 * 2 * 2
    assert cfg.tokens_per_step == 16 * 32
    assert cfg.schedule(12)(3) == pytest.approx(3e-3)
    # Resuming on a different world size keeps the global batch by changing accumulation.
    one = TrainConfig(tiny_spec(), world_size=1)
    assert one.accum_for_global_batch(cfg.global_batch) == 4
    with pytest.raises(ValueError):
        TrainConfig(tiny_spec(), world_size=3).accum_for_global_batch(16)
