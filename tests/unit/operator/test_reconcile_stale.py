"""A pass over a stale body (Kopf's timer racing the event handler, or a watch that lags the status
the previous pass wrote) must not undo that pass: after a retry moved a run to attempt 1, a body
still showing attempt 0 does not start attempt 0's local process again (two workloads on one run)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from glassbox_api.store import RetryPolicy
from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.reconcile import Reconciler

from opkit import UID, config, example
from test_reconcile_errors import FakeKube


def body(status: dict | None = None) -> dict:
    d = example("pretrain-tiny.yaml")
    d["metadata"] = {"name": "r", "namespace": "ns", "uid": UID, "generation": 1}
    d["spec"]["failurePolicy"] = {"maxRetries": 2, "backoffSeconds": 1}
    return {**d, "status": status} if status is not None else d


def wait_exit(d: Path) -> None:
    deadline = time.monotonic() + 10
    while not (d / "exit").exists():
        assert time.monotonic() < deadline, f"no exit file in {d}"
        time.sleep(0.02)


def test_a_stale_body_does_not_restart_the_replaced_attempt(tmp_path: Path):
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    cfg = config(endpoint="").model_copy(update={"local_store": str(tmp_path / "store")})
    state = tmp_path / "state"
    r = Reconciler(FakeKube(), cfg, LocalRunner(state, python="/bin/false"), clock=lambda: now[0],
                   store_retry=RetryPolicy(deadline=0.2, initial=0.05, maximum=0.1))
    a0, a1 = state / "ns" / UID / "r-a0", state / "ns" / UID / "r-a1"

    s1 = r.reconcile(body()).status  # starts attempt 0, which fails (exit 1)
    wait_exit(a0)
    s2 = r.reconcile(body(s1)).status
    assert s2["retries"] == 0 and "attempt 0 failed" in s2["message"]  # backing off
    now[0] += timedelta(seconds=5)
    s3 = r.reconcile(body(s2)).status
    assert s3["retries"] == 1 and not (a0 / "pid").exists() and (a1 / "pid").exists()

    stale = r.reconcile(body(s2))  # the body from before the retry, again
    assert stale.patch == {} and stale.requeue_after
    assert not (a0 / "pid").exists(), "attempt 0 was started again from a stale body"

    wait_exit(a1)
    s4 = r.reconcile(body(s3)).status  # the current body goes on as usual
    assert s4["retries"] == 1 and "attempt 1 failed" in s4["message"]
    assert not (a0 / "pid").exists()
