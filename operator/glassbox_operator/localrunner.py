"""The local backend's runner: each LocalProcess child is a subprocess on the operator's host.

State lives on disk (<stateDir>/<namespace>/<uid>/<name>/: the spec, the log, the pid, the exit
code), and the process runs in its own session under `sh`, which writes the exit code when it ends:
an operator restarted mid-run finds its processes (still running, or finished) instead of
starting duplicates.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from glassbox_api.constants import LABEL_UID
from glassbox_api.podcontract import Env, is_permanent

from .render.common import MISSING, ChildState


CREDENTIAL_ENV = frozenset({Env.S3_ACCESS_KEY, Env.S3_SECRET_KEY, Env.S3_SESSION_TOKEN, Env.AWS_ACCESS_KEY_ID,
                            Env.AWS_SECRET_ACCESS_KEY, "AWS_SESSION_TOKEN"})
"""Variables of the operator's environment that carry credentials: never inherited by a process."""


SERVING_PREFIX = "serving: "
"""The line a service kind's workload prints once it serves (DESIGN.md section 6)."""


def serving_url(log: Path, limit: int = 1 << 20) -> Optional[str]:
    """The URL of the last `serving: URL` line in the first `limit` bytes of a process's log."""
    try:
        with open(log, "rb") as f:
            head = f.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    urls = [line[len(SERVING_PREFIX):].strip() for line in head.splitlines() if line.startswith(SERVING_PREFIX)]
    return urls[-1] if urls else None


class LocalRunner:
    def __init__(self, state_dir: str | Path, python: str = sys.executable, env: Optional[Mapping[str, str]] = None):
        self.root = Path(state_dir)
        self.python = python
        self.env = dict(os.environ if env is None else env)
        self._procs: dict[Path, subprocess.Popen] = {}

    def _dir(self, child: dict[str, Any]) -> Path:
        meta = child["metadata"]
        return self.root / meta["namespace"] / meta["labels"][LABEL_UID] / meta["name"]

    def _alive(self, d: Path) -> bool:
        proc = self._procs.get(d)
        if proc is not None:
            return proc.poll() is None
        try:
            pid = int((d / "pid").read_text())
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False

    def ensure(self, child: dict[str, Any], secret_env: Optional[Mapping[str, str]] = None) -> None:
        """Start the process unless it was started before (running or finished). Its environment is
        the operator's without any store credentials, plus secret_env (those of its store target)."""
        d = self._dir(child)
        if (d / "pid").exists():
            return
        d.mkdir(parents=True, exist_ok=True)
        spec_file = d / "resource.json"
        spec_file.write_text(json.dumps(child["spec"]["document"], indent=2), encoding="utf-8")
        argv = [self.python if a == "python" else a for a in child["spec"]["argv"]]
        argv = [str(spec_file) if a == "{spec}" else a for a in argv]
        script = f"{shlex.join(argv)} >{shlex.quote(str(d / 'log'))} 2>&1; echo $? >{shlex.quote(str(d / 'exit.tmp'))}; mv {shlex.quote(str(d / 'exit.tmp'))} {shlex.quote(str(d / 'exit'))}"
        env = {k: v for k, v in self.env.items() if k not in CREDENTIAL_ENV}
        proc = subprocess.Popen(["/bin/sh", "-c", script], env={**env, **child["spec"]["env"], **(secret_env or {})},
                                start_new_session=True, stdin=subprocess.DEVNULL)
        self._procs[d] = proc
        (d / "pid").write_text(str(proc.pid))

    def observe(self, child: Optional[dict[str, Any]]) -> ChildState:
        if child is None:
            return MISSING
        d = self._dir(child)
        exit_file = d / "exit"
        if exit_file.exists():
            self._procs.pop(d, None)
            code = exit_file.read_text().strip()
            if code == "0":
                return ChildState("Succeeded", "Completed")
            tail = ""
            try:
                tail = (d / "log").read_text(errors="replace").strip().splitlines()[-1][:500]
            except (OSError, IndexError):
                pass
            return ChildState("Failed", "ProcessFailed", f"exit code {code}{': ' + tail if tail else ''}",
                              permanent=code.isdigit() and is_permanent(int(code)))
        if not (d / "pid").exists():
            return MISSING
        if self._alive(d):
            url = serving_url(d / "log")
            if url:
                return ChildState("Running", "Serving", ready=True, endpoint=url)
            return ChildState("Running", "ProcessRunning")
        return ChildState("Failed", "ProcessLost", "the process ended without an exit code (host restarted?)")

    def stop(self, namespace: str, uid: str, name: str) -> None:
        """Kill the process group of a child and forget it (suspend, retry, delete)."""
        d = self.root / namespace / uid / name
        try:
            pid = int((d / "pid").read_text())
            if not (d / "exit").exists():
                os.killpg(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
        proc = self._procs.pop(d, None)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for f in ("pid", "exit", "exit.tmp"):
            (d / f).unlink(missing_ok=True)
