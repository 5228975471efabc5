"""examples/pretrain-tiny.yaml is valid, runs offline on the stdlib corpus, and plans several
checkpoints (one per chunk) small enough for a laptop."""

from __future__ import annotations

from pathlib import Path

from glassbox_workloads.pretrain.config import TrainConfig
from glassbox_workloads.pretrain.data import DataPlan, prepare
from glassbox_workloads.runtime.spec import load_resource

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pretrain-tiny.yaml"


def test_tiny_example_plans_a_checkpoint_per_chunk() -> None:
    r = load_resource(EXAMPLE, "PretrainRun")
    assert r.name == "tiny-coder" and r.spec.model.architecture == "llama"
    data = prepare(r.spec.data)
    plan = DataPlan(data.manifest, TrainConfig(r.spec).global_batch, r.spec.training.max_steps)
    steps = plan.checkpoint_steps(r.spec.checkpoint.every_steps)
    assert len(steps) == r.spec.data.chunks == 4
    assert plan.total_steps * TrainConfig(r.spec).tokens_per_step < 150_000  # about a minute or two on 2 cores
    # The weights are the sources' proportions: (nearly) every sample of both is used.
    used = len(plan.train_samples)
    assert used >= 0.97 * (data.manifest["samples"] - len(plan.heldout_samples))
