"""S3Store: an S3 bucket prefix through the minio SDK (MinIO, versitygw, AWS S3, any S3 server)."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

from pydantic import SecretStr

from ..podcontract import Env
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
)
from .retry import RetryPolicy

META_SHA256 = "sha256"  # sent as x-amz-meta-sha256
MIN_PART = 5 * 1024 * 1024  # the S3 minimum part size
UNSIGNED_FROM = 64 * 1024
"""Request bodies at least this large (object data, never the small XML of control calls) go with
x-amz-content-sha256: UNSIGNED-PAYLOAD unless S3Settings.sign_payload is set."""
DEFAULT_SECRET_DIR = "/var/run/secrets/glassbox/s3"

# Key names a mounted Secret may use, most specific first.
_ACCESS_NAMES = ("accessKey", "access-key", "access_key", "AWS_ACCESS_KEY_ID", "accesskey", "rootUser")
_SECRET_NAMES = ("secretKey", "secret-key", "secret_key", "AWS_SECRET_ACCESS_KEY", "secretkey", "rootPassword")
_TOKEN_NAMES = ("sessionToken", "session-token", "AWS_SESSION_TOKEN")


def _truthy(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on")


def _host(endpoint: str) -> str:
    return (urlsplit(endpoint).netloc if "://" in endpoint else endpoint).strip().rstrip("/").lower()


def _same_host(given_for: Optional[str], target: Optional[str]) -> bool:
    """Credentials given for `given_for` (None: for whatever endpoint is in use) may go to target."""
    return not given_for or not target or _host(given_for) == _host(target)


def _read_secret_dir(d: Path, names: tuple[str, ...]) -> Optional[str]:
    for n in names:
        p = d / n
        if p.is_file():
            return p.read_text().strip()
    return None


@dataclass(frozen=True)
class S3Settings:
    """Where and as whom to talk S3. The secret is a SecretStr: it never prints."""

    endpoint: str = "s3.amazonaws.com"
    secure: bool = True
    region: Optional[str] = "us-east-1"
    access_key: Optional[str] = field(default=None, repr=False)
    secret_key: Optional[SecretStr] = field(default=None, repr=False)
    session_token: Optional[SecretStr] = field(default=None, repr=False)
    part_size: int = 16 * 1024 * 1024
    parallel_uploads: int = 4
    multipart_threshold: int = 64 * 1024 * 1024
    """Files up to this size go up in one PUT: on a multipart upload the server reassembles the
    parts on completion, a second pass over every byte that a single PUT does not need."""
    sign_payload: bool = False
    """Sign object data with its SHA-256 (SigV4 signed payload). Off by default: over HTTPS the SDK
    never signs it anyway, and over plain HTTP the signature would cost a SHA-256 pass on the client
    and another on the server per byte, while the store already gives end-to-end integrity: every
    object carries its SHA-256 in x-amz-meta-sha256 (a signed header, so not forgeable in transit)
    and every read verifies it."""
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    cert_check: bool = True

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **overrides) -> "S3Settings":
        """Read GLASSBOX_S3_* (then AWS_*), or a mounted Secret directory, for anything not overridden."""
        env = os.environ if env is None else env
        endpoint = env.get(Env.S3_ENDPOINT) or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        env_endpoint = endpoint
        secret_dir = Path(env.get(Env.S3_CREDENTIALS_DIR) or DEFAULT_SECRET_DIR)
        have_dir = secret_dir.is_dir()
        dir_endpoint = _read_secret_dir(secret_dir, ("endpoint", Env.S3_ENDPOINT)) if have_dir else None
        if not endpoint:
            endpoint = dir_endpoint
        # Credentials go only to the endpoint they were given for: the environment's to the
        # environment's endpoint, a mounted Secret's to the endpoint it names (when it names one).
        target = overrides.get("endpoint") or endpoint
        env_creds_apply = _same_host(env_endpoint, target)
        have_dir = have_dir and _same_host(dir_endpoint, target)
        secure = True
        if endpoint and "://" in endpoint:
            u = urlsplit(endpoint)
            secure = u.scheme == "https"
            endpoint = u.netloc
        if env.get(Env.S3_SECURE):
            secure = _truthy(env[Env.S3_SECURE])

        access = secret = token = None
        if env_creds_apply:
            access = env.get(Env.S3_ACCESS_KEY) or env.get(Env.AWS_ACCESS_KEY_ID)
            secret = env.get(Env.S3_SECRET_KEY) or env.get(Env.AWS_SECRET_ACCESS_KEY)
            token = env.get(Env.S3_SESSION_TOKEN) or env.get("AWS_SESSION_TOKEN")
        if not (access and secret) and have_dir:
            access = _read_secret_dir(secret_dir, _ACCESS_NAMES)
            secret = _read_secret_dir(secret_dir, _SECRET_NAMES)
            token = _read_secret_dir(secret_dir, _TOKEN_NAMES)

        kw = dict(
            endpoint=endpoint or "s3.amazonaws.com",
            secure=secure,
            region=env.get(Env.S3_REGION) or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key=access or None,
            secret_key=SecretStr(secret) if secret else None,
            session_token=SecretStr(token) if token else None,
        )
        if env.get(Env.S3_PART_SIZE):
            kw["part_size"] = int(env[Env.S3_PART_SIZE])
        if env.get(Env.S3_PARALLEL_UPLOADS):
            kw["parallel_uploads"] = int(env[Env.S3_PARALLEL_UPLOADS])
        if env.get(Env.S3_MULTIPART_THRESHOLD):
            kw["multipart_threshold"] = int(env[Env.S3_MULTIPART_THRESHOLD])
        if env.get(Env.S3_SIGN_PAYLOAD):
            kw["sign_payload"] = _truthy(env[Env.S3_SIGN_PAYLOAD])
        if env.get(Env.S3_CERT_CHECK):
            kw["cert_check"] = _truthy(env[Env.S3_CERT_CHECK])
        kw.update({k: v for k, v in overrides.items() if v is not None})
        for k in ("secret_key", "session_token"):
            if isinstance(kw.get(k), str):
                kw[k] = SecretStr(kw[k])
        return cls(**kw)

    def client(self):
        """A minio client whose own retries are off: RetryPolicy decides, with a deadline."""
        import certifi
        import urllib3
        from minio import Minio

        if not self.sign_payload:
            Minio = _unsigned_payload_client()  # noqa: N806 - a subclass standing in for the class
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout),
            maxsize=max(10, 2 * self.parallel_uploads),
            cert_reqs="CERT_REQUIRED" if self.cert_check else "CERT_NONE",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=False,
        )
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key.get_secret_value() if self.secret_key else None,
            session_token=self.session_token.get_secret_value() if self.session_token else None,
            secure=self.secure,
            region=self.region,  # a fixed region skips the GetBucketLocation round trip
            http_client=http,
            cert_check=self.cert_check,
        )


class S3Store(ArtifactStore):
    """Objects under s3://bucket/prefix/. Large files go up as parallel multipart uploads."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        settings: Optional[S3Settings] = None,
        retry: Optional[RetryPolicy] = None,
        client=None,
    ):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.settings = settings or S3Settings.from_env()
        self.retry = retry or RetryPolicy.from_env()
        self._client = client

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.settings.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    @property
    def client(self):
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    def _obj(self, key: str) -> str:
        return join_key(self.prefix, clean_key(key))

    def _rel(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def _call(self, what: str, key: str, fn):
        try:
            return self.retry.call(f"S3 {what} {self.uri(key)}", fn)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - map permanent SDK errors to store errors
            from minio.error import S3Error

            if isinstance(exc, S3Error) and exc.code in ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"):
                raise NotFound(f"{self.uri(key)} does not exist") from None
            if isinstance(exc, S3Error):
                raise StoreError(f"S3 {what} {self.uri(key)}: {exc.code}: {exc.message}") from None
            raise

    # ---- interface ----
    def ensure(self) -> None:
        def go():
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except Exception as exc:  # noqa: BLE001 - a concurrent creator won
                    if getattr(exc, "code", "") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

        self._call("create bucket", "", go)

    def put_bytes(self, key: str, data: bytes, *, sha256: Optional[str] = None) -> ObjectInfo:
        digest = sha256_bytes(data)
        if sha256 is not None and sha256 != digest:
            raise ChecksumMismatch(key, sha256, digest)
        s = self.settings

        def go():
            # A fresh stream per attempt: a failed attempt may have consumed the last one.
            self.client.put_object(
                self.bucket, self._obj(key), io.BytesIO(data), len(data),
                metadata={META_SHA256: digest}, part_size=self._part_size(len(data)),
                num_parallel_uploads=s.parallel_uploads,
            )

        self._call("put", key, go)
        return ObjectInfo(clean_key(key), len(data), digest)

    def _part_size(self, size: int) -> int:
        """The SDK sends one PUT when the part size covers the whole object."""
        s = self.settings
        return max(MIN_PART, size if size <= s.multipart_threshold else s.part_size)

    def put_file(self, key: str, path: str | os.PathLike, *, sha256: Optional[str] = None) -> ObjectInfo:
        src = Path(path)
        if not src.is_file():
            raise NotFound(f"local file {src} does not exist")
        digest = sha256 or _file_digest(src)
        size = src.stat().st_size
        s = self.settings

        def go():
            # fput_object reopens the file, so every attempt starts from byte 0.
            self.client.fput_object(
                self.bucket, self._obj(key), str(src), metadata={META_SHA256: digest},
                part_size=self._part_size(size), num_parallel_uploads=s.parallel_uploads,
            )

        self._call("put", key, go)
        return ObjectInfo(clean_key(key), size, digest)

    def get_bytes(self, key: str, *, sha256: Optional[str] = None) -> bytes:
        def go():
            resp = self.client.get_object(self.bucket, self._obj(key))
            try:
                return resp.read(decode_content=False), resp.headers.get("x-amz-meta-" + META_SHA256)
            finally:
                resp.close()
                resp.release_conn()

        data, recorded = self._call("get", key, go)
        want = sha256 or recorded
        if want:
            got = sha256_bytes(data)
            if got != want:
                raise ChecksumMismatch(self.uri(key), want, got)
        return data

    def get_file(self, key: str, path: str | os.PathLike, *, sha256: Optional[str] = None) -> ObjectInfo:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".glassbox-tmp-{uuid.uuid4().hex}-{dest.name}"

        def go():
            resp = self.client.get_object(self.bucket, self._obj(key))
            h = hashlib.sha256()
            size = 0
            try:
                with open(tmp, "wb") as f:
                    for block in resp.stream(CHUNK, decode_content=False):
                        h.update(block)
                        f.write(block)
                        size += len(block)
                return h.hexdigest(), size, resp.headers.get("x-amz-meta-" + META_SHA256)
            finally:
                resp.close()
                resp.release_conn()

        try:
            got, size, recorded = self._call("get", key, go)
            want = sha256 or recorded
            if want and got != want:
                raise ChecksumMismatch(self.uri(key), want, got)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(clean_key(key), size, got)

    def stat(self, key: str) -> ObjectInfo:
        def go():
            return self.client.stat_object(self.bucket, self._obj(key))

        o = self._call("stat", key, go)
        meta = o.metadata or {}
        return ObjectInfo(clean_key(key), int(o.size or 0), meta.get("x-amz-meta-" + META_SHA256))

    def list(self, prefix: str = "") -> list[str]:
        p = join_key(self.prefix, prefix.strip("/"))
        # Materialise inside the retry: a listing interrupted half-way is restarted whole.
        q = p + "/" if p else None

        def go():
            return [o.object_name for o in self.client.list_objects(self.bucket, prefix=q, recursive=True)]

        names = self._call("list", prefix, go)
        if prefix.strip("/") and not names and self.exists(prefix):
            return [clean_key(prefix)]
        return sorted(self._rel(n) for n in names if not n.endswith("/"))

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.client.remove_object(self.bucket, self._obj(key)))

    def uri(self, key: str = "") -> str:
        k = join_key(self.prefix, key.strip("/")) if key.strip("/") else self.prefix
        return f"s3://{self.bucket}/{k}" if k else f"s3://{self.bucket}"

    def sub(self, prefix: str) -> "S3Store":
        if not prefix.strip("/"):
            return self
        return S3Store(self.bucket, join_key(self.prefix, clean_key(prefix)), settings=self.settings,
                       retry=self.retry, client=self.client)


@functools.cache
def _unsigned_payload_client():
    """minio.Minio, except that object data is sent as UNSIGNED-PAYLOAD over plain HTTP too.

    The SDK has no switch for it: it signs the payload whenever the endpoint is not HTTPS. This
    overrides the one method that decides (Minio._build_headers, present in every 7.2 release and
    checked by tests/unit/test_store_s3_client.py), hiding large bodies from it, so a change of the
    SDK's internals fails a test instead of silently signing again."""
    from minio import Minio

    class UnsignedPayloadMinio(Minio):
        def _build_headers(self, host, headers=None, body=None, creds=None):
            if creds is None or body is None or len(body) < UNSIGNED_FROM:
                return super()._build_headers(host, headers, body, creds)
            headers, date = super()._build_headers(host, headers, None, creds)
            headers["Content-Length"] = str(len(body))
            headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
            return headers, date

    return UnsignedPayloadMinio


def _file_digest(p: Path) -> str:
    from .base import sha256_file

    return sha256_file(p)
