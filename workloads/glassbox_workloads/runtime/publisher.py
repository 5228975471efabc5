"""Asynchronous checkpoint publisher: upload, verify, then commit by rewriting manifest.json.

The protocol (DESIGN.md section 4): every file of a checkpoint, its SHA256SUMS and its evals go to
the store first and are verified; only then is the manifest PUT with the new entry. S3 has no
multi-object transaction, so that single PUT is the commit point: a reader that goes through the
manifest never sees a half-written checkpoint, and a crash at any moment leaves at worst unlisted
objects that the next attempt overwrites.

Training hands a staged local directory to `submit()` and goes on; a background thread does the
rest. `submit()` blocks only when `max_pending` checkpoints are already queued, and `close()`
drains the queue.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from glassbox_api.manifest import (
    CHECKSUMS_FILE,
    MANIFEST_JSON,
    RUN_JSON,
    CheckpointEntry,
    FileEntry,
    Manifest,
    RunRecord,
    checksums_text,
    read_manifest,
    read_run_record,
)
from glassbox_api.store import ArtifactStore, StoreError, join_key, sha256_file

log = logging.getLogger("glassbox.publisher")

# Files that make a checkpoint resumable rather than only loadable; pruned when keepOptimizer is off.
RESUME_FILES = ("optimizer.safetensors", "optimizer.json", "rng.safetensors", "rng.json", "optimizer.pt", "rng.pt")
"""The resume state (pretrain/resume_state.py), and its pickle form in checkpoints of earlier versions."""

FaultHook = Callable[[str, CheckpointEntry], None]


class PublishError(RuntimeError):
    """The background publisher failed; the run must stop (and resume from the last commit)."""


@dataclass
class _Job:
    entry: Optional[CheckpointEntry]
    staging: Optional[Path]
    extras: dict[str, Path] = field(default_factory=dict)
    update: Optional[Callable[[Manifest], Manifest]] = None
    cleanup: bool = True


def ensure_run_record(store: ArtifactStore, record: RunRecord) -> RunRecord:
    """Write run.json once; on a later attempt check it describes the same run and keep the original."""
    existing = read_run_record(store)
    if existing is None:
        store.write_json(RUN_JSON, record.to_json())
        return record
    for attr in ("spec_digest", "data_manifest_digest", "tokenizer_digest"):
        old, new = getattr(existing, attr), getattr(record, attr)
        if old and new and old != new:
            raise PublishError(
                f"{store.uri(RUN_JSON)} records a different {attr} ({old[:12]} != {new[:12]}): "
                "the run's spec or data changed; start a new run instead of resuming this one"
            )
    return existing


class CheckpointPublisher:
    """Single writer of a run's manifest.json (rank 0 only)."""

    def __init__(
        self,
        store: ArtifactStore,
        *,
        manifest: Optional[Manifest] = None,
        max_pending: int = 1,
        verify: str = "deep",
        keep_optimizer: bool = True,
        file_parallelism: int = 2,
        fault_hook: Optional[FaultHook] = None,
        on_commit: Optional[Callable[[CheckpointEntry, Manifest], None]] = None,
    ):
        if verify not in ("deep", "size", "none"):
            raise ValueError("verify must be deep, size or none")
        self.store = store
        self._manifest = manifest if manifest is not None else (read_manifest(store) or Manifest())
        self.verify = verify
        self.keep_optimizer = keep_optimizer
        self.file_parallelism = max(1, file_parallelism)
        self.fault_hook = fault_hook
        self.on_commit = on_commit
        self._q: "queue.Queue[Optional[_Job]]" = queue.Queue(maxsize=max(1, max_pending))
        self._lock = threading.Lock()
        self._error: Optional[BaseException] = None
        self._closed = False
        self.blocked_seconds = 0.0  # time submit() spent waiting for room: the training-side cost
        self.upload_seconds = 0.0
        self.committed: list[int] = []
        self._thread = threading.Thread(target=self._run, name="glassbox-publisher", daemon=True)
        self._thread.start()

    # ---- training side ---------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        with self._lock:
            return self._manifest

    def submit(self, staging: Path, entry: CheckpointEntry, *, extras: Optional[dict[str, Path]] = None,
               cleanup: bool = True) -> None:
        """Queue a staged checkpoint directory; its files land under entry.path."""
        self._check()
        t0 = time.perf_counter()
        self._q.put(_Job(entry, Path(staging), dict(extras or {}), cleanup=cleanup))
        self.blocked_seconds += time.perf_counter() - t0

    def update(self, fn: Callable[[Manifest], Manifest]) -> None:
        """Queue a manifest-only change (e.g. marking the run completed), ordered after checkpoints."""
        self._check()
        self._q.put(_Job(None, None, update=fn))

    def drain(self) -> None:
        """Wait until everything queued is committed; raise if the publisher failed."""
        self._q.join()
        self._check()

    def close(self) -> None:
        """Drain and stop the thread. Raises PublishError if anything failed."""
        if not self._closed:
            self._closed = True
            self._q.put(None)
            self._thread.join()
        self._check()

    def abort(self) -> None:
        """Stop without committing what is still queued (the next attempt redoes it)."""
        self._closed = True
        while True:
            try:
                job = self._q.get_nowait()
                self._q.task_done()
                if job and job.staging and job.cleanup:
                    shutil.rmtree(job.staging, ignore_errors=True)
            except queue.Empty:
                break
        self._q.put(None)
        self._thread.join(timeout=60)

    def _check(self) -> None:
        if self._error is not None:
            raise PublishError(f"checkpoint publishing failed: {self._error}") from self._error

    # ---- background side -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._q.get()
            try:
                if job is None:
                    return
                if self._error is None:  # after a failure, drop work: nothing may commit out of order
                    t0 = time.perf_counter()
                    if job.entry is not None:
                        self._publish(job)
                    elif job.update is not None:
                        self._commit(job.update(self.manifest))
                    self.upload_seconds += time.perf_counter() - t0
            except BaseException as exc:  # noqa: BLE001 - surfaced to the training thread
                log.error("publisher failed: %s", exc)
                self._error = exc
            finally:
                if job is not None and job.staging is not None and job.cleanup:
                    shutil.rmtree(job.staging, ignore_errors=True)
                    for p in job.extras.values():
                        Path(p).unlink(missing_ok=True)
                self._q.task_done()

    def _upload(self, key: str, path: Path) -> FileEntry:
        digest = sha256_file(path)
        info = self.store.put_file(key, path, sha256=digest)
        return FileEntry(path=key, sha256=digest, size=info.size)

    def _publish(self, job: _Job) -> None:
        entry = job.entry
        assert entry is not None and job.staging is not None
        base = entry.path
        local = sorted(p for p in job.staging.rglob("*") if p.is_file())
        rels = [p.relative_to(job.staging).as_posix() for p in local]
        uploads = [(join_key(base, r), p) for r, p in zip(rels, local)]
        uploads += [(k, Path(p)) for k, p in sorted(job.extras.items())]
        # Files of one checkpoint go up concurrently; large ones are multipart inside the store.
        with ThreadPoolExecutor(self.file_parallelism) as pool:
            done = list(pool.map(lambda kp: self._upload(*kp), uploads))
        files = [FileEntry(path=r, sha256=f.sha256, size=f.size) for r, f in zip(rels, done)]
        sums_key = join_key(base, CHECKSUMS_FILE)
        sums = checksums_text(files).encode()
        sums_info = self.store.put_bytes(sums_key, sums)
        self._fault("uploaded", entry)
        if self.verify != "none":
            deep = self.verify == "deep"
            for f in done:
                self.store.verify(f.path, f.sha256, f.size, deep=deep)
            self.store.verify(sums_key, sums_info.sha256 or "", sums_info.size, deep=deep)
        self._fault("before_commit", entry)
        committed = entry.model_copy(update={"files": files})
        m = self.manifest.with_checkpoint(committed)
        prune: list[str] = []
        pruned: list[CheckpointEntry] = []
        if not self.keep_optimizer:
            m, pruned, prune = self._without_old_resume_state(m, committed.step)
        self._commit(m)
        self._fault("after_commit", entry)
        # Delete only after the manifest stopped listing them, so readers never miss a listed file.
        for key in prune:
            try:
                self.store.delete(key)
            except StoreError as exc:
                log.warning("could not prune %s: %s", key, exc)
        for c in pruned:  # keep each SHA256SUMS true to what is left (sha256sum -c passes)
            self.store.put_bytes(join_key(c.path, CHECKSUMS_FILE), checksums_text(c.files).encode())
        self.committed.append(committed.step)
        log.info("published checkpoint step %d -> %s", committed.step, self.store.uri(base))
        if self.on_commit:
            self.on_commit(committed, m)

    def _without_old_resume_state(self, m: Manifest, newest: int) -> tuple[Manifest, list[CheckpointEntry], list[str]]:
        prune: list[str] = []
        pruned: list[CheckpointEntry] = []
        cps = []
        for c in m.checkpoints:
            if c.step != newest and c.resumable:
                drop = [f for f in c.files if Path(f.path).name in RESUME_FILES]
                prune += [join_key(c.path, f.path) for f in drop]
                c = c.model_copy(update={"files": [f for f in c.files if f not in drop], "resumable": False})
                pruned.append(c)
            cps.append(c)
        return m.model_copy(update={"checkpoints": cps}), pruned, prune

    def _commit(self, m: Manifest) -> None:
        self.store.write_json(MANIFEST_JSON, m.to_json())
        with self._lock:
            self._manifest = m

    def _fault(self, point: str, entry: CheckpointEntry) -> None:
        if self.fault_hook is not None:
            self.fault_hook(point, entry)


__all__ = ["CheckpointPublisher", "PublishError", "RESUME_FILES", "ensure_run_record", "Any"]
