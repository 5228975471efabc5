"""Correlations of per-example metric scores with human judgements (Pearson, Spearman, Kendall's tau-b),
as CTC reports them, through scipy.stats (the library that defines them).

Only examples that carry both a human score and the metric's value take part; a metric without
per-example values (set-level), or fewer than 3 such examples, or a constant column gives no
correlation (null with the reason), never a made-up number.
"""

from __future__ import annotations

import math
from typing import Any, Optional

MIN_EXAMPLES = 3


def _clean(x: float) -> Optional[float]:
    return x if isinstance(x, float) and math.isfinite(x) else None


def correlate(metric: list[Optional[float]], human: list[Optional[float]]) -> dict[str, Any]:
    """{pearson, spearman, kendall, n} over the pairs where both are present."""
    from scipy import stats

    pairs = [(m, h) for m, h in zip(metric, human) if m is not None and h is not None]
    out: dict[str, Any] = {"n": len(pairs)}
    if len(pairs) < MIN_EXAMPLES:
        return {**out, "pearson": None, "spearman": None, "kendall": None,
                "note": f"fewer than {MIN_EXAMPLES} examples with both scores"}
    xs, ys = [float(p[0]) for p in pairs], [float(p[1]) for p in pairs]
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return {**out, "pearson": None, "spearman": None, "kendall": None, "note": "a constant column"}
    out["pearson"] = _clean(float(stats.pearsonr(xs, ys).statistic))
    out["spearman"] = _clean(float(stats.spearmanr(xs, ys).statistic))
    out["kendall"] = _clean(float(stats.kendalltau(xs, ys).statistic))
    return out


def correlations(rows: list[dict[str, Any]], human: dict[str, list[Optional[float]]]) -> dict[str, dict[str, Any]]:
    """{metric: {aspect: {pearson, spearman, kendall, n}}} for every per-example metric in rows."""
    metrics = [k for k in (rows[0] if rows else {}) if k != "id"]
    return {m: {aspect: correlate([r.get(m) for r in rows], values) for aspect, values in human.items()}
            for m in metrics}
