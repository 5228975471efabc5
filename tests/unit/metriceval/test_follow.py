"""Following a training run (model.fromRun.checkpoint: each): every checkpoint its manifest lists is
evaluated once, in step order, as it lands; following ends only when the source's manifest says
completed and everything it lists is on the curve; a source that stalls ends in a transient failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from glassbox_api.kinds.metriceval import CurveSettings, MetricEvalSpec
from glassbox_api.manifest import CheckpointEntry, FileEntry, Manifest, checkpoint_dir
from glassbox_api.store import LocalStore, sha256_bytes
from glassbox_workloads.metriceval.follow import Follower, SourceStalled, curve_state, find_source
from glassbox_workloads.runtime.errors import BadInput


class Source:
    """A training run publishing checkpoints through its manifest, one step of the test at a time."""

    def __init__(self, root: Path):
        self.store = LocalStore(root / "default" / "pretrainrun" / "tiny-abcdef12")
        self.manifest = Manifest(kind="PretrainRun", name="tiny", namespace="default", uid="abcdef12")

    def publish(self, step: int, *, hf: bool = True, loss: float = 1.0) -> None:
        path = checkpoint_dir(step)
        files = []
        for name, data in ([("config.json", b"{}")] if hf else []) + [("model.safetensors", f"w{step}".encode())]:
            self.store.put_bytes(f"{path}/{name}", data)
            files.append(FileEntry(path=name, sha256=sha256_bytes(data), size=len(data)))
        # Listed but pruned already (keepOptimizer: false): the follower must not need it.
        files.append(FileEntry(path="optimizer.pt", sha256="0" * 64, size=1))
        self.manifest = self.manifest.with_checkpoint(CheckpointEntry(step=step, tokens=step * 10, loss=loss, path=path, files=files))
        self.store.write_json("manifest.json", self.manifest.to_json())

    def complete(self) -> None:
        self.manifest = self.manifest.model_copy(update={"state": "completed"})
        self.store.write_json("manifest.json", self.manifest.to_json())


def follower(src: Source, script: list, **kw: Any) -> tuple[Follower, list]:
    """A Follower whose sleep plays the next scripted action of the source; evaluate reads the weights."""
    commits: list = []
    t = {"now": 0.0}

    def sleep(s: float) -> None:
        t["now"] += s
        if script:
            script.pop(0)()

    def evaluate(model_dir: Path, entry: CheckpointEntry) -> dict[str, Any]:
        assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.safetensors"]
        return {"perplexity": 100.0 / entry.step}

    f = Follower(src.store, "PretrainRun/tiny", CurveSettings(**kw), evaluate,
                 lambda pts, st: commits.append((len(pts), st)), clock=lambda: t["now"], sleep=sleep)
    return f, commits


def test_each_checkpoint_once_in_order_as_it_lands_until_the_manifest_says_completed(tmp_path: Path) -> None:
    src = Source(tmp_path)
    src.publish(10)
    script = [lambda: None, lambda: src.publish(20), lambda: (src.publish(40), src.publish(30)), src.complete]
    f, commits = follower(src, script, poll_seconds=5)
    points = f.run()
    assert [p["step"] for p in points] == [10, 20, 30, 40]
    assert [p["perplexity"] for p in points] == [10.0, 5.0, 100 / 30, 2.5]
    assert points[0]["uri"].endswith("checkpoints/00000010") and points[0]["sourceLoss"] == 1.0
    assert [n for n, _ in commits] == [1, 2, 3, 4]  # one commit per point, as it lands
    assert commits[-1][1] == {"metric": "perplexity", "mode": "min", "points": 4, "latest": 2.5,
                              "checkpoint": "step-40", "best": 2.5, "bestCheckpoint": "step-40"}


def test_completed_means_done_only_after_what_that_manifest_lists(tmp_path: Path) -> None:
    src = Source(tmp_path)
    src.publish(10)
    src.publish(20)
    src.complete()  # the lifecycle writes completed after the last checkpoint's commit
    f, _ = follower(src, [])
    assert [p["step"] for p in f.run()] == [10, 20]


def test_a_restart_keeps_the_points_it_has(tmp_path: Path) -> None:
    src = Source(tmp_path)
    src.publish(10)
    src.publish(20)
    src.complete()
    f, _ = follower(src, [])
    f.points = [{"step": 10, "checkpoint": "step-10", "perplexity": 99.0}]
    points = f.run()
    assert [(p["step"], p["perplexity"]) for p in points] == [(10, 99.0), (20, 5.0)]


def test_a_checkpoint_not_in_hf_layout_is_a_skipped_point(tmp_path: Path) -> None:
    src = Source(tmp_path)
    src.publish(10, hf=False)
    src.publish(20)
    src.complete()
    f, commits = follower(src, [])
    points = f.run()
    assert "skipped" in points[0] and "perplexity" not in points[0]
    assert commits[-1][1]["points"] == 1 and commits[-1][1]["best"] == 5.0


def test_a_source_that_stops_publishing_without_completing_is_a_transient_failure(tmp_path: Path) -> None:
    src = Source(tmp_path)
    src.publish(10)
    f, _ = follower(src, [], poll_seconds=10, idle_timeout_seconds=60)
    with pytest.raises(SourceStalled, match="no new checkpoint"):
        f.run()
    assert [p["step"] for p in f.points] == [10]  # the curve so far is kept
    assert not isinstance(SourceStalled("x"), BadInput)


def test_best_by_mode_and_ties_go_to_the_later_checkpoint() -> None:
    pts = [{"step": 1, "checkpoint": "step-1", "perplexity": 3.0}, {"step": 2, "checkpoint": "step-2", "perplexity": 1.0},
           {"step": 3, "checkpoint": "step-3", "perplexity": 2.0}]
    assert curve_state(pts, CurveSettings())["bestCheckpoint"] == "step-2"
    assert curve_state(pts, CurveSettings(mode="max"))["bestCheckpoint"] == "step-1"
    assert curve_state(pts, CurveSettings())["checkpoint"] == "step-3"


def _spec(**from_run: Any) -> MetricEvalSpec:
    return MetricEvalSpec.model_validate({"task": "generation", "metrics": ["perplexity"], "data": {"uri": "x"},
                                          "model": {"fromRun": {"kind": "PretrainRun", "name": "tiny",
                                                                "checkpoint": "each", **from_run}}})


def test_the_source_run_from_the_operator_or_from_this_runs_store(tmp_path: Path) -> None:
    src = Source(tmp_path)
    src.publish(10)
    store, name = find_source(_spec(), LocalStore(tmp_path), "default")
    assert store.uri() == src.store.uri() and name == "PretrainRun/tiny"
    store, _ = find_source(_spec(runUri=str(tmp_path / "elsewhere")), LocalStore(tmp_path), "default")
    assert store.uri().rstrip("/").endswith("elsewhere")
    with pytest.raises(BadInput) as err:
        find_source(_spec(), LocalStore(tmp_path), "other-namespace")
    assert err.value.field == "spec.model.fromRun"
