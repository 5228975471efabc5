"""The S3 server the tests use is real S3 through the minio SDK: buckets, multipart uploads,
presigned URLs, signature checks, and a stop/start that keeps the data."""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest
from minio.error import S3Error

from tests.support.s3 import S3Server

MiB = 1024 * 1024


@pytest.fixture
def bucket(s3: S3Server):
    client = s3.client()
    name = f"t-{uuid.uuid4().hex[:12]}"
    client.make_bucket(name)
    yield name
    for obj in client.list_objects(name, recursive=True):
        client.remove_object(name, obj.object_name)
    client.remove_bucket(name)


def test_make_bucket(s3: S3Server, bucket: str):
    client = s3.client()
    assert client.bucket_exists(bucket)
    assert bucket in {b.name for b in client.list_buckets()}
    assert not client.bucket_exists(f"{bucket}-missing")


def test_multipart_upload_round_trips(s3: S3Server, bucket: str):
    client = s3.client()
    data = os.urandom(12 * MiB + 123)  # 3 parts of 5 MiB
    result = client.put_object(bucket, "ckpt/model.safetensors", io.BytesIO(data), length=len(data),
                               part_size=5 * MiB)
    # An S3 multipart ETag is md5-of-part-md5s with a "-<parts>" suffix; a single PUT has none.
    assert result.etag.endswith("-3"), result.etag
    stat = client.stat_object(bucket, "ckpt/model.safetensors")
    assert stat.size == len(data) and stat.etag == result.etag
    response = client.get_object(bucket, "ckpt/model.safetensors")
    try:
        assert response.read() == data
    finally:
        response.close()
        response.release_conn()


def test_presigned_get_returns_the_exact_bytes(s3: S3Server, bucket: str):
    client = s3.client()
    data = os.urandom(64 * 1024)
    client.put_object(bucket, "manifest.json", io.BytesIO(data), length=len(data))
    url = client.presigned_get_object(bucket, "manifest.json", expires=timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == data
    # The signature is really checked: the same URL for another key is refused.
    forged = url.replace("manifest.json", "other.json")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 403


# versitygw names an unknown access key XAdminUserNotFound where AWS says InvalidAccessKeyId.
@pytest.mark.parametrize(("access", "secret", "codes"), [
    (None, "wrong-secret", {"SignatureDoesNotMatch"}),
    ("no-such-user", None, {"InvalidAccessKeyId", "XAdminUserNotFound"}),
])
def test_wrong_credentials_are_refused(s3: S3Server, bucket: str, access: str | None, secret: str | None,
                                       codes: set[str]):
    client = s3.client(access_key=access, secret_key=secret)
    with pytest.raises(S3Error) as refused:
        client.list_objects(bucket).__next__()
    assert refused.value.code in codes
    with pytest.raises(S3Error):
        client.put_object(bucket, "x", io.BytesIO(b"x"), length=1)
    assert not list(s3.client().list_objects(bucket))


def test_stop_for_keeps_port_and_data(s3: S3Server, bucket: str):
    if not s3.managed:
        pytest.skip("an external S3 server (GLASSBOX_TEST_S3_ENDPOINT) cannot be stopped by the tests")
    client = s3.client()
    client.put_object(bucket, "kept", io.BytesIO(b"kept"), length=4)
    endpoint = s3.endpoint
    restarted = s3.stop_for(1.0)
    assert not s3._answers()
    restarted.join(timeout=30)
    assert s3.is_running() and s3.endpoint == endpoint
    response = client.get_object(bucket, "kept")
    try:
        assert response.read() == b"kept"
    finally:
        response.close()
        response.release_conn()
