"""backend ray: the entrypoint on a Ray head fans out to Ray Train's TorchTrainer (2 gloo workers)
and the run is published exactly as under torchrun."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from glassbox_api.manifest import read_manifest, read_run_record
from glassbox_api.store import LocalStore
from pretrain_tiny import tiny_raw

ray = pytest.importorskip("ray", reason="ray[train] is not installed (the ray extra)")


@pytest.mark.slow
def test_ray_backend_runs_two_torch_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import yaml

    from glassbox_workloads.__main__ import main

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("GLASSBOX_LAUNCHER", "ray")
    monkeypatch.setenv("GLASSBOX_RAY_STORAGE", str(tmp_path / "ray"))
    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "PretrainRun", "metadata": {"name": "on-ray"},
           "spec": tiny_raw(training={"maxSteps": 4, "gradientAccumulationSteps": 1, "warmupSteps": 1},
                            checkpoint={"everySteps": 2}, resources={"backend": "ray", "workers": 2})}
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump(doc))
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"RAY_AUTH_MODE": "disabled"}})
    try:
        assert main(["pretrainrun", "--spec", str(f), "--store", str(tmp_path / "s"), "--run-id", "ray00001"]) == 0
    finally:
        ray.shutdown()
    run = LocalStore(tmp_path / "s").sub("default/pretrainrun/on-ray-ray00001")
    m = read_manifest(run)
    assert [c.step for c in m.checkpoints] == [2, 4] and m.state == "completed"
    assert read_run_record(run).world_size == 2
    state = json.loads((run.root / m.latest.path / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["global_batch"] == 8
    assert "completed 4 steps" in capsys.readouterr().out


@pytest.mark.parametrize("accelerator,force_cpu,cluster_gpus,expect", [
    ("h100", False, 16, True),    # a GPU pool whose nodes registered their GPUs with Ray
    ("real", False, 0, False),    # a CPU pool named as the accelerator: CPU workers, not a wait for GPUs
    ("h100", True, 16, False),    # forced onto CPU
    (None, False, 8, False),      # no accelerator asked for
])
def test_ray_workers_ask_for_gpus_only_when_an_accelerator_is_named_and_the_cluster_has_gpus(
        accelerator, force_cpu, cluster_gpus, expect) -> None:
    from types import SimpleNamespace

    from glassbox_workloads.pretrain.launch_ray import wants_gpus

    resource = SimpleNamespace(spec=SimpleNamespace(resources=SimpleNamespace(accelerator=accelerator)))
    assert wants_gpus(resource, SimpleNamespace(force_cpu=force_cpu), cluster_gpus) is expect
