"""Test-only fault hooks: the one place a workload reads them.

They are not part of the pod contract (glassbox_api.podcontract): nothing the operator renders sets
them. A test sets one in a workload's environment; the entrypoint reads them once into a Faults
value (in the RunContext) and the training loop asks it. Each hook is used by a test:

- GLASSBOX_KILL_AT_STEP=N: right after step N (and its checkpoint, if step N publishes one) the
  process exits with 137 and no cleanup, as a pod killed by SIGKILL or the OOM killer would.
  tests/unit/test_workload_exit_codes.py checks the exit and the committed checkpoint;
  tests/e2e/test_pretrain_s3.py kills a PretrainRun this way and checks that the next attempt
  resumes from the published checkpoint with the same losses.

Faults inside the checkpoint protocol are injected in-process instead (CheckpointPublisher's
fault_hook argument; tests/unit/pretrain/test_pretrain_publisher.py, tests/e2e/test_store_s3.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

log = logging.getLogger(__name__)

KILL_AT_STEP = "GLASSBOX_KILL_AT_STEP"
"""Exit 137 right after this step (0 or unset: never)."""

KILLED_EXIT = 137
"""128 + SIGKILL: what a pod killed by the kubelet or the OOM killer reports."""


@dataclass(frozen=True)
class Faults:
    """The fault hooks of one run (none by default)."""

    kill_at_step: int = 0
    """See KILL_AT_STEP."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Faults":
        raw = env.get(KILL_AT_STEP) or "0"
        try:
            kill = int(raw)
        except ValueError:
            raise ValueError(f"{KILL_AT_STEP}={raw!r} is not a step number") from None
        return cls(kill_at_step=kill)

    def after_step(self, step: int, drain: Optional[Callable[[], None]] = None) -> None:
        """Die here if a test asked for it: drain (the publisher) first, then exit with no cleanup."""
        if self.kill_at_step and step == self.kill_at_step:
            if drain is not None:
                drain()
            log.warning("%s=%d: exiting %d as a killed pod would", KILL_AT_STEP, step, KILLED_EXIT)
            os._exit(KILLED_EXIT)  # simulated pod kill: no cleanup, like SIGKILL


NO_FAULTS = Faults()
