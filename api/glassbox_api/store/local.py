"""LocalStore: a directory. Every write goes to a temp file in the same directory, then os.replace."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Optional

from .base import (
    CHUNK,
    ArtifactStore,
    ChecksumMismatch,
    NotFound,
    ObjectInfo,
    StoreError,
    clean_key,
    join_key,
    sha256_bytes,
    sha256_file,
)

_XATTR = "user.glassbox.sha256"
_TMP_PREFIX = ".glassbox-tmp-"


def _set_digest(path: Path, digest: str) -> None:
    # Best effort: the digest rides along as an extended attribute where the filesystem has them,
    # so reads can verify without a sidecar file; the manifest's own digests are the real contract.
    try:
        os.setxattr(path, _XATTR, digest.encode())
    except (OSError, AttributeError):
        pass


def _get_digest(path: "Path | int") -> Optional[str]:
    try:
        return os.getxattr(path, _XATTR).decode()
    except (OSError, AttributeError):
        return None


class LocalStore(ArtifactStore):
    """Artifacts in a directory tree; keys map to relative paths."""

    def __init__(self, root: str | os.PathLike, *, fsync: bool = True):
        self.root = Path(root).expanduser().resolve()
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStore) and other.root == self.root

    def __hash__(self) -> int:
        return hash(("local", self.root))

    # ---- paths ----
    def _path(self, key: str) -> Path:
        return self.root / clean_key(key)

    def _tmp_for(self, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}-{dest.name}"

    def _commit(self, tmp: Path, dest: Path, digest: str) -> None:
        _set_digest(tmp, digest)
        os.replace(tmp, dest)
        if self.fsync:
            # Make the rename itself durable, not only the file contents.
            try:
                fd = os.open(dest.parent, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass

    # ---- interface ----
    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def put_bytes(self, key: str, data: bytes, *, sha256: Optional[str] = None) -> ObjectInfo:
        dest = self._path(key)
        digest = sha256_bytes(data)
        if sha256 is not None and sha256 != digest:
            raise ChecksumMismatch(key, sha256, digest)
        tmp = self._tmp_for(dest)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            self._commit(tmp, dest, digest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ObjectInfo(clean_key(key), len(data), digest)

    def put_file(self, key: str, path: str | os.PathLike, *, sha256: Optional[str] = None) -> ObjectInfo:
        dest = self._path(key)
        src = Path(path)
        if not src.is_file():
            raise NotFound(f"local file {src} does not exist")
        tmp = self._tmp_for(dest)
        import hashlib

        h = hashlib.sha256()
        size = 0
        try:
            # Copy and hash in one pass: the digest describes exactly the bytes written.
            with open(src, "rb") as fi, open(tmp, "wb") as fo:
                for block in iter(lambda: fi.read(CHUNK), b""):
                    h.update(block)
                    fo.write(block)
                    size += len(block)
                if self.fsync:
                    fo.flush()
                    os.fsync(fo.fileno())
            digest = h.hexdigest()
            if sha256 is not None and sha256 != digest:
                raise ChecksumMismatch(str(src), sha256, digest)
            self._commit(tmp, dest, digest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ObjectInfo(clean_key(key), size, digest)

    def _open(self, key: str):
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"{self.uri(key)} does not exist") from None

    def get_bytes(self, key: str, *, sha256: Optional[str] = None) -> bytes:
        # Digest and bytes come from the same open file: a concurrent replace of the path cannot
        # pair the old bytes with the new digest.
        with self._open(key) as f:
            want = sha256 if sha256 is not None else _get_digest(f.fileno())
            data = f.read()
        if want is not None:
            got = sha256_bytes(data)
            if got != want:
                raise ChecksumMismatch(self.uri(key), want, got)
        return data

    def get_file(self, key: str, path: str | os.PathLike, *, sha256: Optional[str] = None) -> ObjectInfo:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}-{dest.name}"
        try:
            with self._open(key) as fi, open(tmp, "wb") as fo:
                want = sha256 if sha256 is not None else _get_digest(fi.fileno())
                shutil.copyfileobj(fi, fo, CHUNK)
            got = sha256_file(tmp)
            if want is not None and got != want:
                raise ChecksumMismatch(self.uri(key), want, got)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ObjectInfo(clean_key(key), dest.stat().st_size, got)

    def stat(self, key: str) -> ObjectInfo:
        p = self._path(key)
        if not p.is_file():
            raise NotFound(f"{self.uri(key)} does not exist")
        return ObjectInfo(clean_key(key), p.stat().st_size, _get_digest(p))

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / clean_key(prefix) if prefix.strip("/") else self.root
        if base.is_file():
            return [clean_key(prefix)]
        if not base.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for fn in files:
                if fn.startswith(_TMP_PREFIX):
                    continue  # an in-flight or abandoned write: never visible
                out.append(Path(dirpath, fn).relative_to(self.root).as_posix())
        return sorted(out)

    def delete(self, key: str) -> None:
        p = self._path(key)
        try:
            p.unlink()
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise StoreError(f"{self.uri(key)} is a directory; use delete_prefix") from None
        # Tidy empty parents up to the root, like S3 where directories do not exist.
        parent = p.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def uri(self, key: str = "") -> str:
        p = self.root / clean_key(key) if key.strip("/") else self.root
        return p.as_uri()

    def sub(self, prefix: str) -> "LocalStore":
        return LocalStore(self.root / clean_key(prefix), fsync=self.fsync) if prefix.strip("/") else self


__all__ = ["LocalStore", "join_key"]
