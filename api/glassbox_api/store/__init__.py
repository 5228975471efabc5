"""The artifact store: one interface over a local directory and S3 (DESIGN.md section 4).

    store = open_store("s3://bucket/prefix")      # or "/path", "file:///path"
    run = store.sub(run_prefix("default", "PretrainRun", "tiny", uid))
    run.write_json("run.json", {...}); run.read_json("manifest.json")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

from .base import (
    ArtifactStore,
    ChecksumMismatch,
    NotFound,
    ObjectInfo,
    StoreError,
    TransientStoreError,
    join_key,
    sha256_bytes,
    sha256_file,
)
from .local import LocalStore
from .retry import RetryPolicy, is_transient
from .runs import find_run, find_run_prefixes, find_runs
from .s3 import S3Settings, S3Store


def open_store(
    uri: str | os.PathLike,
    *,
    settings: Optional[S3Settings] = None,
    retry: Optional[RetryPolicy] = None,
) -> ArtifactStore:
    """A store from '/path', 'relative/path', 'file:///path' or 's3://bucket[/prefix]'.

    S3 endpoint and credentials come from settings, else from the environment (S3Settings.from_env).
    """
    if isinstance(uri, Path):
        return LocalStore(uri)
    s = str(uri)
    if "://" not in s:
        return LocalStore(s)
    u = urlsplit(s)
    if u.scheme == "file":
        if u.netloc not in ("", "localhost"):
            raise StoreError(f"file URI with a host is not supported: {s}")
        return LocalStore(unquote(u.path))
    if u.scheme == "s3":
        if not u.netloc:
            raise StoreError(f"s3 URI without a bucket: {s}")
        if u.username or u.password:
            # Never accept (and so never echo) credentials inside a URI.
            raise StoreError("s3 URIs must not carry credentials; use the environment or a mounted Secret")
        return S3Store(u.netloc, unquote(u.path).strip("/"), settings=settings, retry=retry)
    raise StoreError(f"unsupported store URI scheme {u.scheme!r} (use a path, file:// or s3://)")


def split_uri(uri: str) -> tuple[ArtifactStore, str]:
    """Open the store that holds uri and return (store rooted at its parent, last path element)."""
    s = str(uri).rstrip("/")
    parent, _, leaf = s.rpartition("/")
    if not parent or parent.endswith(":/") or parent.endswith(":"):
        raise StoreError(f"cannot split {uri!r} into a store and a key")
    return open_store(parent), leaf


__all__ = [
    "ArtifactStore",
    "ChecksumMismatch",
    "LocalStore",
    "NotFound",
    "ObjectInfo",
    "RetryPolicy",
    "S3Settings",
    "S3Store",
    "StoreError",
    "TransientStoreError",
    "find_run",
    "find_run_prefixes",
    "find_runs",
    "is_transient",
    "join_key",
    "open_store",
    "sha256_bytes",
    "sha256_file",
    "split_uri",
]
