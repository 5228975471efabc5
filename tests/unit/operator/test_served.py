"""pairsScored: the items counter of a service's ready replicas, read from their /metrics (real
HTTP servers here), summed into status.progress, kept while no replica answers."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

from glassbox_api.podcontract import SERVED_ITEMS_METRIC
from glassbox_operator.observed import pod_entry
from glassbox_operator.render.common import ChildState
from glassbox_operator.served import counter, scrape
from glassbox_operator.status import Observation, compute, plan_of

from opkit import UID, example, resource

TEXT = f"""# HELP {SERVED_ITEMS_METRIC} Items
# TYPE {SERVED_ITEMS_METRIC} counter
{SERVED_ITEMS_METRIC}{{model="r",unit="pairs"}} 96.0
{SERVED_ITEMS_METRIC}{{model="other",unit="pairs"}} 5.0
{SERVED_ITEMS_METRIC}{{model="r",unit="prompts"}} 7.0
glassbox_serving_items_created{{model="r",unit="pairs"}} 1.7e+09
"""


def test_counter_picks_the_samples_with_the_labels():
    assert counter(TEXT, SERVED_ITEMS_METRIC, {"model": "r", "unit": "pairs"}) == 96.0
    assert counter(TEXT, SERVED_ITEMS_METRIC, {"model": "r"}) == 103.0
    assert counter(TEXT, SERVED_ITEMS_METRIC, {"model": "nope"}) is None


def _replica(body: str) -> HTTPServer:
    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_scrape_sums_the_replicas_that_answer():
    a, b = _replica(TEXT), _replica(TEXT.replace("96.0", "4.0"))
    try:
        urls = [f"http://127.0.0.1:{s.server_port}/metrics" for s in (a, b)] + ["http://127.0.0.1:9/metrics"]
        assert scrape(urls, SERVED_ITEMS_METRIC, {"model": "r", "unit": "pairs"}) == 100
        assert scrape(["http://127.0.0.1:9/metrics"], SERVED_ITEMS_METRIC, {"model": "r"}) is None
    finally:
        a.shutdown()
        b.shutdown()


def test_a_ready_pod_gives_its_ip():
    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"glassbox.dev/uid": UID, "glassbox.dev/attempt": "0"}},
           "status": {"podIP": "10.1.2.3", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert next(iter(pod_entry(pod).values())).ip == "10.1.2.3"
    pod["status"]["conditions"][0]["status"] = "False"
    assert next(iter(pod_entry(pod).values())).ip is None


def test_pairs_scored_in_status_and_kept_while_no_replica_answers():
    res = resource(example("scorer-gpu.yaml"))
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ready = ChildState("Running", "Ready", ready=True, endpoint="http://r.ns")
    out = compute(res, {}, plan_of(res, {}), Observation(workload=ready, replicas=1, served=42), None, now)
    assert out.status["progress"] == {"pairsScored": 42} and out.status["phase"] == "Ready"
    again = compute(res, out.status, plan_of(res, out.status), Observation(workload=ready, replicas=1), None, now)
    assert again.status["progress"]["pairsScored"] == 42


def test_a_local_model_server_is_read_at_its_endpoint_and_pods_at_their_ips():
    from glassbox_operator.context import STAGE_SERVE, Plan
    from glassbox_operator.observed import MemoryView
    from glassbox_operator.reconcile import _served

    from opkit import ctx

    srv = _replica(TEXT)
    try:
        c = ctx(resource(example("scorer-gpu.yaml")), plan=Plan(stage=STAGE_SERVE))
        local = ChildState("Running", "Serving", ready=True, endpoint=f"http://127.0.0.1:{srv.server_port}")
        assert _served(c, local, MemoryView()) == 96
        pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"glassbox.dev/uid": UID, "glassbox.dev/attempt": "0"}},
               "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}}
        isvc = ChildState("Running", "Ready", ready=True, endpoint="http://r.ns.example.com")
        assert _served(c, isvc, MemoryView([pod])) in (None, 0)  # read at the pod IP and port 8080: no such replica here
    finally:
        srv.shutdown()
