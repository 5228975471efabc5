"""Retries with exponential backoff and jitter, bounded by a total deadline."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, TypeVar

from ..podcontract import Env
from .base import TransientStoreError

log = logging.getLogger("glassbox.store")
T = TypeVar("T")

# S3 error codes that mean "try again", whatever the HTTP status says.
_TRANSIENT_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted",
     "RequestTimeTooSkewed", "ServerBusy", "Busy"}
)


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry can fix: connection refused/reset, timeouts, 5xx, throttling."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
        return True
    try:
        import urllib3.exceptions as ue
    except ImportError:  # pragma: no cover - minio always brings urllib3
        ue = None
    if ue is not None and isinstance(
        exc, (ue.ProtocolError, ue.NewConnectionError, ue.ConnectTimeoutError, ue.ReadTimeoutError,
              ue.MaxRetryError, ue.IncompleteRead, ue.ResponseError, ue.DecodeError)
    ):
        return True
    try:
        from minio.error import InvalidResponseError, S3Error, ServerError
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, S3Error):
        status = getattr(getattr(exc, "response", None), "status", 0) or 0
        return exc.code in _TRANSIENT_CODES or status >= 500 or status == 429
    if isinstance(exc, InvalidResponseError):
        code = getattr(exc, "_code", 0) or 0
        return code >= 500 or code == 429
    return False


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


@dataclass
class RetryPolicy:
    """Exponential backoff (initial * multiplier**n, capped) with jitter, until deadline seconds pass.

    The deadline bounds the whole operation, attempts and sleeps together, so a dead server fails a
    publish in bounded time while an outage shorter than the deadline is ridden out.
    """

    deadline: float = 300.0
    initial: float = 0.25
    maximum: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.5  # each sleep is scaled by uniform(1 - jitter, 1)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        return cls(
            deadline=_env_float(Env.S3_RETRY_DEADLINE, 300.0),
            initial=_env_float(Env.S3_RETRY_INITIAL, 0.25),
            maximum=_env_float(Env.S3_RETRY_MAX, 8.0),
        )

    def backoff(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * (self.multiplier ** attempt))
        return base * self.rng.uniform(1.0 - self.jitter, 1.0)

    def call(self, what: str, fn: Callable[[], T], *, transient: Callable[[BaseException], bool] = is_transient) -> T:
        start = self.clock()
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below
                if not transient(exc):
                    raise
                elapsed = self.clock() - start
                delay = self.backoff(attempt)
                if elapsed + delay > self.deadline:
                    raise TransientStoreError(
                        f"{what}: still failing after {attempt + 1} attempts over {elapsed:.1f}s "
                        f"(deadline {self.deadline:.0f}s): {_describe(exc)}"
                    ) from exc
                log.warning("%s failed (%s); retry %d in %.2fs", what, _describe(exc), attempt + 1, delay)
                self.sleep(delay)
                attempt += 1


def _describe(exc: BaseException) -> str:
    # Short and credential-free: the type and the first line of the message only.
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {msg[:300]}"


def no_retry() -> RetryPolicy:
    return RetryPolicy(deadline=0.0)


__all__ = ["RetryPolicy", "is_transient", "no_retry", "Optional"]
