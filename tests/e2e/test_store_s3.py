"""S3Store against a real S3 server (versitygw): round trips, parallel multipart uploads, checksum
verification on read-back, and retries that ride out the server going away."""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from glassbox_api.manifest import CheckpointEntry, checkpoint_dir, read_manifest
from glassbox_api.store import ChecksumMismatch, NotFound, RetryPolicy, S3Settings, S3Store, open_store, sha256_file
from glassbox_workloads.runtime.publisher import CheckpointPublisher

MiB = 1024 * 1024


@pytest.fixture
def bucket(s3) -> str:
    name = f"gb-{uuid.uuid4().hex[:12]}"
    s3.client().make_bucket(name)
    return name


@pytest.fixture
def s3_env(s3, monkeypatch: pytest.MonkeyPatch):
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GLASSBOX_S3_RETRY_DEADLINE", "120")
    return s3


def store_for(s3, bucket: str, prefix: str = "runs", **kw) -> S3Store:
    settings = S3Settings.from_env(s3.env(), **kw)
    return S3Store(bucket, prefix, settings=settings, retry=RetryPolicy(deadline=120, initial=0.2, maximum=2.0))


def test_round_trips(s3, bucket: str, tmp_path: Path) -> None:
    st = store_for(s3, bucket)
    st.put_bytes("a/b.json", b'{"x": 1}')
    assert st.read_json("a/b.json") == {"x": 1}
    assert st.stat("a/b.json").sha256 is not None
    st.write_json("a/c/d.json", [1, 2])
    assert st.list() == ["a/b.json", "a/c/d.json"] and st.list("a/c") == ["a/c/d.json"]
    assert st.sub("a").list() == ["b.json", "c/d.json"] and st.sub("a").read_json("c/d.json") == [1, 2]
    assert st.exists("a/b.json") and not st.exists("a/zz")
    with pytest.raises(NotFound):
        st.get_bytes("a/zz")
    st.delete("a/b.json")
    assert st.list() == ["a/c/d.json"]
    assert st.uri("a/c/d.json") == f"s3://{bucket}/runs/a/c/d.json"


def test_parallel_multipart_upload_of_a_large_file(s3, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(13 * MiB + 123))
    st = store_for(s3, bucket, part_size=5 * MiB, parallel_uploads=3, multipart_threshold=5 * MiB)
    info = st.put_file("ckpt/model.safetensors", src)
    assert info.size == src.stat().st_size
    # The server holds a multipart object (its ETag ends in -<parts>), and it reads back exact.
    etag = s3.client().stat_object(bucket, "runs/ckpt/model.safetensors").etag
    assert etag.endswith("-3")
    out = tmp_path / "back.bin"
    got = st.get_file("ckpt/model.safetensors", out)
    assert got.sha256 == sha256_file(src) == info.sha256
    st.verify("ckpt/model.safetensors", info.sha256, info.size, deep=True)


@pytest.mark.parametrize("sign", [False, True], ids=["unsigned-payload", "signed-payload"])
def test_payload_signing_modes_and_the_single_put_threshold(s3, bucket: str, tmp_path: Path, sign: bool) -> None:
    # The server accepts object data sent either way; at or below the threshold a file goes up in
    # one PUT (a plain ETag), above it as a multipart upload (ETag -N); both read back verified.
    st = store_for(s3, bucket, part_size=5 * MiB, multipart_threshold=6 * MiB, sign_payload=sign)
    trace = io.StringIO()
    st.client.trace_on(trace)
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(os.urandom(6 * MiB))
    large.write_bytes(os.urandom(6 * MiB + 1))
    infos = [st.put_file(f"{sign}/{f.name}", f) for f in (small, large)]
    st.client.trace_off()
    sent = [line for line in trace.getvalue().splitlines() if line.lower().startswith("x-amz-content-sha256")]
    unsigned = [line for line in sent if "UNSIGNED-PAYLOAD" in line]
    assert sent and (not unsigned if sign else len(unsigned) == 3)  # one PUT + two parts
    etags = [s3.client().stat_object(bucket, f"runs/{sign}/{f.name}").etag for f in (small, large)]
    assert "-" not in etags[0] and etags[1].endswith("-2")
    for f, info in zip((small, large), infos):
        assert st.get_file(f"{sign}/{f.name}", tmp_path / "back").sha256 == sha256_file(f) == info.sha256


def test_checksum_mismatch_is_detected_on_read_back(s3, bucket: str, tmp_path: Path) -> None:
    st = store_for(s3, bucket)
    info = st.put_bytes("w.bin", b"the real weights")
    # Replace the bytes behind the store's back but keep the recorded digest.
    evil = b"other weights!!!"
    s3.client().put_object(bucket, "runs/w.bin", io.BytesIO(evil), len(evil), metadata={"sha256": info.sha256})
    with pytest.raises(ChecksumMismatch):
        st.get_bytes("w.bin")
    with pytest.raises(ChecksumMismatch):
        st.get_file("w.bin", tmp_path / "w.bin")
    assert not (tmp_path / "w.bin").exists()
    with pytest.raises(ChecksumMismatch):
        st.verify("w.bin", info.sha256, deep=True)


def test_open_store_uses_the_environment(s3_env, bucket: str) -> None:
    st = open_store(f"s3://{bucket}/p")
    st.put_bytes("k", b"v")
    assert st.get_bytes("k") == b"v"


def test_wrong_credentials_fail_without_leaking_them(s3, bucket: str) -> None:
    env = {**s3.env(), "GLASSBOX_S3_SECRET_KEY": "definitely-wrong-secret"}
    st = S3Store(bucket, "p", settings=S3Settings.from_env(env), retry=RetryPolicy(deadline=2))
    with pytest.raises(Exception) as err:
        st.put_bytes("k", b"v")
    assert "definitely-wrong-secret" not in str(err.value) and s3.secret_key not in str(err.value)


def test_an_upload_survives_an_outage_mid_multipart(s3, bucket: str, tmp_path: Path) -> None:
    if not s3.managed:
        pytest.skip("the S3 server is external (GLASSBOX_TEST_S3_ENDPOINT): it cannot be stopped")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(24 * MiB))
    st = store_for(s3, bucket, part_size=5 * MiB, parallel_uploads=2, multipart_threshold=5 * MiB)
    restarted: list[threading.Thread] = []
    timer = threading.Timer(0.3, lambda: restarted.append(s3.stop_for(5)))
    timer.start()
    t0 = time.monotonic()
    info = st.put_file("big.bin", src)
    timer.join()
    restarted[0].join()
    assert time.monotonic() - t0 >= 4  # it waited for the server (the outage hit the upload)
    assert st.get_file("big.bin", tmp_path / "back").sha256 == info.sha256


@pytest.mark.slow
def test_a_publish_survives_the_server_stopping_for_30_seconds(s3, bucket: str, tmp_path: Path) -> None:
    if not s3.managed:
        pytest.skip("the S3 server is external (GLASSBOX_TEST_S3_ENDPOINT): it cannot be stopped")
    st = store_for(s3, bucket)
    outage: list[threading.Thread] = []

    def fault(at: str, e: CheckpointEntry) -> None:
        # Between "all files uploaded" and the manifest commit: the worst moment to lose S3.
        if at == "uploaded" and e.step == 2:
            outage.append(s3.stop_for(30))

    pub = CheckpointPublisher(st, fault_hook=fault)
    for step in (1, 2, 3):
        d = tmp_path / f"s{step}"
        d.mkdir()
        for n in ("model.safetensors", "optimizer.pt"):
            (d / n).write_bytes(os.urandom(256 * 1024))
        pub.submit(d, CheckpointEntry(step=step, tokens=step, loss=1.0, path=checkpoint_dir(step)))
        if step == 2:
            time.sleep(5)
            # The server is down: step 2 is uploaded but cannot be committed yet.
            assert not s3.is_running()
            assert [c.step for c in pub.manifest.checkpoints] == [1]
    t0 = time.monotonic()
    pub.close()
    outage[0].join()
    assert time.monotonic() - t0 >= 15  # the publisher really waited the outage out
    m = read_manifest(st)
    assert [c.step for c in m.checkpoints] == [1, 2, 3]
    for c in m.checkpoints:
        for f in c.files:
            st.verify(f"{c.path}/{f.path}", f.sha256, f.size, deep=True)
