"""Following a training run (model.fromRun.checkpoint: each): evaluate every checkpoint it publishes,
as it lands, and keep the curve.

How the program learns what exists and when to stop is the run contract's, not a guess: a checkpoint
exists once the source's manifest.json lists it (the manifest PUT is the commit point), and the
source is done when its manifest says `state: completed`. The training lifecycle writes that state in
a manifest update queued after the last checkpoint's commit (runtime/lifecycle.py), so a manifest
that says completed already lists every checkpoint: following ends after evaluating what that
manifest lists, never earlier. A source that stops publishing without completing (failed for good,
deleted) would be followed forever; spec.curve.idleTimeoutSeconds bounds the wait (a transient
failure: the operator retries, and the retry resumes the curve from the manifest).

Only the files a model loads are downloaded (sha256-checked): optimizer and RNG state may be pruned
by the source at any moment (keepOptimizer: false), and are not needed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from glassbox_api.kinds.metriceval import CurveSettings, MetricEvalSpec
from glassbox_api.manifest import MANIFEST_JSON, CheckpointEntry, read_manifest, utcnow
from glassbox_api.store import ArtifactStore, find_runs, open_store

from ..runtime.errors import BadInput
from ..runtime.publisher import RESUME_FILES

SKIP_FILES = (*RESUME_FILES, "trainer_state.json", "SHA256SUMS")


class SourceStalled(RuntimeError):
    """The followed run published nothing new and did not complete within curve.idleTimeoutSeconds."""


def find_source(spec: MetricEvalSpec, root: Optional[ArtifactStore], namespace: str) -> tuple[ArtifactStore, str]:
    """The followed run's folder and its name (`PretrainRun/x`): the operator's resolved runUri, else
    the one run of that resource in this run's store."""
    assert spec.model is not None and spec.model.from_run is not None
    fr = spec.model.from_run
    name = f"{fr.kind}/{fr.name}"
    if fr.run_uri:
        return open_store(fr.run_uri), name
    if root is None:
        raise BadInput("spec.model.fromRun", "following a run needs the artifact store it publishes to",
                       "pass --store (glassbox run)")
    runs = find_runs(root, namespace, fr.kind, fr.name)
    if not runs:
        raise BadInput("spec.model.fromRun", f"no run of {name} in namespace {namespace} under {root.uri()}",
                       "start the source run first (it must have written its run.json), or fix the name")
    if len(runs) > 1:
        names = sorted(r.uri().rstrip("/").rsplit("/", 1)[-1] for r in runs)
        raise BadInput("spec.model.fromRun", f"several runs of {name}: {names}",
                       "delete the stale ones, or evaluate one checkpoint with model.uri")
    return runs[0], name


def download(source: ArtifactStore, entry: CheckpointEntry, dest: Path) -> Optional[str]:
    """The model's files of one checkpoint into dest; a reason string when it is no HF-format model."""
    files = [f for f in entry.files if Path(f.path).name not in SKIP_FILES]
    if not any(f.path == "config.json" for f in files):
        return "not in Hugging Face layout (no config.json): only its final checkpoint can be evaluated"
    for f in files:
        source.get_file(f"{entry.path}/{f.path}", dest / f.path, sha256=f.sha256)
    return None


def curve_state(points: list[dict[str, Any]], settings: CurveSettings) -> dict[str, Any]:
    """Latest and best of the curve, by settings.metric and settings.mode."""
    scored = [p for p in points if isinstance(p.get(settings.metric), (int, float))]
    out: dict[str, Any] = {"metric": settings.metric, "mode": settings.mode, "points": len(scored)}
    if scored:
        latest = max(scored, key=lambda p: p["step"])
        pick = min if settings.mode == "min" else max
        best = pick(scored, key=lambda p: (p[settings.metric], p["step"]))
        out.update(latest=latest[settings.metric], checkpoint=latest["checkpoint"],
                   best=best[settings.metric], bestCheckpoint=best["checkpoint"])
    return out


@dataclass
class Follower:
    """Evaluates each new checkpoint of `source` with `evaluate(model_dir) -> {metric: value}`."""

    source: ArtifactStore
    name: str
    settings: CurveSettings
    evaluate: Callable[[Path, CheckpointEntry], dict[str, Any]]
    commit: Callable[[list[dict[str, Any]], dict[str, Any]], None]
    """Called after every new point with (points, curve_state): records them in our manifest."""
    points: list[dict[str, Any]] = field(default_factory=list)
    say: Callable[[str], None] = lambda m: None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def _point(self, entry: CheckpointEntry) -> dict[str, Any]:
        point: dict[str, Any] = {"step": entry.step, "checkpoint": f"step-{entry.step}",
                                 "uri": self.source.uri(entry.path), "tokens": entry.tokens}
        if entry.loss is not None:
            point["sourceLoss"] = entry.loss
        tmp = Path(tempfile.mkdtemp(prefix=f"glassbox-meval-{entry.step}-"))
        try:
            skipped = download(self.source, entry, tmp)
            if skipped:
                point["skipped"] = skipped
            else:
                point.update(self.evaluate(tmp, entry))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        point["time"] = utcnow()
        return point

    def run(self) -> list[dict[str, Any]]:
        """Until the source is complete and every checkpoint it lists is on the curve."""
        seen = {p["step"] for p in self.points}
        last_new = self.clock()
        while True:
            manifest = read_manifest(self.source)
            if manifest is not None:
                for entry in sorted((c for c in manifest.checkpoints if c.step not in seen), key=lambda c: c.step):
                    point = self._point(entry)
                    self.points.append(point)
                    seen.add(entry.step)
                    self.commit(self.points, curve_state(self.points, self.settings))
                    value = point.get(self.settings.metric)
                    self.say(f"{self.name} step {entry.step}: " +
                             (f"{self.settings.metric} {value:.4g}" if value is not None else point.get("skipped", "")))
                    last_new = self.clock()
                if manifest.state == "completed" and all(c.step in seen for c in manifest.checkpoints):
                    return self.points
            if self.clock() - last_new > self.settings.idle_timeout_seconds:
                where = self.source.uri(MANIFEST_JSON)
                raise SourceStalled(f"{self.name} published no new checkpoint and did not complete in "
                                    f"{self.settings.idle_timeout_seconds} s ({where}); the curve so far is kept")
            self.sleep(self.settings.poll_seconds)
