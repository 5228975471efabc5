"""The Kopf entry points: how soon a pass that is not done yet runs again."""

from __future__ import annotations

import kopf
import pytest

from glassbox_operator.handlers import retry_delay, run_pass
from glassbox_operator.reconcile import Result


class FixedReconciler:
    def __init__(self, result: Result) -> None:
        self.result = result

    def reconcile(self, body: dict, watched: object = None) -> Result:
        return self.result


BODY = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "ShardedFinetune",
        "metadata": {"name": "child", "namespace": "ns", "uid": "u1"}}


def test_waiting_backs_off_up_to_the_resync_interval() -> None:
    assert [retry_delay(None, r, 10.0) for r in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert retry_delay(None, 10_000, 30.0) == 30.0
    assert retry_delay(None, 0, 0.5) == 1.0  # never busier than once a second


def test_a_due_time_is_kept_exactly() -> None:
    assert retry_delay(17.5, 0, 10.0) == 17.5 and retry_delay(17.5, 9, 10.0) == 17.5
    assert retry_delay(0.2, 0, 10.0) == 1.0


@pytest.mark.parametrize("retry,want", [(0, 1.0), (3, 8.0), (7, 10.0)])
def test_run_pass_raises_a_temporary_error_with_that_delay(retry: int, want: float) -> None:
    waiting = Result({"phase": "Pending", "message": "waiting for PretrainRun/src to exist"}, {}, waiting=True)
    with pytest.raises(kopf.TemporaryError) as err:
        run_pass(FixedReconciler(waiting), BODY, retry_errors=True, retry=retry, resync_seconds=10.0)
    assert err.value.delay == want and "waiting for PretrainRun/src" in str(err.value)


def test_timer_passes_never_raise() -> None:
    waiting = Result({"phase": "Pending"}, {}, waiting=True)
    run_pass(FixedReconciler(waiting), BODY, retry_errors=False)
    run_pass(FixedReconciler(Result({"phase": "Running"}, {})), BODY, retry_errors=True)


def test_the_api_client_pool_fits_every_worker() -> None:
    from glassbox_operator.main import api_client

    client = api_client(20)
    assert client.rest_client.pool_manager.connection_pool_kw["maxsize"] >= 20


def test_waiting_is_no_error_line_and_no_error_event(caplog) -> None:
    """Kopf logs a TemporaryError at ERROR (and posts an Error event from it); a waiting pass's
    record is lowered to DEBUG, a real error keeps its level."""
    import logging

    from glassbox_operator.handlers import WAITING, QuietWaiting

    log = logging.getLogger("kopf.objects")
    f = QuietWaiting()
    log.addFilter(f)
    try:
        with caplog.at_level(logging.INFO, logger="kopf.objects"):
            log.error(f"Handler 'reconcile' failed temporarily: {WAITING}waiting for PretrainRun/src to exist")
            log.error("Handler 'reconcile' failed temporarily: ApiException 500")
    finally:
        log.removeFilter(f)
    assert [(r.levelname, r.getMessage()[-16:]) for r in caplog.records] == [("ERROR", "ApiException 500")]
    waiting = Result({"phase": "Pending", "message": "backing off"}, {}, requeue_after=3.0)
    with pytest.raises(kopf.TemporaryError) as err:
        run_pass(FixedReconciler(waiting), BODY, retry_errors=True)
    assert str(err.value).startswith(WAITING)
