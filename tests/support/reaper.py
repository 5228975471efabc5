"""Clean up after a test session even when it is killed (SIGKILL/SIGTERM skip pytest's finalizers).

The cluster's processes are daemons (kwokctl detaches them) and versitygw runs in its own session, so
a killed pytest would leave them running. `watch_owner(cmd)` starts a small watchdog that waits for
this process to exit and then runs `cmd`; a normal teardown cancels it first.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support import bins

# $0 is the owner pid, "$@" the cleanup command; polling is cheap (one kill -0 a second).
_WATCH = 'while kill -0 "$0" 2>/dev/null; do sleep 1; done; exec "$@"'


def watch_owner(cmd: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """Run cmd once the current process has exited (for any reason); returns the watchdog."""
    out = log.open("ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            ["bash", "-c", _WATCH, str(os.getpid()), *cmd],
            cwd=bins.REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives a kill of pytest's process group
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def cancel(watchdog: subprocess.Popen[bytes] | None) -> None:
    """Stop a watchdog without running its command (the owner cleaned up itself)."""
    if watchdog is None or watchdog.poll() is not None:
        return
    try:
        os.kill(watchdog.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    watchdog.wait(timeout=10)
