"""Retries with backoff under a deadline, transient-error classification, and credentials that
never appear in a repr, a log line or an exception."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import urllib3.exceptions as ue

from glassbox_api.store import RetryPolicy, S3Settings, S3Store, TransientStoreError, is_transient, open_store


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def policy(deadline: float = 30.0) -> tuple[RetryPolicy, FakeClock]:
    c = FakeClock()
    return RetryPolicy(deadline=deadline, initial=0.5, maximum=4.0, sleep=c.sleep, clock=c.clock), c


def test_transient_errors_are_retried_with_growing_jittered_backoff() -> None:
    p, c = policy()
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 6:
            raise ConnectionRefusedError("connection refused")
        return "ok"

    assert p.call("put", flaky) == "ok"
    assert len(calls) == 6 and len(c.sleeps) == 5
    for i, s in enumerate(c.sleeps):
        base = min(4.0, 0.5 * 2 ** i)
        assert base * 0.5 <= s <= base  # jitter scales each sleep into [base/2, base]
    assert max(c.sleeps) <= 4.0


def test_the_deadline_bounds_the_whole_operation() -> None:
    p, c = policy(deadline=10.0)

    def down():
        raise ConnectionResetError("reset by peer")

    with pytest.raises(TransientStoreError) as err:
        p.call("put x", down)
    assert c.now <= 10.0
    assert "deadline" in str(err.value) and "ConnectionResetError" in str(err.value)


def test_permanent_errors_are_not_retried() -> None:
    p, c = policy()
    with pytest.raises(PermissionError):
        p.call("put", lambda: (_ for _ in ()).throw(PermissionError("denied")))
    assert c.sleeps == []


def test_classification() -> None:
    from minio.error import ServerError

    assert is_transient(ConnectionRefusedError())
    assert is_transient(TimeoutError())
    assert is_transient(socket.timeout())
    assert is_transient(ue.ProtocolError("Connection aborted"))
    assert is_transient(ue.NewConnectionError(None, "refused"))
    assert is_transient(ServerError("bad gateway", 502))
    assert is_transient(ServerError("slow down", 503))
    assert not is_transient(ServerError("nope", 400))
    assert not is_transient(ValueError("bad"))
    assert not is_transient(FileNotFoundError("local file"))


def test_settings_from_env_and_priorities(tmp_path: Path) -> None:
    env = {
        "GLASSBOX_S3_ENDPOINT": "http://127.0.0.1:9000",
        "GLASSBOX_S3_ACCESS_KEY": "gb-access",
        "GLASSBOX_S3_SECRET_KEY": "gb-secret-value",
        "AWS_ACCESS_KEY_ID": "aws-access",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "GLASSBOX_S3_CREDENTIALS_DIR": str(tmp_path / "none"),
    }
    s = S3Settings.from_env(env)
    assert (s.endpoint, s.secure, s.access_key) == ("127.0.0.1:9000", False, "gb-access")
    assert s.secret_key.get_secret_value() == "gb-secret-value"
    # A Secret passed as AWS_* env (envFrom) works alone.
    s = S3Settings.from_env({k: v for k, v in env.items() if not k.startswith("GLASSBOX_S3_ACCESS")
                             and not k.startswith("GLASSBOX_S3_SECRET")})
    assert s.access_key == "aws-access"
    assert S3Settings.from_env({"GLASSBOX_S3_ENDPOINT": "https://s3.example:443", "GLASSBOX_S3_SECURE": "false"}).secure is False


def test_settings_from_a_mounted_secret_directory(tmp_path: Path) -> None:
    d = tmp_path / "secret"
    d.mkdir()
    (d / "AWS_ACCESS_KEY_ID").write_text("dir-access\n")
    (d / "AWS_SECRET_ACCESS_KEY").write_text("dir-secret-value\n")
    (d / "endpoint").write_text("http://minio.storage:9000")
    s = S3Settings.from_env({"GLASSBOX_S3_CREDENTIALS_DIR": str(d)})
    assert (s.endpoint, s.secure, s.access_key) == ("minio.storage:9000", False, "dir-access")
    assert s.secret_key.get_secret_value() == "dir-secret-value"


def test_credentials_never_appear_in_repr_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sup3r-s3cret-v4lue"
    # A port where nothing listens: every request is refused, so the store retries, logs and fails.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = S3Settings.from_env({"GLASSBOX_S3_ENDPOINT": f"http://127.0.0.1:{port}",
                                    "GLASSBOX_S3_ACCESS_KEY": "AKIAEXAMPLE", "GLASSBOX_S3_SECRET_KEY": secret})
    store = S3Store("bucket", "p", settings=settings, retry=RetryPolicy(deadline=1.0, initial=0.05, maximum=0.2))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransientStoreError) as err:
        store.put_bytes("k.json", b"{}")
    text = "\n".join([repr(store), str(store), repr(settings), str(err.value), repr(err.value),
                      str(err.value.__cause__), caplog.text])
    assert secret not in text
    assert "retry" in caplog.text  # the retries were logged, without the secret
    assert "s3://bucket/p/k.json" in str(err.value)


def test_open_store_reads_s3_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSBOX_S3_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("GLASSBOX_S3_ACCESS_KEY", "a")
    monkeypatch.setenv("GLASSBOX_S3_SECRET_KEY", "b")
    monkeypatch.setenv("GLASSBOX_S3_RETRY_DEADLINE", "7")
    s = open_store("s3://bkt/x")
    assert isinstance(s, S3Store) and s.settings.endpoint == "127.0.0.1:1" and s.retry.deadline == 7.0
