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


def find_runs(store: ArtifactStore, namespace: Optional[str], kind: Optional[str], name: str) -> list[ArtifactStore]:
    """Every run folder of the resource `name` in store, newest first (by manifest update, else by
    run.json creation). namespace and kind (any case) narrow the search; None matches any."""
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
    runs = [store.sub(p) for p in sorted(prefixes)]
    keyed = sorted(((_updated(r), p, r) for p, r in zip(sorted(prefixes), runs)), key=lambda t: (t[0], t[1]), reverse=True)
    return [r for _, _, r in keyed]


def find_run(store: ArtifactStore, namespace: Optional[str], kind: Optional[str], name: str) -> Optional[ArtifactStore]:
    """The run folder of a resource in store, or None; the newest when several uids ran."""
    runs = find_runs(store, namespace, kind, name)
    return runs[0] if runs else None
