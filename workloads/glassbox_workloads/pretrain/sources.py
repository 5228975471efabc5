"""Reading documents from data sources: local paths, file://, s3://, and stdlib:// (offline corpus).

Every reader yields (document id, text) in a fixed order (sorted paths, then line order), so the
same source always produces the same token stream.
"""

from __future__ import annotations

import fnmatch
import json
import sysconfig
from pathlib import Path
from typing import Iterable, Iterator, Optional
from urllib.parse import unquote, urlsplit

from glassbox_api.store import open_store

# The standard library's own sources: a small code corpus that every Python install has.
STDLIB_SCHEME = "stdlib://"
_STDLIB_SKIP = {"site-packages", "__pycache__", "dist-packages"}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _matches(rel: str, include: Iterable[str]) -> bool:
    pats = list(include)
    return not pats or any(fnmatch.fnmatchcase(rel, p) for p in pats)


def _docs_from_bytes(doc_id: str, raw: bytes, fmt: str, text_field: str) -> Iterator[tuple[str, str]]:
    text = raw.decode("utf-8", errors="replace")
    if fmt == "jsonl":
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            obj = json.loads(line)
            value = obj.get(text_field) if isinstance(obj, dict) else None
            if not isinstance(value, str):
                raise ValueError(f"{doc_id} line {i + 1}: no string field {text_field!r}")
            yield f"{doc_id}#{i}", value
    else:
        yield doc_id, text


def _local_files(root: Path, include: Iterable[str], default_glob: str = "*") -> list[tuple[str, Path]]:
    if root.is_file():
        return [(root.name, root)]
    if not root.is_dir():
        raise FileNotFoundError(f"data source {root} does not exist")
    out = []
    for p in root.rglob(default_glob):
        if not p.is_file() or _STDLIB_SKIP.intersection(p.relative_to(root).parts):
            continue
        rel = p.relative_to(root).as_posix()
        if _matches(rel, include):
            out.append((rel, p))
    return sorted(out)


def list_documents(uri: str, *, fmt: str = "text", text_field: str = "text",
                   include: Iterable[str] = ()) -> Iterator[tuple[str, str]]:
    """Yield (doc_id, text) for every document of a source, in a deterministic order."""
    include = list(include)
    if uri.startswith(STDLIB_SCHEME):
        sub = uri[len(STDLIB_SCHEME):].strip("/")
        root = stdlib_root() / sub if sub else stdlib_root()
        for rel, p in _local_files(root, include, "*.py"):
            yield from _docs_from_bytes(f"stdlib/{sub + '/' if sub else ''}{rel}", p.read_bytes(), fmt, text_field)
        return
    u = urlsplit(uri)
    if u.scheme == "s3":
        store = open_store(uri)
        for key in store.list():
            if _matches(key, include):
                yield from _docs_from_bytes(store.uri(key), store.get_bytes(key), fmt, text_field)
        return
    root = Path(unquote(u.path)) if u.scheme == "file" else Path(uri)
    for rel, p in _local_files(root, include):
        yield from _docs_from_bytes(rel, p.read_bytes(), fmt, text_field)


def read_uri_bytes(uri: str, default_name: Optional[str] = None) -> bytes:
    """Bytes of a file named by a store URI or path; for a folder, its default_name file."""
    u = urlsplit(uri)
    if u.scheme in ("", "file"):
        p = Path(unquote(u.path)) if u.scheme == "file" else Path(uri)
        if p.is_dir() and default_name:
            p = p / default_name
        return p.read_bytes()
    store = open_store(uri)
    if default_name and store.exists(default_name):
        return store.get_bytes(default_name)
    parent, _, leaf = uri.rstrip("/").rpartition("/")
    return open_store(parent).get_bytes(leaf)
