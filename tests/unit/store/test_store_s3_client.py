"""How S3Store talks to the SDK: which payloads are signed, and when a file goes up in one PUT.
The round trips through a real S3 server are in tests/e2e/test_store_s3.py."""

from __future__ import annotations

import hashlib
import inspect

import minio
import pytest
from minio.credentials import Credentials
from pydantic import SecretStr

from glassbox_api.store import S3Settings, S3Store
from glassbox_api.store.s3 import MIN_PART, UNSIGNED_FROM

MiB = 1024 * 1024
CREDS = Credentials("ak", "sk")


def settings(**kw) -> S3Settings:
    return S3Settings(endpoint="127.0.0.1:9", secure=False, access_key="ak", secret_key=SecretStr("sk"), **kw)


def test_the_overridden_sdk_method_still_exists_with_the_same_parameters() -> None:
    # The unsigned-payload client overrides Minio._build_headers; if an SDK release renames it or
    # changes its parameters, payloads would silently be signed again (or requests break).
    assert "_build_headers" in vars(minio.Minio)
    params = list(inspect.signature(minio.Minio._build_headers).parameters)
    assert params == ["self", "host", "headers", "body", "creds"]


def test_object_data_goes_unsigned_over_http_by_default() -> None:
    client = settings().client()
    assert type(client).__name__ == "UnsignedPayloadMinio"
    body = b"w" * UNSIGNED_FROM
    headers, _ = client._build_headers("h:9", {"x-amz-meta-sha256": "abc"}, body, CREDS)
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert headers["Content-Length"] == str(len(body)) and "Content-MD5" not in headers
    assert headers["x-amz-meta-sha256"] == "abc"  # the digest the store checks on every read


def test_small_control_bodies_stay_signed() -> None:
    client = settings().client()
    body = b"<CompleteMultipartUpload/>"
    headers, _ = client._build_headers("h:9", {}, body, CREDS)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    headers, _ = client._build_headers("h:9", {}, None, CREDS)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(b"").hexdigest()


def test_sign_payload_restores_the_sdk_behaviour() -> None:
    client = settings(sign_payload=True).client()
    assert type(client) is minio.Minio
    body = b"w" * (UNSIGNED_FROM * 2)
    headers, _ = client._build_headers("h:9", {}, body, CREDS)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()


def test_part_size_sends_one_put_up_to_the_threshold() -> None:
    st = S3Store("b", settings=settings(part_size=16 * MiB, multipart_threshold=64 * MiB))
    assert st._part_size(10) == MIN_PART  # the SDK's floor; one PUT all the same
    assert st._part_size(64 * MiB) == 64 * MiB  # one PUT
    assert st._part_size(64 * MiB + 1) == 16 * MiB  # multipart, 16 MiB parts
    st = S3Store("b", settings=settings(part_size=16 * MiB, multipart_threshold=0))
    assert st._part_size(6 * MiB) == 16 * MiB


@pytest.mark.parametrize("value,want", [("1", True), ("true", True), ("0", False), ("no", False)])
def test_settings_from_env(value: str, want: bool) -> None:
    s = S3Settings.from_env({"GLASSBOX_S3_SIGN_PAYLOAD": value, "GLASSBOX_S3_MULTIPART_THRESHOLD": "1048576"})
    assert s.sign_payload is want and s.multipart_threshold == MiB
    assert S3Settings.from_env({}).sign_payload is False
