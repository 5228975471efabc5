"""Training metrics: buffered into append-only JSONL segments for the run record, mirrored to
Prometheus gauges when prometheus_client is installed (served on RunContext.metrics_port if set)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Optional

log = logging.getLogger("glassbox.metrics")

_GAUGES: dict[str, Any] = {}
_SERVER_STARTED = False


def _prometheus(port: Optional[int]):
    try:
        import prometheus_client as pc
    except ImportError:
        return None
    global _SERVER_STARTED
    if port and not _SERVER_STARTED:
        try:
            pc.start_http_server(port)
            _SERVER_STARTED = True
        except OSError as exc:
            log.warning("metrics port %s unavailable: %s", port, exc)
            _SERVER_STARTED = True
    return pc


class MetricsSink:
    """Collects one dict per step; `segment()` hands back and clears what accumulated since last time."""

    NUMERIC = ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", "step", "tokens")

    def __init__(self, kind: str = "pretrainrun", name: str = "", enabled: bool = True, port: Optional[int] = None):
        self.kind, self.name = kind, name
        self._buf: list[dict[str, Any]] = []
        self._pc = _prometheus(port) if enabled else None
        if self._pc is not None:
            for key in self.NUMERIC:
                if key not in _GAUGES:
                    _GAUGES[key] = self._pc.Gauge(f"glassbox_train_{key}", f"Latest training {key}", ["kind", "name"])

    def record(self, step: int, values: dict[str, Any]) -> None:
        row = {"step": step, "time": round(time.time(), 3), **{k: _num(v) for k, v in values.items()}}
        self._buf.append(row)
        if self._pc is not None:
            for k, v in row.items():
                g = _GAUGES.get(k)
                if g is not None and isinstance(v, (int, float)):
                    g.labels(self.kind, self.name).set(v)

    def segment(self) -> Optional[bytes]:
        if not self._buf:
            return None
        out = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self._buf).encode()
        self._buf = []
        return out


def _num(v: Any) -> Any:
    try:
        import torch

        if isinstance(v, torch.Tensor):
            return v.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, float):
        return float(f"{v:.6g}")
    return v
