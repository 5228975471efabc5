"""Publishing a harvest: per relation `relations/<name>/prompts.json` and `tuples.jsonl`, then its
record `relations/<name>/entry.json`, then the manifest; `kg.jsonl` once every relation is in.

A relation exists for readers once manifest.json lists it, and it is listed only after both files
are uploaded and verified. With an Indexed Job several pods publish into one run: each writes its
relation's entry.json (its own commit point) and then rebuilds manifest.json from every entry in
the store, so a manifest written by one pod never drops a relation another pod finished; whichever
pod finds every relation in writes kg.jsonl (the same bytes from any pod) and completes the run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from glassbox_api.manifest import MANIFEST_JSON, FileEntry, Manifest, read_manifest, utcnow
from glassbox_api.store import ArtifactStore, NotFound, join_key, sha256_bytes

from .harvest import Harvest

KG_JSONL = "kg.jsonl"
ENTRY_JSON = "entry.json"


def relation_dir(name: str) -> str:
    return f"relations/{name}"


def tuples_lines(h: Harvest) -> bytes:
    return "".join(json.dumps({"entities": list(e), "score": s, "weight": w}) + "\n" for e, s, w in h.tuples).encode()


def _put(store: ArtifactStore, key: str, data: bytes) -> FileEntry:
    digest = sha256_bytes(data)
    info = store.put_bytes(key, data, sha256=digest)
    store.verify(key, digest, info.size)
    return FileEntry(path=key, sha256=digest, size=info.size)


def publish_relation(store: ArtifactStore, h: Harvest) -> dict[str, Any]:
    """Upload and verify the relation's two files, then its entry.json; returns the entry."""
    base = relation_dir(h.relation)
    prompts = json.dumps([w.to_json() for w in h.prompts], indent=1).encode()
    files = [_put(store, join_key(base, "prompts.json"), prompts), _put(store, join_key(base, "tuples.jsonl"), tuples_lines(h))]
    entry = {"name": h.relation, "path": base, "tuples": len(h.tuples),
             "prompts": sum(1 for w in h.prompts if w.weight > 0), "promptsTried": len(h.prompts),
             "forwardRows": h.forward_rows, "files": [f.to_json() for f in files], "time": utcnow()}
    store.write_json(join_key(base, ENTRY_JSON), entry)
    return entry


def published_entries(store: ArtifactStore, manifest: Optional[Manifest], names: Sequence[str]) -> dict[str, dict]:
    """Every relation published so far: those the manifest lists, and any entry.json not yet listed."""
    out = {e["name"]: e for e in (manifest.model_extra or {}).get("relations", [])} if manifest else {}
    for name in names:
        if name not in out:
            try:
                out[name] = store.read_json(join_key(relation_dir(name), ENTRY_JSON))
            except NotFound:
                continue
    return out


def progress_of(entries: dict[str, dict], names: Sequence[str], **live: Any) -> dict[str, Any]:
    """The manifest's `final` block the operator reads: relations done and requested, tuples, and
    what is running now (currentRelation, stage)."""
    done = [n for n in names if n in entries]
    out = {"relationsDone": len(done), "relationsTotal": len(names), "tuples": sum(entries[n]["tuples"] for n in done)}
    out.update({k: v for k, v in live.items() if v is not None})
    return out


def write_manifest(store: ArtifactStore, base: Manifest, names: Sequence[str], **live: Any) -> Manifest:
    """Rebuild manifest.json from what is published (merging other pods' entries) plus the live progress."""
    current = read_manifest(store) or base
    entries = published_entries(store, current, names)
    listed = [entries[n] for n in names if n in entries]
    m = current.model_copy(update={"relations": listed, "final": progress_of(entries, names, **live),
                                   "updated": utcnow(), "kind": base.kind, "name": base.name,
                                   "namespace": base.namespace, "uid": base.uid})
    if m.state != "completed":
        m = m.model_copy(update={"state": "running"})
    store.write_json(MANIFEST_JSON, m.to_json())
    return m


def complete(store: ArtifactStore, base: Manifest, names: Sequence[str]) -> Optional[Manifest]:
    """Once every relation is published: kg.jsonl (relations in spec order), then the manifest marked
    completed. None while some relation is missing."""
    m = read_manifest(store) or base
    entries = published_entries(store, m, names)
    if any(n not in entries for n in names):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / KG_JSONL
        with path.open("wb") as out:
            for n in names:
                raw = store.get_bytes(join_key(relation_dir(n), "tuples.jsonl"))
                for line in raw.decode().splitlines():
                    if line.strip():
                        out.write((json.dumps({"relation": n, **json.loads(line)}) + "\n").encode())
        kg = _put(store, KG_JSONL, path.read_bytes())
    m = write_manifest(store, base, names, kg=store.uri(KG_JSONL))
    m = m.model_copy(update={"state": "completed", "kg": kg.to_json()})
    store.write_json(MANIFEST_JSON, m.to_json())
    return m
