"""The artifact store interface: flat keys ('a/b/c.json') under a root, the same for a directory and S3."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional

CHUNK = 1 << 20  # hashing / copy buffer


class StoreError(Exception):
    """Base of every error the store raises (messages never carry credentials)."""


class NotFound(StoreError, KeyError):
    """The key does not exist."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "not found"


class ChecksumMismatch(StoreError):
    """Bytes read back do not hash to the expected sha256."""

    def __init__(self, key: str, expected: str, actual: str):
        super().__init__(f"checksum mismatch for {key}: expected sha256 {expected}, got {actual}")
        self.key, self.expected, self.actual = key, expected, actual


class TransientStoreError(StoreError):
    """A transient error outlived the retry deadline."""


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows of one object; sha256 is None where it was not recorded at write time."""

    key: str
    size: int
    sha256: Optional[str] = None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_stream(f: BinaryIO) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: f.read(CHUNK), b""):
        h.update(block)
    return h.hexdigest()


def clean_key(key: str) -> str:
    """Normalise a key; refuse ones that could escape the root ('..', absolute, empty)."""
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise StoreError(f"invalid key {key!r}")
    return "/".join(parts)


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class ArtifactStore(ABC):
    """One interface over a local directory and an S3 prefix.

    Writes of a single object are atomic for readers (temp + rename locally, a single PUT or a
    completed multipart upload on S3); there is no multi-object transaction, which is why the run
    manifest is the commit point (DESIGN.md section 4).
    """

    # ---- required primitives -------------------------------------------------------------
    @abstractmethod
    def put_file(self, key: str, path: str | os.PathLike, *, sha256: Optional[str] = None) -> ObjectInfo:
        """Upload a local file; sha256 is computed when not given and recorded with the object."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, sha256: Optional[str] = None) -> ObjectInfo:
        """Write bytes as one object."""

    @abstractmethod
    def get_bytes(self, key: str, *, sha256: Optional[str] = None) -> bytes:
        """Read an object; verify it against sha256 (given, or recorded at write time)."""

    @abstractmethod
    def get_file(self, key: str, path: str | os.PathLike, *, sha256: Optional[str] = None) -> ObjectInfo:
        """Download to path atomically; verify like get_bytes."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size and recorded sha256; raises NotFound."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key under prefix (recursive), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; a missing key is not an error."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """A URI that open_store() understands, for the root or a key under it."""

    @abstractmethod
    def sub(self, prefix: str) -> "ArtifactStore":
        """The same store rooted at prefix (keys are relative to it)."""

    def ensure(self) -> None:
        """Create what the store needs (directory, bucket); a no-op where it exists."""

    # ---- derived helpers -------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except NotFound:
            return False

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for k in keys:
            self.delete(k)
        return len(keys)

    def read_json(self, key: str, *, sha256: Optional[str] = None) -> Any:
        return json.loads(self.get_bytes(key, sha256=sha256).decode("utf-8"))

    def write_json(self, key: str, obj: Any) -> ObjectInfo:
        data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode("utf-8") + b"\n"
        return self.put_bytes(key, data)

    def verify(self, key: str, sha256: str, size: Optional[int] = None, *, deep: bool = True) -> None:
        """Check an object is there with the given digest: deep reads it back and hashes it."""
        info = self.stat(key)
        if size is not None and info.size != size:
            raise ChecksumMismatch(key, f"{sha256} ({size} bytes)", f"{info.sha256} ({info.size} bytes)")
        if deep:
            got = self._hash_remote(key)
            if got != sha256:
                raise ChecksumMismatch(key, sha256, got)
        elif info.sha256 is not None and info.sha256 != sha256:
            raise ChecksumMismatch(key, sha256, info.sha256)

    def _hash_remote(self, key: str) -> str:
        with tempfile.TemporaryDirectory(prefix="glassbox-verify-") as d:
            p = Path(d) / "obj"
            self.get_file(key, p)
            return sha256_file(p)

    def walk_dirs(self, prefix: str = "") -> Iterator[str]:
        """Immediate 'subdirectories' under prefix (derived from list())."""
        seen: set[str] = set()
        base = prefix.strip("/")
        for k in self.list(base):
            rest = k[len(base) + 1 :] if base else k
            if "/" in rest:
                d = rest.split("/", 1)[0]
                if d not in seen:
                    seen.add(d)
                    yield d
