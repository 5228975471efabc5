"""MetricEval: one batch stage on torch (a Job or locally). Progress counts examples scored, names the
metric being computed, carries the corpus results, and, for a run that follows a training run's
checkpoints (model.fromRun.checkpoint: each), the curve's latest and best points, so `kubectl get
meval` shows a training run's quality while it trains. All of it is read from the run manifest's
`final` block, which the workload commits after each chunk and each curve point."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.resource import Resource

from .base import KindHome, done_of, rounded

# The result files, at fixed places in the run folder (the workload's ledger.py writes them there).
RESULT_FILES = {"perExampleUri": "scores.jsonl", "summaryUri": "summary.json", "curveUri": "curve.jsonl"}


def _curve(final: dict[str, Any]) -> dict[str, Any]:
    curve = final.get("curve")
    if not isinstance(curve, dict) or not curve.get("points"):
        return {}
    out: dict[str, Any] = {"checkpoints": curve["points"]}
    for key in ("checkpoint", "bestCheckpoint"):
        if isinstance(curve.get(key), str):
            out[key] = curve[key]
    for key in ("latest", "best"):
        if isinstance(curve.get(key), (int, float)):
            out[key] = rounded(curve[key])
    return out


class MetricEvalHome(KindHome):
    kind = "MetricEval"
    family = "torch"
    backends = ("job", "local")

    def progress(self, resource: Resource, manifest: Optional[Manifest], run_uri: Optional[str]) -> Optional[dict[str, Any]]:
        if manifest is None:
            return None
        final = manifest.final
        out: dict[str, Any] = {k: final[k] for k in ("examplesScored", "examplesTotal") if isinstance(final.get(k), int)}
        if out:
            out["done"] = done_of(out.get("examplesScored"), out.get("examplesTotal"))
        if isinstance(final.get("currentMetric"), str) and manifest.state != "completed":
            out["currentMetric"] = final["currentMetric"]
        results = final.get("results")
        if isinstance(results, dict):
            out["results"] = {k: rounded(v, 6) for k, v in results.items() if isinstance(v, (int, float))}
        out.update(_curve(final))
        return out or None

    def artifacts(self, run_uri: str) -> dict[str, str]:
        return {k: f"{run_uri}/{name}" for k, name in RESULT_FILES.items()}


HOME = MetricEvalHome()
