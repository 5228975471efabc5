"""Prometheus metrics of a model server, on the same /metrics KServe serves (its default registry).

Names a scraper (and the operator's pairsScored) reads: glassbox_serving_items_total{model,unit},
glassbox_serving_request_seconds{model,route} and glassbox_serving_batch_size{model}.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


from glassbox_api.podcontract import SERVED_ITEMS_METRIC

ITEMS = SERVED_ITEMS_METRIC


@lru_cache(maxsize=1)
def _families() -> dict[str, Any]:
    """Created once per process: the default registry refuses a second family of one name."""
    import prometheus_client as pc

    return {
        "items": pc.Counter(ITEMS.removesuffix("_total"), "Items (pairs, prompts) the model processed", ["model", "unit"]),
        "latency": pc.Histogram("glassbox_serving_request_seconds", "Request latency by route", ["model", "route"],
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)),
        "batch": pc.Histogram("glassbox_serving_batch_size", "Items per model forward pass", ["model"],
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)),
    }


class ServingMetrics:
    """The metrics of one served model."""

    def __init__(self, model: str, unit: str = "pairs"):
        f = _families()
        self.items = f["items"].labels(model, unit)
        self._latency, self._batch, self.model = f["latency"], f["batch"].labels(model), model

    def batch(self, size: int, seconds: float) -> None:
        """One forward pass of `size` items (Batcher.on_batch)."""
        del seconds
        self.items.inc(size)
        self._batch.observe(size)

    def request(self, route: str, seconds: float) -> None:
        self._latency.labels(self.model, route).observe(seconds)
