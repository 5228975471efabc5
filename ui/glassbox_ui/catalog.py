"""What the store holds, as the UI shows it: the runs, one run's record, checkpoints and lineage.

Every function here is a read of the store through glassbox_api, returning plain JSON-ready dicts.
A run folder is `<namespace>/<kind>/<name>-<uid8>` (manifest.py); its id in the UI is that prefix.
Half-written runs are normal (a run.json before the first manifest, a manifest listing files still
being read): they are shown with what is there, and problems are messages, never exceptions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from glassbox_api.manifest import MANIFEST_JSON, RUN_JSON, Manifest, RunRecord
from glassbox_api.store import ArtifactStore, NotFound, StoreError

_RECORDS = (MANIFEST_JSON, RUN_JSON)


class UiError(Exception):
    """A problem to show on the page (status is the HTTP code the API answers with)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class Catalog:
    """The store the UI reads, with the one cache that is always right: run.json never changes."""

    store: ArtifactStore
    _records: dict[str, Optional[dict[str, Any]]] = field(default_factory=dict)

    def run(self, prefix: str) -> ArtifactStore:
        """The run folder `prefix` (checked to have the run folder's shape and a record)."""
        bits = prefix.strip("/").split("/")
        if len(bits) != 3 or any(b in ("", ".", "..") for b in bits):
            raise UiError(f"{prefix!r} is not a run folder (<namespace>/<kind>/<name>-<uid8>)", 404)
        return self.store.sub("/".join(bits))

    def prefixes(self) -> list[str]:
        """Every run folder in the store (those holding a run.json or a manifest.json)."""
        try:
            keys = self.store.list("")
        except StoreError as exc:
            raise UiError(f"cannot list the store {self.store.uri()}: {exc}", 502) from None
        out = {"/".join(k.split("/")[:3]) for k in keys if k.count("/") == 3 and k.rsplit("/", 1)[1] in _RECORDS}
        return sorted(out)

    def record(self, prefix: str) -> Optional[dict[str, Any]]:
        """run.json of a run (cached: it is written once); None while it is not there yet."""
        if prefix not in self._records:
            try:
                rec = self.run(prefix).read_json(RUN_JSON)
            except NotFound:
                return None  # not cached: it may appear later
            self._records[prefix] = rec
        return self._records[prefix]

    def manifest(self, prefix: str) -> Optional[Manifest]:
        try:
            return Manifest.from_json(self.run(prefix).read_json(MANIFEST_JSON))
        except NotFound:
            return None
        except ValueError as exc:  # a manifest that is not JSON or not a manifest
            raise UiError(f"{self.run(prefix).uri(MANIFEST_JSON)} is not a readable manifest: {exc}", 502) from None


def version(manifest: Optional[Manifest]) -> str:
    """A digest of the manifest: what the page polls on (its `updated` has one-second resolution,
    and two commits can fall in the same second)."""
    if manifest is None:
        return ""
    return hashlib.sha256(json.dumps(manifest.to_json(), sort_keys=True).encode()).hexdigest()[:16]


# ---- the list of runs ------------------------------------------------------------------------
def progress(manifest: Optional[Manifest]) -> dict[str, Any]:
    """Done/total and a label, from what each kind's manifest counts (steps, examples, relations)."""
    if manifest is None:
        return {"label": "not started", "done": 0, "total": None}
    f = manifest.final or {}
    for done_key, total_key, unit in (("examplesScored", "examplesTotal", "examples"),
                                      ("relationsDone", "relationsTotal", "relations")):
        if total_key in f:
            done, total = int(f.get(done_key) or 0), f.get(total_key)
            return {"label": f"{done}/{total} {unit}", "done": done, "total": total}
    latest = manifest.latest
    if manifest.total_steps:
        done = latest.step if latest else 0
        return {"label": f"{done}/{manifest.total_steps} steps", "done": done, "total": manifest.total_steps}
    n = len(manifest.checkpoints)
    return {"label": f"{n} checkpoint{'s' if n != 1 else ''}", "done": n, "total": None}


def run_row(cat: Catalog, prefix: str) -> dict[str, Any]:
    """One line of the runs table; an unreadable run is a line with its error."""
    ns, kind_folder, leaf = prefix.split("/")
    row: dict[str, Any] = {"id": prefix, "namespace": ns, "kind": kind_folder, "name": leaf.rsplit("-", 1)[0],
                           "uid": leaf.rsplit("-", 1)[-1], "state": "unknown", "progress": progress(None),
                           "updated": "", "error": None}
    try:
        rec, man = cat.record(prefix), cat.manifest(prefix)
    except (UiError, StoreError) as exc:
        row.update(state="unreadable", error=getattr(exc, "message", str(exc)))
        return row
    if rec:
        row.update(kind=rec.get("kind", kind_folder), name=rec.get("name", row["name"]), updated=rec.get("created", ""))
    if man is not None:
        row.update(kind=man.kind or row["kind"], state=man.state, updated=man.updated, progress=progress(man))
    elif rec:
        row["state"] = "starting"
    return row


def list_runs(cat: Catalog) -> list[dict[str, Any]]:
    """Every run, most recently updated first."""
    rows = [run_row(cat, p) for p in cat.prefixes()]
    return sorted(rows, key=lambda r: (r["updated"], r["id"]), reverse=True)


# ---- lineage ---------------------------------------------------------------------------------
def _from_runs(spec: Any, path: str = "spec") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every fromRun block in a spec, with the field path that names it."""
    if isinstance(spec, dict):
        for k, v in spec.items():
            if k == "fromRun" and isinstance(v, dict):
                yield f"{path}.fromRun", v
            else:
                yield from _from_runs(v, f"{path}.{k}")
    elif isinstance(spec, list):
        for i, v in enumerate(spec):
            yield from _from_runs(v, f"{path}[{i}]")


def _matches(prefix: str, ref: dict[str, Any], namespace: str) -> bool:
    ns, kind, leaf = prefix.split("/")
    return (ns == ref.get("namespace", namespace) and kind == str(ref.get("kind", "")).lower()
            and leaf.rsplit("-", 1)[0] == ref.get("name"))


def lineage(cat: Catalog, prefix: str, record: Optional[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs this one started from (its spec's fromRun blocks) and runs that started from it."""
    ns = prefix.split("/")[0]
    prefixes = cat.prefixes()
    upstream = []
    for where, ref in _from_runs((record or {}).get("spec", {})):
        found = [p for p in prefixes if _matches(p, ref, ns)]
        upstream.append({"field": where, "kind": ref.get("kind"), "name": ref.get("name"),
                         "checkpoint": ref.get("checkpoint", "latest"), "runs": found})
    downstream = []
    for p in prefixes:
        if p == prefix:
            continue
        try:
            rec = cat.record(p)
        except StoreError:
            continue
        for where, ref in _from_runs((rec or {}).get("spec", {})):
            if _matches(prefix, ref, p.split("/")[0]):
                downstream.append({"field": where, "run": p, "checkpoint": ref.get("checkpoint", "latest")})
    return {"from": upstream, "to": downstream}


# ---- one run ---------------------------------------------------------------------------------
def checkpoint_rows(manifest: Manifest) -> list[dict[str, Any]]:
    return [{"step": c.step, "tokens": c.tokens, "loss": c.loss, "path": c.path, "evals": c.evals,
             "samplesStart": c.data.samples_start, "samplesEnd": c.data.samples_end,
             "chunksCompleted": c.data.chunks_completed, "orderDigest": c.data.order_digest,
             "size": c.size, "files": len(c.files), "resumable": c.resumable, "time": c.time}
            for c in manifest.checkpoints]


def record_facts(record: Optional[RunRecord]) -> dict[str, Any]:
    if record is None:
        return {}
    return {"created": record.created, "codeVersion": record.code_version, "image": record.image,
            "seeds": record.seeds, "specDigest": record.spec_digest,
            "dataManifestDigest": record.data_manifest_digest, "tokenizerDigest": record.tokenizer_digest,
            "worldSize": record.world_size, "environment": record.environment}


def run_detail(cat: Catalog, prefix: str) -> dict[str, Any]:
    """A run's record, manifest summary, checkpoints and lineage (no file beyond the two records)."""
    run = cat.run(prefix)
    raw = cat.record(prefix)
    manifest = cat.manifest(prefix)
    if raw is None and manifest is None:
        raise UiError(f"no run at {run.uri()} (neither run.json nor manifest.json)", 404)
    try:
        record = RunRecord.model_validate(raw) if raw else None
    except ValueError as exc:
        raise UiError(f"{run.uri(RUN_JSON)} is not a readable run record: {exc}", 502) from None
    row = run_row(cat, prefix)
    m = manifest or Manifest()
    extra = {k: v for k, v in (m.model_extra or {}).items()}
    return {**row, "uri": run.uri(), "version": version(manifest), "spec": record.spec if record else None, "facts": record_facts(record),
            "manifest": {"state": m.state, "updated": m.updated, "totalSteps": m.total_steps, "final": m.final,
                         "metrics": m.metrics, "extra": extra, "present": manifest is not None},
            "checkpoints": checkpoint_rows(m), "lineage": lineage(cat, prefix, raw)}
