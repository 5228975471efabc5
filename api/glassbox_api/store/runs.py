"""Finding the run folders of a resource in a store (`<namespace>/<kind>/<name>-<uid8>/`)."""

from __future__ import annotations

from typing import Optional

from .base import ArtifactStore

_RECORDS = ("manifest.json", "run.json")


def _updated(run: ArtifactStore) -> str:
    from ..manifest import read_manifest, read_run_record

    m = read_manifest(run)
    if m is not None:
        return m.updated
    r = read_run_record(run)
    return r.created if r else ""


def find_run_prefixes(store: ArtifactStore, namespace: Optional[str], kind: Optional[str], name: str) -> list[str]:
    """The run folders (`<namespace>/<kind>/<name>-<uid8>`) of the resource `name` in store, newest
    first (by manifest update, else by run.json creation). namespace and kind (any case) narrow the
    search; None matches any."""
    base = "/".join(p for p in (namespace, kind.lower() if kind and namespace else None) if p)
    prefixes: set[str] = set()
    for key in store.list(base):
        bits = key.split("/")
        if len(bits) != 4 or bits[3] not in _RECORDS:
            continue
        ns, k, leaf = bits[:3]
        if leaf.rsplit("-", 1)[0] != name:
            continue
        if (namespace is None or ns == namespace) and (kind is None or k == kind.lower()):
            prefixes.add("/".join(bits[:3]))
    return sorted(prefixes, key=lambda p: (_updated(store.sub(p)), p), reverse=True)


def find_runs(store: ArtifactStore, namespace: Optional[str], kind: Optional[str], name: str) -> list[ArtifactStore]:
    """Every run folder of the resource `name` in store, newest first (see find_run_prefixes)."""
    return [store.sub(p) for p in find_run_prefixes(store, namespace, kind, name)]


def find_run(store: ArtifactStore, namespace: Optional[str], kind: Optional[str], name: str) -> Optional[ArtifactStore]:
    """The run folder of a resource in store, or None; the newest when several uids ran."""
    prefixes = find_run_prefixes(store, namespace, kind, name)
    return store.sub(prefixes[0]) if prefixes else None
