"""Redco properties on 8 simulated CPU devices (each case in a fresh process, see multidevice.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def run_case(*cases: str, timeout: int = 600) -> str:
    env = dict(os.environ)
    paths = [str(ROOT / "workloads"), str(ROOT / "api"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, str(HERE / "multidevice.py"), *cases], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cases} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return proc.stdout


@pytest.mark.slow
def test_model_shards_1_2_4_match_unsharded_losses_and_grads_over_3_steps():
    run_case("equivalence")


def test_per_device_param_bytes_shrink_by_model_shards():
    run_case("memory")


def test_predictor_keeps_input_order_for_any_count():
    run_case("predictor_order")


def test_sharded_checkpoint_restores_onto_other_meshes():
    run_case("checkpoint_roundtrip")


@pytest.mark.slow
def test_gradient_accumulation_matches_one_big_batch():
    run_case("accumulation")
