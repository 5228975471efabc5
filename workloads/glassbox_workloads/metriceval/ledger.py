"""The run record of a MetricEval: what is published, and manifest.json as its single commit point.

Layout of a run folder:

    run.json              the spec as applied (RunRecord; a resume with another spec is refused)
    chunks/<i>.jsonl      the scores of examples [start, end) of chunk i, one object per example
    scores.jsonl          every example's scores, in input order (the chunks, joined)
    summary.json          corpus values, correlations with human scores, the curve's latest and best
    curve.jsonl           one point per evaluated checkpoint of a followed run
    checkpoints/<step>/   the D aligner this run trained (spec.aligner.train)
    manifest.json         Manifest; `final` holds progress, results, the finished chunks and the
                          outputs (path, sha256, size): a file exists for readers once listed here

Every file is uploaded and verified before the manifest that lists it is written, so a restarted
run trusts exactly what the manifest lists and redoes the rest.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

from glassbox_api.manifest import MANIFEST_JSON, CheckpointEntry, Manifest, read_manifest, utcnow
from glassbox_api.store import ArtifactStore, sha256_bytes

SCORES = "scores.jsonl"
SUMMARY = "summary.json"
CURVE = "curve.jsonl"


def chunk_key(index: int) -> str:
    return f"chunks/{index:05d}.jsonl"


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows).encode("utf-8")


class Ledger:
    """The single writer of a MetricEval run's manifest (one process per run)."""

    def __init__(self, store: ArtifactStore, identity: dict[str, str], total: int):
        self.store = store
        old = read_manifest(store)
        m = old or Manifest(**identity)
        final = dict(m.final)
        final.update(examplesTotal=total)
        final.setdefault("examplesScored", 0)
        self.manifest = m.model_copy(update={**identity, "state": "running", "final": final})
        self.resumed = old is not None
        self.was_complete = old is not None and old.state == "completed"
        """An earlier attempt finished this run (nothing is written then)."""
        self._last_write = 0.0

    # ---- reading --------------------------------------------------------------------------------
    @property
    def final(self) -> dict[str, Any]:
        return self.manifest.final

    def chunks(self) -> dict[int, dict[str, Any]]:
        """Finished chunks by index."""
        return {c["index"]: c for c in self.final.get("chunks", [])}

    def curve(self) -> list[dict[str, Any]]:
        return list(self.final.get("curvePoints", []))

    def read_chunk(self, index: int) -> list[dict[str, Any]]:
        """A finished chunk's rows, checked against the sha256 the manifest lists."""
        c = self.chunks()[index]
        data = self.store.get_bytes(c["path"], sha256=c["sha256"])
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]

    # ---- writing --------------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> dict[str, Any]:
        """Upload and verify one file; its entry for the manifest."""
        digest = sha256_bytes(data)
        info = self.store.put_bytes(key, data, sha256=digest)
        self.store.verify(key, digest, info.size)
        return {"path": key, "sha256": digest, "size": info.size}

    def commit(self, **final: Any) -> None:
        """Write the manifest with `final` updated: the commit point of what was put before."""
        merged = {**self.final, **final}
        self.manifest = self.manifest.model_copy(update={"final": merged, "updated": utcnow()})
        self.store.write_json(MANIFEST_JSON, self.manifest.to_json())
        self._last_write = time.monotonic()

    def note(self, every: float = 5.0, **final: Any) -> None:
        """commit() at most every `every` seconds (progress a person watches, not a record)."""
        if time.monotonic() - self._last_write >= every:
            self.commit(**final)
        else:
            self.manifest = self.manifest.model_copy(update={"final": {**self.final, **final}})

    def add_chunk(self, index: int, start: int, end: int, rows: list[dict[str, Any]], **final: Any) -> None:
        entry = {"index": index, "start": start, "end": end, **self.put(chunk_key(index), jsonl(rows))}
        chunks = sorted([*self.final.get("chunks", []), entry], key=lambda c: c["index"])
        scored = sum(c["end"] - c["start"] for c in chunks)
        self.commit(chunks=chunks, examplesScored=scored, **final)

    def add_checkpoint(self, entry: CheckpointEntry) -> None:
        """List a checkpoint this run published (its files already uploaded and verified)."""
        self.manifest = self.manifest.with_checkpoint(entry)
        self.commit()

    def output(self, name: str, key: str, data: bytes) -> dict[str, Any]:
        """Upload a result file and record it under final.outputs (committed by the next commit)."""
        entry = self.put(key, data)
        outputs = {**self.final.get("outputs", {}), name: entry}
        self.manifest = self.manifest.model_copy(update={"final": {**self.final, "outputs": outputs}})
        return entry

    def complete(self, **final: Any) -> None:
        self.manifest = self.manifest.model_copy(update={"state": "completed"})
        self.commit(currentMetric=None, **final)

    def uri(self, key: str = "") -> str:
        return self.store.uri(key)


def entry_of(final: dict[str, Any], name: str) -> Optional[dict[str, Any]]:
    """An output's record (path, sha256, size) in a manifest's final block."""
    return (final.get("outputs") or {}).get(name)
