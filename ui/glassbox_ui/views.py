"""The per-kind data behind the pages: curves, a harvest's relations, prompts and tuples, a metric
run's scores with their texts, its checkpoint curve. Each reads only files the manifest lists.

Formats (the publishers' own): metric segments `metrics/<step>.jsonl` (PretrainRun and the other
trainers), KGHarvest `relations/<name>/{prompts.json,tuples.jsonl}` listed under the manifest's
`relations`, MetricEval `scores.jsonl`, `summary.json`, `curve.jsonl` under `final.outputs` (chunks
under `final.chunks` while it runs, curve points under `final.curvePoints`).
"""

from __future__ import annotations

import math
from typing import Any, Optional

from glassbox_api.manifest import Manifest
from glassbox_api.store import StoreError, open_store

from .catalog import Catalog, UiError, version
from .files import FileCache, Table


def _num(v: Any) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def chart(cid: str, title: str, series: dict[str, list[tuple[Any, Any]]], *, x_label: str = "step",
          y_label: str = "", log: bool = False, nonneg: bool = False) -> dict[str, Any]:
    """A chart spec the page's charts.js draws with uPlot: series of [x, y] points (finite only)."""
    out = []
    for name, pts in series.items():
        good = [[x, _num(y)] for x, y in pts if _num(x) is not None and _num(y) is not None and (not log or y > 0)]
        if good:
            out.append({"name": name, "points": sorted(good)})
    return {"id": cid, "title": title, "xLabel": x_label, "yLabel": y_label, "log": log, "nonneg": nonneg,
            "series": out}


def metric_rows(cat: Catalog, cache: FileCache, prefix: str, m: Manifest) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-step metric rows of every listed segment; a segment that cannot be read is a warning."""
    run, rows, warnings = cat.run(prefix), [], []
    for seg in m.metrics:
        try:
            rows += cache.get(run, seg, None, lines=True, version="segment")
        except UiError as exc:
            warnings.append(exc.message)
    return sorted(rows, key=lambda r: r.get("step", 0)), warnings


def _is_count(key: str) -> bool:
    """Eval keys that count what was evaluated (examples, samples), not a score to plot."""
    return key == "examples" or key.endswith(("_samples", "_examples"))


def training_charts(m: Manifest, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Loss, learning rate, throughput and each group of per-checkpoint evals."""
    loss = {"loss (checkpoint mean)": [(c.step, c.loss) for c in m.checkpoints]}
    if any("loss" in r for r in metrics):
        loss = {"loss (per step)": [(r.get("step"), r.get("loss")) for r in metrics], **loss}
    charts = [chart("loss", "training loss", loss, y_label="loss")]
    if any("lr" in r for r in metrics):
        charts.append(chart("lr", "learning rate", {"lr": [(r.get("step"), r.get("lr")) for r in metrics]},
                            y_label="lr", nonneg=True))
    if any("tokens_per_s" in r for r in metrics):
        charts.append(chart("throughput", "throughput", {"tokens/s": [(r.get("step"), r.get("tokens_per_s"))
                                                                     for r in metrics]},
                            y_label="tokens/s", nonneg=True))
    names = sorted({k for c in m.checkpoints for k in c.evals if not _is_count(k)})
    groups = {"perplexity": [n for n in names if "perplexity" in n],
              "memorization": [n for n in names if n.startswith("memorization")]}
    groups["evals"] = [n for n in names if n not in groups["perplexity"] + groups["memorization"]]
    for g, keys in groups.items():
        if keys:
            charts.append(chart(f"evals-{g}", f"{g} over checkpoints",
                                {k: [(c.step, c.evals.get(k)) for c in m.checkpoints] for k in keys},
                                log=g == "perplexity", nonneg=g != "evals"))
    return [c for c in charts if c["series"]]


def curve_points(cat: Catalog, cache: FileCache, prefix: str, m: Manifest) -> list[dict[str, Any]]:
    """A MetricEval's checkpoint curve: curve.jsonl once published, else the points so far."""
    entry = (m.final.get("outputs") or {}).get("curve")
    if entry:
        return cache.get(cat.run(prefix), entry["path"], entry.get("sha256"), lines=True)
    return list(m.final.get("curvePoints") or [])


def curve_charts(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    skip = {"step", "tokens"}
    keys = sorted({k for p in points for k, v in p.items() if k not in skip and _num(v) is not None})
    return [c for c in (chart(f"curve-{k}", f"{k} over checkpoints", {k: [(p.get("step"), p.get(k)) for p in points]},
                              y_label=k) for k in keys) if c["series"]]


def charts(cat: Catalog, cache: FileCache, prefix: str) -> dict[str, Any]:
    """Every chart of a run, with warnings for listed files that could not be read."""
    m = cat.manifest(prefix) or Manifest()
    metrics, warnings = metric_rows(cat, cache, prefix, m)
    out = training_charts(m, metrics) if (m.checkpoints or metrics) else []
    try:
        out += curve_charts(curve_points(cat, cache, prefix, m))
    except UiError as exc:
        warnings.append(exc.message)
    return {"version": version(m), "charts": out, "warnings": warnings}


# ---- KGHarvest ---------------------------------------------------------------------------------
def relations(m: Manifest) -> list[dict[str, Any]]:
    return list((m.model_extra or {}).get("relations") or [])


def _relation_file(m: Manifest, relation: str, suffix: str) -> dict[str, Any]:
    listed = relations(m)
    for e in listed:
        if e.get("name") == relation:
            for f in e.get("files", []):
                if f["path"].endswith(suffix):
                    return f
            raise UiError(f"relation {relation!r} lists no {suffix}", 404)
    names = ", ".join(e.get("name", "?") for e in listed) or "none yet"
    raise UiError(f"no relation {relation!r} published (published: {names})", 404)


TUPLE_COLUMNS = ["relation", "entities", "score", "weight"]


def tuples(cat: Catalog, cache: FileCache, prefix: str, m: Manifest, relation: Optional[str]) -> Table:
    """Tuples of one relation (or of every listed relation), best first, searchable by their text.

    Rows are the parsed file's own (tagged with their relation in place: the same for every reader
    of that file), so a table of 100,000 tuples costs one parse, not a copy."""
    names = [relation] if relation else [e.get("name") for e in relations(m)]
    rows: list[dict[str, Any]] = []
    texts: list[tuple[str, list[str]]] = []
    for name in names:
        f = _relation_file(m, name, "tuples.jsonl")
        parsed, lines = cache.parsed(cat.run(prefix), f["path"], f.get("sha256"), lines=True)
        for r in parsed:
            r["relation"] = name
        rows += parsed
        texts.append((name, lines))
    return Table(rows, columns=TUPLE_COLUMNS, text=lambda: [f"{n.lower()} {x}" for n, lines in texts for x in lines])


def prompts(cat: Catalog, cache: FileCache, prefix: str, m: Manifest, relation: str) -> list[dict[str, Any]]:
    f = _relation_file(m, relation, "prompts.json")
    doc = cache.get(cat.run(prefix), f["path"], f.get("sha256"), lines=False)
    return [dict(p) for p in doc] if isinstance(doc, list) else []


# ---- MetricEval --------------------------------------------------------------------------------
def scores(cat: Catalog, cache: FileCache, prefix: str, m: Manifest) -> list[dict[str, Any]]:
    """Per-example scores: scores.jsonl once published, else the chunks finished so far."""
    run = cat.run(prefix)
    entry = (m.final.get("outputs") or {}).get("scores")
    if entry:
        return cache.get(run, entry["path"], entry.get("sha256"), lines=True)
    rows: list[dict[str, Any]] = []
    for c in sorted(m.final.get("chunks") or [], key=lambda c: c.get("index", 0)):
        rows += cache.get(run, c["path"], c.get("sha256"), lines=True)
    return rows


def summary(cat: Catalog, cache: FileCache, prefix: str, m: Manifest) -> dict[str, Any]:
    entry = (m.final.get("outputs") or {}).get("summary")
    if entry:
        return cache.get(cat.run(prefix), entry["path"], entry.get("sha256"), lines=False)
    return {"results": m.final.get("results") or {}}


def _join(v: Any) -> Any:
    return " || ".join(map(str, v)) if isinstance(v, list) else v


def texts(cache: FileCache, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The examples' texts by id, from the evaluated data (spec.data.uri), with the spec's field names.

    Ids follow the MetricEval reader: fields.id, else `line-N` (jsonl) / `item-N` (json), 1-based
    (a jsonl file with blank lines between examples numbers them differently: give examples ids)."""
    data, fields = spec.get("data") or {}, spec.get("fields") or {}
    uri = str(data.get("uri") or "")
    if not uri:
        raise UiError("spec.data.uri is empty: no texts to show")
    parent, _, leaf = uri.rstrip("/").rpartition("/")
    try:
        src = open_store(parent or ".")
        lines = (data.get("format") or "jsonl") == "jsonl"
        doc = cache.get(src, leaf, None, lines=lines, version=str(src.stat(leaf).size))
    except (StoreError, UiError) as exc:
        raise UiError(f"texts of spec.data.uri {uri} cannot be read here: {getattr(exc, 'message', exc)}") from None
    rows = doc if isinstance(doc, list) else [doc]
    idf, tag = fields.get("id", "id"), "line" if lines else "item"
    want = {k: fields.get(k, k) for k in ("source", "output", "references")}
    out = {}
    for i, r in enumerate(rows, 1):
        if isinstance(r, dict):
            rid = str(r[idf]) if r.get(idf) is not None else f"{tag}-{i}"
            out[rid] = {k: _join(r.get(f)) for k, f in want.items() if f in r}
    return out


def scores_with_texts(cat: Catalog, cache: FileCache, prefix: str, m: Manifest,
                      spec: dict[str, Any]) -> tuple[list[dict[str, Any]], Optional[str]]:
    """Scores with output, source and references beside them (a note when the texts are unavailable)."""
    rows = scores(cat, cache, prefix, m)
    try:
        by_id = texts(cache, spec)
    except UiError as exc:
        return rows, exc.message
    return [{"id": r.get("id"), **by_id.get(str(r.get("id")), {}), **r} for r in rows], None
