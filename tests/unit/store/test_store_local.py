"""LocalStore: round trips, atomic writes, checksum verification, and open_store URI parsing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from glassbox_api.store import (
    ChecksumMismatch,
    LocalStore,
    NotFound,
    S3Store,
    StoreError,
    open_store,
    split_uri,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "root")
    s.ensure()
    return s


def test_bytes_file_and_json_round_trip(store: LocalStore, tmp_path: Path) -> None:
    info = store.put_bytes("a/b/c.bin", b"hello")
    assert info.size == 5 and info.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert store.get_bytes("a/b/c.bin") == b"hello"

    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    store.put_file("big/x.bin", src)
    out = tmp_path / "dl" / "x.bin"
    got = store.get_file("big/x.bin", out)
    assert out.read_bytes() == src.read_bytes()
    assert got.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()

    store.write_json("m.json", {"b": 1, "a": [1, 2]})
    assert store.read_json("m.json") == {"a": [1, 2], "b": 1}


def test_list_exists_delete_and_sub(store: LocalStore) -> None:
    for k in ("r/1.txt", "r/sub/2.txt", "other.txt"):
        store.put_bytes(k, k.encode())
    assert store.list() == ["other.txt", "r/1.txt", "r/sub/2.txt"]
    assert store.list("r") == ["r/1.txt", "r/sub/2.txt"]
    assert store.list("missing") == []
    assert store.exists("r/1.txt") and not store.exists("r/none")
    sub = store.sub("r")
    assert sub.list() == ["1.txt", "sub/2.txt"]
    assert sub.get_bytes("sub/2.txt") == b"r/sub/2.txt"
    assert sub.uri("1.txt") == store.uri("r/1.txt")
    store.delete("r/sub/2.txt")
    store.delete("r/sub/2.txt")  # deleting twice is fine
    assert store.list("r") == ["r/1.txt"]
    assert not (store.root / "r" / "sub").exists()  # empty parents are tidied, like S3
    with pytest.raises(NotFound):
        store.get_bytes("r/sub/2.txt")
    assert store.delete_prefix("r") == 1


def test_keys_cannot_escape_the_root(store: LocalStore) -> None:
    for bad in ("../x", "a/../../x", "", "/"):
        with pytest.raises(StoreError):
            store.put_bytes(bad, b"x")


def test_a_failed_write_leaves_the_old_object_and_no_temp_file(store: LocalStore, tmp_path: Path) -> None:
    store.put_bytes("k", b"old")

    class Boom(Exception):
        pass

    src = tmp_path / "src"
    src.write_bytes(b"new" * 1000)
    real_open = open

    def failing_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        if "w" in mode and ".glassbox-tmp-" in str(path):
            f.close()
            raise Boom()
        return f

    import builtins

    builtins.open = failing_open
    try:
        with pytest.raises(Boom):
            store.put_file("k", src)
    finally:
        builtins.open = real_open
    assert store.get_bytes("k") == b"old"
    assert [p.name for p in store.root.iterdir()] == ["k"]


def test_temp_files_of_interrupted_writes_are_invisible(store: LocalStore) -> None:
    (store.root / "d").mkdir()
    (store.root / "d" / ".glassbox-tmp-123-file").write_bytes(b"partial")
    store.put_bytes("d/file", b"done")
    assert store.list() == ["d/file"]


def test_checksum_mismatch_detected_on_read(store: LocalStore, tmp_path: Path) -> None:
    info = store.put_bytes("w.bin", b"weights")
    # An explicit expected digest is always checked.
    with pytest.raises(ChecksumMismatch):
        store.get_bytes("w.bin", sha256="0" * 64)
    with pytest.raises(ChecksumMismatch):
        store.get_file("w.bin", tmp_path / "o", sha256="0" * 64)
    assert not (tmp_path / "o").exists()  # a bad download never lands at its destination
    # Bit rot behind the store's back: caught against the manifest's digest, and against the
    # digest recorded at write time where the filesystem keeps extended attributes.
    (store.root / "w.bin").write_bytes(b"weightz")
    with pytest.raises(ChecksumMismatch):
        store.get_bytes("w.bin", sha256=info.sha256)
    with pytest.raises(ChecksumMismatch):
        store.verify("w.bin", info.sha256, info.size)
    if store.stat("w.bin").sha256 is not None:
        with pytest.raises(ChecksumMismatch):
            store.get_bytes("w.bin")


def test_put_with_wrong_expected_digest_is_refused(store: LocalStore) -> None:
    with pytest.raises(ChecksumMismatch):
        store.put_bytes("x", b"abc", sha256="f" * 64)
    assert not store.exists("x")


def test_open_store_uris(tmp_path: Path) -> None:
    assert open_store(str(tmp_path)) == LocalStore(tmp_path)
    assert open_store(f"file://{tmp_path}") == LocalStore(tmp_path)
    assert open_store(tmp_path) == LocalStore(tmp_path)
    s3 = open_store("s3://bucket/some/prefix/")
    assert isinstance(s3, S3Store) and s3.bucket == "bucket" and s3.prefix == "some/prefix"
    assert s3.uri("k/x.json") == "s3://bucket/some/prefix/k/x.json"
    assert open_store("s3://bucket").uri() == "s3://bucket"
    with pytest.raises(StoreError):
        open_store("gs://bucket/x")
    with pytest.raises(StoreError) as err:
        open_store("s3://AKIAX:topsecret@bucket/x")
    assert "topsecret" not in str(err.value)
    local = LocalStore(tmp_path)
    local.put_bytes("a/b.json", b"{}")
    parent, leaf = split_uri(local.uri("a/b.json"))
    assert leaf == "b.json" and parent.get_bytes(leaf) == b"{}"
