"""The shared run lifecycle (runtime.lifecycle.run_training) with a fake workload: the order of the
phases, the commit point, resume, already-complete runs, and what a failure leaves behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest

from glassbox_api.manifest import CheckpointEntry, Manifest, RunRecord, read_manifest, read_run_record
from glassbox_api.store import LocalStore
from glassbox_workloads.runtime.context import RunContext
from glassbox_workloads.runtime.lifecycle import OpenRun, Outcome, TrainingWorkload, run_training
from glassbox_workloads.runtime.progress import Progress
from glassbox_workloads.runtime.publisher import CheckpointPublisher

IDENTITY = {"kind": "FakeRun", "name": "f", "namespace": "default", "uid": "0000aaaa"}


class Boom(Exception):
    pass


class Fake(TrainingWorkload[Outcome]):
    kind = "FakeRun"

    def __init__(self, tmp: Path, total: int = 4, every: int = 2, fail_at: int = 0, commit: bool = True):
        self.tmp, self.total, self.every, self.fail_at = tmp, total, every, fail_at
        self.commit_on_failure = commit  # type: ignore[misc]
        self.calls: list[str] = []
        self.start = 0

    def plan(self, run: OpenRun) -> int:
        self.calls.append("plan")
        return self.total

    def build(self, run: OpenRun) -> int:
        self.calls.append("build")
        self.start = run.resume.step if run.resume else 0
        return self.start

    def record(self, run: OpenRun) -> RunRecord:
        self.calls.append("record")
        return RunRecord(**IDENTITY, spec={"total": self.total})

    def train(self, run: OpenRun, publisher: Optional[CheckpointPublisher], progress: Progress) -> None:
        self.calls.append("train")
        for step in range(self.start + 1, self.total + 1):
            if step == self.fail_at:
                raise Boom(f"failed at step {step}")
            if step % self.every == 0 and publisher is not None:
                d = self.tmp / f"ck{step}"
                d.mkdir()
                (d / "w.bin").write_bytes(bytes([step]))
                publisher.submit(d, CheckpointEntry(step=step, tokens=step, loss=1.0 / step,
                                                    path=f"checkpoints/{step:08d}"))

    def final(self, manifest: Manifest) -> dict[str, Any]:
        return {"steps": manifest.latest.step if manifest.latest else 0}

    def finish(self) -> None:
        self.calls.append("finish")

    def cleanup(self) -> None:
        self.calls.append("cleanup")

    def result(self, outcome: Outcome) -> Outcome:
        return outcome


def attempt(store: LocalStore, wl: Fake, lead: bool = True) -> Outcome:
    run = store.sub("default/fakerun/f-0000aaaa")
    return run_training(wl, OpenRun(run, read_manifest(run), lead, RunContext(quiet=True)), IDENTITY)


def test_phases_in_order_and_the_manifest_completed(tmp_path):
    store, wl = LocalStore(tmp_path / "s"), Fake(tmp_path)
    out = attempt(store, wl)
    assert wl.calls == ["plan", "build", "record", "train", "finish", "cleanup"]
    m = out.manifest
    assert m.state == "completed" and [c.step for c in m.checkpoints] == [2, 4] and m.final == {"steps": 4}
    assert (m.kind, m.name, m.uid, m.total_steps) == ("FakeRun", "f", "0000aaaa", 4)
    assert read_run_record(store.sub("default/fakerun/f-0000aaaa")).spec == {"total": 4}
    assert not out.already_complete and out.seconds >= out.loop_seconds >= 0


def test_a_complete_run_is_not_built_again(tmp_path):
    store = LocalStore(tmp_path / "s")
    attempt(store, Fake(tmp_path))
    again = Fake(tmp_path)
    out = attempt(store, again)
    assert out.already_complete and again.calls == ["plan", "cleanup"]


def test_a_failure_commits_what_was_staged_and_the_next_attempt_resumes(tmp_path):
    store = LocalStore(tmp_path / "s")
    wl = Fake(tmp_path, total=6, fail_at=5)
    with pytest.raises(Boom):
        attempt(store, wl)
    assert wl.calls[-1] == "cleanup" and "finish" not in wl.calls
    m = read_manifest(store.sub("default/fakerun/f-0000aaaa"))
    assert m.state == "running" and [c.step for c in m.checkpoints] == [2, 4]
    resumed = Fake(tmp_path / "r", total=6)
    (tmp_path / "r").mkdir()
    out = attempt(store, resumed)
    assert resumed.start == 4 and [c.step for c in out.manifest.checkpoints] == [2, 4, 6]


def test_a_workload_may_abort_its_pending_uploads_instead(tmp_path):
    store = LocalStore(tmp_path / "s")
    with pytest.raises(Boom):
        attempt(store, Fake(tmp_path, total=6, fail_at=5, commit=False))
    m = read_manifest(store.sub("default/fakerun/f-0000aaaa"))
    assert m is None or m.state == "running"


def test_only_the_lead_writes_the_record(tmp_path):
    store = LocalStore(tmp_path / "s")
    wl = Fake(tmp_path)
    attempt(store, wl, lead=False)
    assert "record" not in wl.calls and read_run_record(store.sub("default/fakerun/f-0000aaaa")) is None
