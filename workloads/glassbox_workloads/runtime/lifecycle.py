"""One run lifecycle for the training kinds (PretrainRun, ShardedFinetune), as torchtitan's train()
reads: open the run folder and its manifest, plan (cheap parts: data, step count), stop there if the
run is already complete, build the parts (model, optimizer, restored state), record the run, loop
the steps publishing checkpoints, complete the manifest, and hand back what happened.

A kind supplies a TrainingWorkload (its parts and its loop); run_training drives it. Only the lead
process (rank 0 / JAX process 0) writes run.json and manifest.json.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Generic, Optional, TypeVar

from glassbox_api.manifest import CheckpointEntry, Manifest, RunRecord, read_manifest
from glassbox_api.store import ArtifactStore

from .context import RunContext
from .progress import Progress
from .publisher import CheckpointPublisher, ensure_run_record

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class RunIdentity:
    """Who a run is: the kind, name, namespace and uid its manifest and run.json record."""

    kind: str
    name: str
    namespace: str = "default"
    uid: str = "local"

    def fields(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "namespace": self.namespace, "uid": self.uid}


@dataclass
class TrainingResult:
    """What a service kind's training stage returns to its entrypoint (the summary it prints)."""

    run_uri: str
    manifest: Optional[Manifest] = None
    steps: int = 0
    loss: Optional[float] = None
    evals: dict[str, float] = field(default_factory=dict)
    already_complete: bool = False
    seconds: float = 0.0


@dataclass
class OpenRun:
    """The run folder as this attempt finds it, and who this process is in it."""

    store: ArtifactStore
    """The run folder (`<namespace>/<kind>/<name>-<uid8>`)."""
    manifest: Optional[Manifest]
    """What earlier attempts published (None: nothing yet)."""
    lead: bool
    """This process writes run.json and manifest.json."""
    ctx: RunContext
    say: Callable[[str], None] = lambda msg: None
    """A line for the person running it (lead, not quiet); nothing otherwise."""

    @property
    def resume(self) -> Optional[CheckpointEntry]:
        """The checkpoint this attempt continues from, if any."""
        return self.manifest.latest_resumable if self.manifest else None


@dataclass
class Outcome:
    """What the lifecycle did; each kind turns it into its own result."""

    run_uri: str
    manifest: Manifest
    already_complete: bool = False
    seconds: float = 0.0
    """Wall time of the whole attempt."""
    loop_seconds: float = 0.0
    """Wall time of the step loop (0 when nothing ran)."""
    publisher: Optional[CheckpointPublisher] = None
    extra: dict[str, Any] = field(default_factory=dict)


class TrainingWorkload(ABC, Generic[ResultT]):
    """The parts of one training kind, driven by run_training."""

    kind: ClassVar[str]
    progress_label: str = "training"
    """What the progress bar calls the run."""
    commit_on_failure: ClassVar[bool] = True
    """On a failure, commit what was fully staged (published work is never thrown away); False
    aborts the pending uploads instead."""

    @abstractmethod
    def plan(self, run: OpenRun) -> int:
        """The cheap parts (data, schedule); returns the run's total steps."""

    def is_complete(self, manifest: Optional[Manifest], total: int) -> bool:
        """An earlier attempt finished this run: nothing left to do."""
        return (manifest is not None and manifest.state == "completed" and manifest.latest is not None
                and manifest.latest.step >= total)

    @abstractmethod
    def build(self, run: OpenRun) -> int:
        """The expensive parts (model, optimizer), restored from run.resume; returns the start step."""

    @abstractmethod
    def record(self, run: OpenRun) -> RunRecord:
        """run.json for this run (written by the lead on the first attempt, checked on later ones)."""

    def publisher_options(self) -> dict[str, Any]:
        """Keyword arguments of this kind's CheckpointPublisher."""
        return {}

    def on_commit(self, progress: Progress, entry: CheckpointEntry, manifest: Manifest) -> None:
        """Called on the publisher thread after a checkpoint is committed to the manifest."""

    @abstractmethod
    def train(self, run: OpenRun, publisher: Optional[CheckpointPublisher], progress: Progress) -> None:
        """Run the steps from the start step to the end, handing checkpoints to the publisher (lead)."""

    @abstractmethod
    def final(self, manifest: Manifest) -> dict[str, Any]:
        """The manifest's end-of-run summary (runs on the publisher thread, after the last commit)."""

    def finish(self) -> None:
        """After the manifest is complete: wait for the other processes where there are any."""

    def cleanup(self) -> None:
        """Always, at the end (also after a failure): remove local scratch files."""

    @abstractmethod
    def result(self, outcome: Outcome) -> ResultT:
        """The kind's own result (what its summary prints)."""


def base_manifest(run: OpenRun, identity: dict[str, str], total: int) -> Manifest:
    """The manifest this attempt continues: the published one (or a new one), running, with its total."""
    m = run.manifest or Manifest(**identity)
    return m.model_copy(update={**identity, "total_steps": total, "state": "running"})


def run_training(workload: TrainingWorkload[ResultT], run: OpenRun, identity: dict[str, str]) -> ResultT:
    """Drive one attempt of a training run: plan, build, record, loop, complete.

    identity: kind, name, namespace and uid, as the manifest records them.
    """
    t_start = time.time()
    try:
        total = workload.plan(run)
        if workload.is_complete(run.manifest, total):
            assert run.manifest is not None and run.manifest.latest is not None
            run.say(f"already complete: {len(run.manifest.checkpoints)} checkpoints, last at step {run.manifest.latest.step}")
            return workload.result(Outcome(run.store.uri(), run.manifest, already_complete=True))
        start = workload.build(run)
        outcome = _train(workload, run, base_manifest(run, identity, total), start)
    finally:
        workload.cleanup()
    outcome.seconds = time.time() - t_start
    return workload.result(outcome)


def _train(workload: TrainingWorkload[Any], run: OpenRun, manifest: Manifest, start: int) -> Outcome:
    """Record the run, loop the steps, complete the manifest (the lead publishes; all train)."""
    assert manifest.total_steps is not None
    progress = Progress(manifest.total_steps, start, description=workload.progress_label,
                        enabled=run.lead and not run.ctx.quiet)
    publisher = None
    if run.lead:
        ensure_run_record(run.store, workload.record(run))
        publisher = CheckpointPublisher(run.store, manifest=manifest,
                                        on_commit=lambda e, m: workload.on_commit(progress, e, m),
                                        **workload.publisher_options())
    t_loop = time.time()
    try:
        workload.train(run, publisher, progress)
        if publisher is not None:
            publisher.update(lambda m: m.model_copy(update={"state": "completed", "final": workload.final(m)}))
            publisher.close()
        workload.finish()
    except BaseException:
        if publisher is not None:
            with contextlib.suppress(Exception):
                publisher.close() if workload.commit_on_failure else publisher.abort()
        raise
    finally:
        progress.close()
    loop_seconds = time.time() - t_loop
    final = publisher.manifest if publisher is not None else (read_manifest(run.store) or Manifest())
    return Outcome(run.store.uri(), final, loop_seconds=loop_seconds, publisher=publisher)
