"""Chunked scoring: each chunk of examples scored by every per-example metric, published and recorded
in the manifest; then the corpus values, the correlations with human scores and the result files.

A restarted run skips the chunks its manifest lists (their rows are read back, sha256-checked, for
scores.jsonl and the corpus values) and scores only the rest.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

from ..metrics.base import ExampleError, Scores
from ..runtime.errors import BadInput
from .correlate import correlations
from .examples import Examples
from .ledger import CURVE, SCORES, SUMMARY, Ledger, jsonl
from .registry import Env, MetricDef, corpus_value

Say = Callable[[str], None]


def _compute(d: MetricDef, ex: Examples, env: Env, offset: int = 0) -> Scores:
    """One metric on some examples; an example the library refuses is BadInput naming its line."""
    try:
        return d.compute(ex, env)
    except ExampleError as exc:
        where = ex.where[exc.index] if 0 <= exc.index < len(ex.where) else f"example {exc.index + offset}"
        raise BadInput("spec.data", f"{where}: {exc.message} ({d.name})", exc.fix) from exc


def _number(x: Any) -> Optional[float]:
    """A JSON-safe float (NaN and infinities become None)."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def score_chunks(ex: Examples, defs: Sequence[MetricDef], env: Env, ledger: Ledger, chunk_size: int,
                 say: Say = lambda m: None) -> list[dict[str, Any]]:
    """Every example's per-example scores, in input order; chunks already recorded are read back."""
    per = [d for d in defs if d.per_example]
    done = ledger.chunks()
    rows: list[dict[str, Any]] = []
    n = len(ex)
    for index, start in enumerate(range(0, n, chunk_size)):
        end = min(n, start + chunk_size)
        if index in done and (done[index]["start"], done[index]["end"]) == (start, end):
            rows += ledger.read_chunk(index)
            continue
        chunk = ex.slice(start, end)
        got: list[dict[str, Any]] = [{"id": i} for i in chunk.ids]
        for d in per:
            ledger.note(currentMetric=d.name)
            scores = _compute(d, chunk, env, start)
            assert scores.per_example is not None and len(scores.per_example) == len(chunk), d.name
            for row, v in zip(got, scores.per_example):
                row[d.name] = _number(v)
        ledger.add_chunk(index, start, end, got)
        say(f"scored examples {start + 1}-{end} of {n}")
        rows += got
    return rows


def corpus_results(ex: Examples, defs: Sequence[MetricDef], env: Env, rows: list[dict[str, Any]],
                   ledger: Ledger) -> dict[str, Optional[float]]:
    """Each metric's corpus value: from the per-example ones where the metric allows it, else computed
    over all examples (corpus BLEU/NIST, the set-level metrics)."""
    out: dict[str, Optional[float]] = {}
    for d in defs:
        values = [r.get(d.name) for r in rows]
        value = corpus_value(d, [v for v in values if v is not None]) if d.per_example else None
        if value is None:
            ledger.note(currentMetric=d.name)
            value = _compute(d, ex, env).corpus
        out[d.name] = _number(value)
    return out


def summary(ex: Examples, results: dict[str, Optional[float]], rows: list[dict[str, Any]],
            curve: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """summary.json: corpus values, and per metric and human aspect Pearson/Spearman/Kendall."""
    out: dict[str, Any] = {"examples": len(ex), "results": results}
    if ex.human:
        out["correlations"] = correlations(rows, ex.human)
    if curve:
        out["curve"] = curve
    return out


def publish_results(ledger: Ledger, rows: list[dict[str, Any]], summary_doc: dict[str, Any],
                    curve_rows: Optional[list[dict[str, Any]]] = None) -> None:
    """scores.jsonl, summary.json (and curve.jsonl), uploaded, verified and listed as outputs."""
    import json

    ledger.output("scores", SCORES, jsonl(rows))
    ledger.output("summary", SUMMARY, (json.dumps(summary_doc, indent=2) + "\n").encode("utf-8"))
    if curve_rows is not None:
        ledger.output("curve", CURVE, jsonl(curve_rows))
