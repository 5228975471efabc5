"""A real S3-compatible server for tests: versitygw (posix backend) on 127.0.0.1 with test credentials.

`start_s3(workdir)` starts one on a free port with its buckets under workdir; `stop()`/`start()`
restart it on the same port and directory (objects survive), `stop_for(seconds)` takes it away
for a while in the background. With GLASSBOX_TEST_S3_ENDPOINT (plus GLASSBOX_TEST_S3_ACCESS_KEY and
GLASSBOX_TEST_S3_SECRET_KEY) set, `existing_s3()` returns that server instead; it cannot be stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.support import bins, reaper

ACCESS_KEY = "glassbox-test"
SECRET_KEY = "glassbox-test-secret"
REGION = "us-east-1"


class S3ServerError(RuntimeError):
    """The S3 server could not be started or controlled; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    """Where the S3 server is and how to log in; start/stop control when this session owns it."""

    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    region: str = REGION
    workdir: Path | None = None  # data + log dir of a server we run (None: external)
    binary: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """host:port, the form the minio SDK wants."""
        return urlsplit(self.endpoint).netloc

    @property
    def secure(self) -> bool:
        return urlsplit(self.endpoint).scheme == "https"

    @property
    def managed(self) -> bool:
        """True when this session runs the server (and may stop/start it)."""
        return self.workdir is not None

    def env(self) -> dict[str, str]:
        """The GLASSBOX_S3_* variables a glassbox process reads to reach this server."""
        return {
            "GLASSBOX_S3_ENDPOINT": self.endpoint,
            "GLASSBOX_S3_ACCESS_KEY": self.access_key,
            "GLASSBOX_S3_SECRET_KEY": self.secret_key,
        }

    def client(self, access_key: str | None = None, secret_key: str | None = None):  # -> minio.Minio
        """A minio SDK client for this server (other credentials to test refusals)."""
        from minio import Minio

        return Minio(self.host, access_key=access_key or self.access_key,
                     secret_key=secret_key or self.secret_key, secure=self.secure, region=self.region)

    # --- lifecycle (managed servers only) ---

    def _require_managed(self) -> None:
        if not self.managed:
            raise S3ServerError(f"S3 at {self.endpoint} is external (GLASSBOX_TEST_S3_ENDPOINT): cannot start/stop it")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server on its port and directory; return once it answers HTTP."""
        self._require_managed()
        assert self.workdir is not None and self.binary is not None
        with self._lock:
            if self.is_running():
                return
            data, versions = self.workdir / "data", self.workdir / "versions"
            data.mkdir(parents=True, exist_ok=True)
            versions.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ, ROOT_ACCESS_KEY=self.access_key, ROOT_SECRET_KEY=self.secret_key)
            log = (self.workdir / "versitygw.log").open("ab")
            self._proc = subprocess.Popen(
                [str(self.binary), "--port", self.host, "posix", "--versioning-dir", str(versions), str(data)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which stops us
            )
            log.close()
            (self.workdir / "versitygw.pid").write_text(str(self._proc.pid))
            deadline = time.monotonic() + timeout
            while not self._answers():
                if self._proc.poll() is not None:
                    raise S3ServerError(f"versitygw exited {self._proc.returncode}: {self._log_tail()}")
                if time.monotonic() > deadline:
                    raise S3ServerError(f"versitygw did not answer on {self.endpoint} in {timeout}s: {self._log_tail()}")
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (data stays); a no-op when it is not running."""
        self._require_managed()
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or proc.poll() is not None:
                return
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def close(self) -> None:
        """Final teardown of a server we run: stop it and delete its data directory."""
        if not self.managed:
            return
        self.stop()
        reaper.cancel(self._watchdog)
        assert self.workdir is not None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop_for(self, seconds: float) -> threading.Thread:
        """Stop now and start again on the same port after `seconds`, in the background.

        Returns the restarting thread: join() it to be sure the server is back (it re-raises nothing;
        check is_running()). Used to take S3 away during a publish.
        """
        self.stop()

        def _later() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=_later, name=f"s3-restart-after-{seconds}s", daemon=True)
        thread.start()
        return thread

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """with s3.paused(): ... the server is down inside the block and back after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
        except urllib.error.HTTPError:
            return True  # any HTTP answer (403 for an anonymous request) means it serves
        except OSError:
            return False
        return True

    def _log_tail(self) -> str:
        assert self.workdir is not None
        log = self.workdir / "versitygw.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def start_s3(workdir: Path, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> S3Server:
    """Build or reuse versitygw and start it on a free 127.0.0.1 port with its data under workdir.

    close() stops it and removes workdir; a watchdog kills it if this process dies first.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    server = S3Server(endpoint=f"http://127.0.0.1:{free_port()}", access_key=access_key,
                      secret_key=secret_key, workdir=workdir, binary=bins.path("versitygw"))
    # Kills whichever versitygw runs last (stop_for restarts it under a new pid), then the data.
    server._watchdog = reaper.watch_owner(
        ["bash", "-c", 'kill "$(cat "$0/versitygw.pid")" 2>/dev/null; sleep 1; rm -rf "$0"', str(workdir)])
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


def use_existing() -> bool:
    """True when GLASSBOX_TEST_S3_ENDPOINT names a server the tests must use instead."""
    return bool(os.environ.get("GLASSBOX_TEST_S3_ENDPOINT"))


def existing_s3() -> S3Server:
    """The server named by GLASSBOX_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY (/_REGION optional)."""
    endpoint = os.environ["GLASSBOX_TEST_S3_ENDPOINT"]
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    try:
        access, secret = os.environ["GLASSBOX_TEST_S3_ACCESS_KEY"], os.environ["GLASSBOX_TEST_S3_SECRET_KEY"]
    except KeyError as exc:
        raise S3ServerError(f"GLASSBOX_TEST_S3_ENDPOINT is set but {exc.args[0]} is not") from None
    return S3Server(endpoint=endpoint.rstrip("/"), access_key=access, secret_key=secret,
                    region=os.environ.get("GLASSBOX_TEST_S3_REGION", REGION))
