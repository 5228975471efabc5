"""The run record (DESIGN.md section 4): run.json, checkpoint entries and manifest.json.

Workloads write these through the store; the operator and the CLI read them through the store.
Nothing here needs torch. Layout of one run, under `<bucket>/<prefix>/`:

    <namespace>/<kind>/<name>-<uid8>/
        run.json                      RunRecord (immutable)
        manifest.json                 Manifest: the index, the single commit point
        data/                         tokenizer and data manifest (and packed samples)
        checkpoints/<step>/           weights, optimizer + RNG state, data cursor, SHA256SUMS
        evals/<step>/results.json     per-checkpoint analysis
        metrics/<step>.jsonl          append-only metric segments, one per checkpoint interval
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from .store import ArtifactStore

SCHEMA_VERSION = 1
RUN_JSON = "run.json"
MANIFEST_JSON = "manifest.json"
CHECKSUMS_FILE = "SHA256SUMS"

_SAFE = re.compile(r"[^a-z0-9-]+")


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_prefix(namespace: str, kind: str, name: str, uid: str) -> str:
    """`<namespace>/<kind>/<name>-<uid8>`: kind lower-cased, uid cut to its first 8 characters."""
    if not namespace or not name or not uid:
        raise ValueError("namespace, name and uid are required")
    uid8 = _SAFE.sub("", uid.lower())[:8]
    if not uid8:
        raise ValueError(f"uid {uid!r} has no usable characters")
    return f"{namespace}/{kind.lower()}/{name}-{uid8}"


def checkpoint_dir(step: int) -> str:
    """checkpoints/<step>: zero-padded so a plain listing sorts by step."""
    return f"checkpoints/{step:08d}"


def evals_dir(step: int) -> str:
    return f"evals/{step:08d}"


def metrics_segment(step: int) -> str:
    return f"metrics/{step:08d}.jsonl"


def parse_checkpoint_ref(ref: str) -> Optional[int]:
    """'latest' -> None, 'step-N' -> N (the fromRun.checkpoint syntax)."""
    if ref == "latest":
        return None
    m = re.fullmatch(r"step-(\d+)", ref)
    if not m:
        raise ValueError(f"checkpoint reference {ref!r} is neither 'latest' nor 'step-N'")
    return int(m.group(1))


class _Record(BaseModel):
    # Readers must accept records written by newer writers: unknown fields are kept, not refused.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class FileEntry(_Record):
    """One file of a checkpoint, relative to the checkpoint directory."""

    path: str
    sha256: str
    size: int


class DataRange(_Record):
    """Which data a checkpoint has seen; samples are counted in the global training stream."""

    samples_start: int = 0
    """First stream sample of this checkpoint interval."""
    samples_end: int = 0
    """One past the last stream sample seen (the data cursor)."""
    chunks_completed: int = 0
    """Chunks fully consumed: ckpt covering chunks 0..k has chunks_completed = k+1."""
    chunk: int = 0
    """Chunk the cursor is in (stream order; chunk index modulo n_chunks per epoch)."""
    chunk_offset: int = 0
    """Samples of that chunk already consumed."""
    epoch: int = 0
    order_digest: Optional[str] = None
    """sha256 of the sample order of the chunks seen: anyone can re-derive it from the data manifest."""


class StagePosition(_Record):
    """Where a checkpoint of a multi-stage run (the progressive recipe: one model per stage) stands."""

    index: int
    """The stage (1-based) whose model this checkpoint holds."""
    count: int
    """Stages of the run."""
    step: int
    """Optimizer steps of this stage's model (the entry's step counts the whole run)."""
    steps: int
    """Planned steps of this stage."""


class CheckpointEntry(_Record):
    """One published checkpoint as listed in manifest.json."""

    step: int
    tokens: int
    loss: Optional[float] = None
    path: str
    """Directory relative to the run: checkpoints/<step>."""
    data: DataRange = Field(default_factory=DataRange)
    files: list[FileEntry] = Field(default_factory=list)
    evals: dict[str, float] = Field(default_factory=dict)
    evals_path: Optional[str] = None
    metrics_path: Optional[str] = None
    resumable: bool = True
    """Optimizer and RNG state are present (false once pruned by keepOptimizer: false)."""
    stage: Optional[StagePosition] = None
    """Multi-stage runs only: the stage this checkpoint belongs to (its path is under stages/<k>/)."""
    time: str = Field(default_factory=utcnow)

    def file(self, path: str) -> FileEntry:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(f"checkpoint {self.step} has no file {path}")

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class Manifest(_Record):
    """manifest.json: what exists for readers. Written only by the publisher, one PUT per change."""

    schema_version: int = SCHEMA_VERSION
    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""
    total_steps: Optional[int] = None
    checkpoints: list[CheckpointEntry] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    """Metric segments in order."""
    state: str = "running"
    """running | completed | failed."""
    final: dict[str, Any] = Field(default_factory=dict)
    """End-of-run summary (final loss, perplexity...)."""
    updated: str = Field(default_factory=utcnow)

    @property
    def latest(self) -> Optional[CheckpointEntry]:
        return max(self.checkpoints, key=lambda c: c.step) if self.checkpoints else None

    @property
    def latest_resumable(self) -> Optional[CheckpointEntry]:
        ok = [c for c in self.checkpoints if c.resumable]
        return max(ok, key=lambda c: c.step) if ok else None

    def get(self, step: int) -> CheckpointEntry:
        for c in self.checkpoints:
            if c.step == step:
                return c
        raise KeyError(f"no checkpoint at step {step}")

    def resolve(self, ref: str) -> CheckpointEntry:
        """A fromRun checkpoint reference ('latest' | 'step-N') to its entry."""
        step = parse_checkpoint_ref(ref)
        if step is None:
            if self.latest is None:
                raise KeyError("no checkpoint published yet")
            return self.latest
        return self.get(step)

    def with_checkpoint(self, entry: CheckpointEntry) -> "Manifest":
        """A copy listing entry (replacing any entry of the same step), sorted by step."""
        others = [c for c in self.checkpoints if c.step != entry.step]
        metrics = list(self.metrics)
        if entry.metrics_path and entry.metrics_path not in metrics:
            metrics.append(entry.metrics_path)
        return self.model_copy(
            update={"checkpoints": sorted([*others, entry], key=lambda c: c.step), "metrics": metrics,
                    "updated": utcnow()}
        )

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["latest"] = self.latest.step if self.latest else None  # convenience for jq and humans
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Manifest":
        d = dict(d)
        d.pop("latest", None)
        return cls.model_validate(d)


class RunRecord(_Record):
    """run.json: what was run, written once before the first checkpoint."""

    schema_version: int = SCHEMA_VERSION
    api_version: str = "glassbox.dev/v1alpha1"
    kind: str
    name: str
    namespace: str = "default"
    uid: str
    spec: dict[str, Any]
    """The spec as applied (camelCase, as in the YAML)."""
    spec_digest: str = ""
    """sha256 of the spec fields that must not change between attempts (for PretrainRun: model,
    data, training); a resume with a different digest is refused."""
    code_version: str = ""
    image: Optional[str] = None
    seeds: dict[str, int] = Field(default_factory=dict)
    data_manifest_digest: Optional[str] = None
    tokenizer_digest: Optional[str] = None
    world_size: Optional[int] = None
    """World size of the first attempt (later attempts may differ; the data order does not)."""
    environment: dict[str, str] = Field(default_factory=dict)
    """Library versions (torch, transformers, python...)."""
    created: str = Field(default_factory=utcnow)


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_manifest(store: "ArtifactStore") -> Optional[Manifest]:
    """The manifest of the run rooted at store, or None when nothing is published yet."""
    from .store import NotFound

    try:
        return Manifest.from_json(store.read_json(MANIFEST_JSON))
    except NotFound:
        return None


def read_run_record(store: "ArtifactStore") -> Optional[RunRecord]:
    from .store import NotFound

    try:
        return RunRecord.model_validate(store.read_json(RUN_JSON))
    except NotFound:
        return None


def checksums_text(files: list[FileEntry]) -> str:
    """The SHA256SUMS file (sha256sum -c compatible)."""
    return "".join(f"{f.sha256}  {f.path}\n" for f in sorted(files, key=lambda f: f.path))


def parse_checksums(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, path = line.partition("  ")
            out[path.strip()] = digest.strip()
    return out


__all__ = [
    "CHECKSUMS_FILE",
    "MANIFEST_JSON",
    "RUN_JSON",
    "CheckpointEntry",
    "DataRange",
    "FileEntry",
    "Manifest",
    "RunRecord",
    "StagePosition",
    "checkpoint_dir",
    "checksums_text",
    "evals_dir",
    "metrics_segment",
    "parse_checkpoint_ref",
    "parse_checksums",
    "read_manifest",
    "read_run_record",
    "run_prefix",
    "spec_digest",
    "utcnow",
]
