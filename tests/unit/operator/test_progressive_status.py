"""A progressive ShardedFinetune trains its stages in one run: status.progress.stage says which one
is in training (from the manifest's StagePosition, through the kind's home), and the Running
message carries it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from glassbox_api.manifest import CheckpointEntry, Manifest, StagePosition
from glassbox_operator.render.common import ChildState
from glassbox_operator.status import Observation, compute, plan_of

from opkit import example, resource

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
ART = {"runUri": "s3://b/ns/shardedfinetune/pg-1234abcd", "manifestUri": "s3://b/ns/shardedfinetune/pg-1234abcd/manifest.json"}


def _manifest(*stage_steps: tuple[int, int], state: str = "running") -> Manifest:
    """Checkpoints of a 2-stage run of 6 steps per stage: (stage, its step) each."""
    cps = [CheckpointEntry(step=(k - 1) * 6 + s, tokens=1, loss=1.0, path=f"stages/{k}/checkpoints/{s:08d}",
                           stage=StagePosition(index=k, count=2, step=s, steps=6)) for k, s in stage_steps]
    return Manifest(total_steps=12, checkpoints=cps, state=state)


@pytest.mark.parametrize("published,state,stage", [
    ([(1, 2)], "running", "1/2"),
    ([(1, 2), (1, 6)], "running", "2/2"),  # stage 1 ended: stage 2 is in training
    ([(1, 6), (2, 4)], "running", "2/2"),
    ([(1, 6), (2, 6)], "completed", "2/2"),
])
def test_progress_reports_the_stage_in_training(published, state, stage):
    res = resource(example("finetune-progressive-tiny.yaml"))
    old = {"phase": "Running"}
    out = compute(res, old, plan_of(res, old), Observation(workload=ChildState("Running", "PodsRunning"), artifacts=ART),
                  _manifest(*published, state=state), NOW)
    prog = out.status["progress"]
    assert prog["stage"] == stage
    assert f"stage {stage}, step {prog['step']}" in out.status["message"]
    res.info.status.model_validate(out.status)


def test_a_one_model_finetune_has_no_stage():
    res = resource(example("finetune-progressive-tiny.yaml"))
    m = Manifest(total_steps=4, checkpoints=[CheckpointEntry(step=2, tokens=1, path="checkpoints/00000002")])
    out = compute(res, {"phase": "Running"}, plan_of(res, {}), Observation(workload=ChildState("Running"), artifacts=ART), m, NOW)
    assert "stage" not in out.status["progress"] and out.status["message"] == "running (attempt 0, step 2)"


def test_glassbox_checkpoints_shows_each_checkpoints_stage():
    from rich.console import Console

    from glassbox_api.store import open_store
    from glassbox_operator.cli_artifacts import checkpoints_table

    console = Console(width=200, record=True)
    console.print(checkpoints_table(open_store("/tmp"), _manifest((1, 6), (2, 4))))
    text = console.export_text()
    assert "stage" in text and "1/2 step 6" in text and "2/2 step 4" in text
