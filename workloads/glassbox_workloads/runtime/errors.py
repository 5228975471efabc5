"""Failures a workload tells apart: bad input is permanent (exit 4), anything else transient (exit 1).

The exit codes are the pod contract's (glassbox_api.podcontract.ExitCode): the operator retries a
transient failure from the latest checkpoint and reports a permanent one at once.
"""

from __future__ import annotations

import logging
import sys
import traceback

from glassbox_api.podcontract import ExitCode
from glassbox_api.store import StoreError

from .publisher import PublishError

log = logging.getLogger("glassbox.workload")

# Failures that explain themselves in one line; anything else is a bug and gets its traceback too.
EXPECTED = (StoreError, PublishError, ValueError, RuntimeError, OSError)


class BadInput(ValueError):
    """Input that cannot work however often the run is retried: a data source that does not exist, a
    model without the head the kind needs, a checkpoint that fails its checksum, too little data.

    `field` is the spec path a person fixes (`spec.data.sources[0].uri`), `fix` says how.
    """

    def __init__(self, field: str, message: str, fix: str = ""):
        self.field, self.message, self.fix = field, message, fix
        super().__init__(f"{field}: {message}" + (f" (fix: {fix})" if fix else ""))


def report_failure(kind: str, name: str, exc: BaseException) -> ExitCode:
    """One line on stderr naming the resource and the reason; the exit code that goes with it."""
    if isinstance(exc, BadInput):
        print(f"error: {kind} {name} cannot run: {exc}", file=sys.stderr, flush=True)
        return ExitCode.BAD_INPUT
    if isinstance(exc, EXPECTED):
        log.debug("%s %s failed", kind, name, exc_info=exc)
    else:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {kind} {name} failed: {exc}", file=sys.stderr, flush=True)
    return ExitCode.FAILED
