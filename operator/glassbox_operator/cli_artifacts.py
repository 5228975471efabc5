"""`glassbox checkpoints | report | summarize`: read a run's record through the store.

Only glassbox_api and rich: no torch, no workload code. A run is named by its URI (a path,
file://, s3://...) or, for runs in the local store, by the resource name.
"""

from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

from rich.console import Console
from rich.table import Table

from glassbox_api.manifest import (
    MANIFEST_JSON,
    RUN_JSON,
    CheckpointEntry,
    Manifest,
    RunRecord,
    read_manifest,
    read_run_record,
)
from glassbox_api.podcontract import Env
from glassbox_api.store import ArtifactStore, LocalStore, StoreError, find_run_prefixes, open_store

DEFAULT_LOCAL_STORE = "glassbox-runs"  # where `glassbox run` publishes by default


def _console() -> Console:
    # Piped output (logs, CI) is not cut to 80 columns: tables stay whole.
    return Console() if sys.stdout.isatty() else Console(width=200)


class RunNotFound(LookupError):
    """The argument names no published run."""


# ---- finding the run ---------------------------------------------------------------------------
def _default_root(store: Optional[str]) -> str:
    return store or os.environ.get(Env.STORE) or DEFAULT_LOCAL_STORE


def resolve_run(run_or_uri: str, store: Optional[str] = None) -> ArtifactStore:
    """The run directory as a store: a URI/path of the run, or a resource name in the store root.

    Names may be `name`, `namespace/name` or `kind/name`; the newest matching run wins.
    """
    looks_like_uri = "://" in run_or_uri or run_or_uri.startswith(("/", ".")) or Path(run_or_uri).exists()
    if looks_like_uri:
        s = open_store(run_or_uri)
        if s.exists(MANIFEST_JSON) or s.exists(RUN_JSON):
            return s
        if "://" in run_or_uri and not run_or_uri.startswith("file://"):
            raise RunNotFound(f"{run_or_uri} holds no run (no manifest.json or run.json)")
    root = open_store(_default_root(store))
    parts = run_or_uri.strip("/").split("/")
    name = parts[-1]
    qualifier = parts[0].lower() if len(parts) > 1 else None
    try:
        prefixes = find_run_prefixes(root, None, None, name)  # newest first
    except StoreError as exc:
        raise RunNotFound(f"cannot list {root.uri()}: {exc}") from None
    prefixes = [p for p in prefixes if qualifier is None or qualifier in p.split("/")[:2]]
    if not prefixes:
        raise RunNotFound(f"no run named {run_or_uri!r} under {root.uri()} (pass the run's URI instead)")
    return root.sub(prefixes[0])


def _load(run_or_uri: str, store: Optional[str]) -> tuple[ArtifactStore, Optional[RunRecord], Manifest]:
    run = resolve_run(run_or_uri, store)
    return run, read_run_record(run), read_manifest(run) or Manifest()


# ---- formatting ------------------------------------------------------------------------------
_EVAL_LABELS = {"perplexity": "ppl", "heldout_loss": "val loss", "memorization_token_match": "mem tok",
                "memorization_full_match": "mem full"}


def _evals_text(e: dict[str, float]) -> str:
    return "  ".join(f"{_EVAL_LABELS.get(k, k)} {v:.4g}" for k, v in e.items() if not k.endswith("_samples"))


def _data_text(c: CheckpointEntry) -> str:
    d = c.data
    return f"samples {d.samples_start:,}-{d.samples_end:,}  chunks done {d.chunks_completed}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _opt(v: Optional[float], fmt: str) -> str:
    return format(v, fmt) if v is not None else "-"


def checkpoints_table(run: ArtifactStore, manifest: Manifest) -> Table:
    t = Table(title=f"{manifest.kind or 'run'} {manifest.namespace}/{manifest.name}", title_justify="left",
              caption=run.uri(), caption_justify="left")
    for col, just in (("step", "right"), ("tokens", "right"), ("loss", "right"), ("ppl", "right"),
                      ("mem", "right"), ("samples", "right"), ("chunks", "right"), ("size", "right"),
                      ("time", "left")):
        t.add_column(col, justify=just, no_wrap=True, min_width=len(col))
    known = {"perplexity", "heldout_loss", "memorization_token_match", "memorization_full_match"}
    extra = sorted({k for c in manifest.checkpoints for k in c.evals if k not in known and not k.endswith("_samples")})
    for k in extra:
        t.add_column(k, justify="right", no_wrap=True)
    for c in manifest.checkpoints:
        e = c.evals
        mem = (f"{e['memorization_token_match']:.3f}/{e.get('memorization_full_match', 0):.2f}"
               if "memorization_token_match" in e else "-")
        t.add_row(str(c.step) + ("" if c.resumable else "*"), f"{c.tokens:,}", _opt(c.loss, ".4f"),
                  _opt(e.get("perplexity"), ".2f"), mem, f"{c.data.samples_start:,}-{c.data.samples_end:,}",
                  str(c.data.chunks_completed), _size(c.size), c.time[5:16].replace("T", " "),
                  *[_opt(e.get(k), ".4g") for k in extra])
    return t


def checkpoints(run_or_uri: str, *, store: Optional[str] = None, console: Optional[Console] = None) -> int:
    """Print the published checkpoints of a run; exit code 0, or 1 when the run is not found."""
    console = console or _console()
    try:
        run, _, manifest = _load(run_or_uri, store)
    except (RunNotFound, StoreError) as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    if not manifest.checkpoints:
        console.print(f"{run.uri()}: no checkpoint published yet")
        return 0
    console.print(checkpoints_table(run, manifest))
    if any(not c.resumable for c in manifest.checkpoints):
        console.print("* weights only: optimizer state pruned (checkpoint.keepOptimizer: false)")
    state = manifest.state + (f", {manifest.latest.step}/{manifest.total_steps} steps" if manifest.total_steps else "")
    console.print(f"state: {state}   manifest: {run.uri(MANIFEST_JSON)}")
    return 0


def summary_table(run: ArtifactStore, manifest: Manifest) -> Table:
    """The end-of-run table `glassbox run` prints: one row per checkpoint and where it lives."""
    t = Table(title=f"{manifest.kind} {manifest.namespace}/{manifest.name}: {manifest.state}", title_justify="left")
    for col in ("step", "tokens", "loss", "perplexity", "memorization", "checkpoint"):
        t.add_column(col, justify="left" if col == "checkpoint" else "right")
    for c in manifest.checkpoints:
        ppl, mem = c.evals.get("perplexity"), c.evals.get("memorization_token_match")
        t.add_row(str(c.step), f"{c.tokens:,}", f"{c.loss:.4f}" if c.loss is not None else "-",
                  f"{ppl:.2f}" if ppl is not None else "-", f"{mem:.3f}" if mem is not None else "-",
                  run.uri(c.path))
    return t


def summarize(run_uri: str, *, store: Optional[str] = None, console: Optional[Console] = None) -> int:
    """Print the end-of-run summary of a run (checkpoints, loss, perplexity, where they are)."""
    console = console or _console()
    try:
        run, record, manifest = _load(run_uri, store)
    except (RunNotFound, StoreError) as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    console.print(summary_table(run, manifest))
    final = manifest.final
    if final:
        console.print("final: " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in final.items() if not k.endswith("_samples")))
    console.print(f"run:      {run.uri()}\nmanifest: {run.uri(MANIFEST_JSON)}")
    if record is not None:
        console.print(f"record:   {run.uri(RUN_JSON)} (data {(record.data_manifest_digest or '-')[:12]}, "
                      f"tokenizer {(record.tokenizer_digest or '-')[:12]})")
    return 0


# ---- knowledge graphs (KGHarvest) ---------------------------------------------------------------
def _relation_rows(run: ArtifactStore, manifest: Manifest, relation: Optional[str]) -> list[dict[str, Any]]:
    """Tuples of the relations the manifest lists (those fully published), best first per relation."""
    listed = (manifest.model_extra or {}).get("relations", [])
    names = [e["name"] for e in listed]
    if relation is not None and relation not in names:
        raise RunNotFound(f"{run.uri()}: no relation {relation!r} published (published: {', '.join(names) or 'none'})")
    rows: list[dict[str, Any]] = []
    for e in listed:
        if relation is not None and e["name"] != relation:
            continue
        f = next(f for f in e["files"] if f["path"].endswith("tuples.jsonl"))
        raw = run.get_bytes(f["path"], sha256=f["sha256"]).decode()
        rows += [{"relation": e["name"], **json.loads(line)} for line in raw.splitlines() if line.strip()]
    return rows


def kg(run_or_uri: str, *, relation: Optional[str] = None, top: Optional[int] = None, as_json: bool = False,
       store: Optional[str] = None, console: Optional[Console] = None) -> int:
    """Print a harvest's tuples (per relation, best first) as a table or JSON lines; 1 when not found."""
    console = console or _console()
    try:
        run, _, manifest = _load(run_or_uri, store)
        rows = _relation_rows(run, manifest, relation)
    except (RunNotFound, StoreError) as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    if top is not None:  # rows are best first within each relation
        kept: dict[str, int] = {}
        for r in rows:
            kept[r["relation"]] = kept.get(r["relation"], 0) + 1
            r["rank"] = kept[r["relation"]]
        rows = [r for r in rows if r.pop("rank") <= top]
    if as_json:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
        return 0
    t = Table(title=f"{manifest.kind or 'run'} {manifest.namespace}/{manifest.name}: {manifest.state}",
              title_justify="left", caption=run.uri(), caption_justify="left")
    for col, just in (("relation", "left"), ("rank", "right"), ("entities", "left"), ("score", "right"), ("weight", "right")):
        t.add_column(col, justify=just, no_wrap=col != "entities")
    rank: dict[str, int] = {}
    for r in rows:
        rank[r["relation"]] = rank.get(r["relation"], 0) + 1
        t.add_row(r["relation"], str(rank[r["relation"]]), " | ".join(r["entities"]), f"{r['score']:.4f}", f"{r['weight']:.4f}")
    console.print(t)
    final = manifest.final
    console.print(f"relations {final.get('relationsDone', 0)}/{final.get('relationsTotal', '?')}  "
                  f"tuples {final.get('tuples', 0)}  manifest: {run.uri(MANIFEST_JSON)}")
    return 0


# ---- the HTML report ------------------------------------------------------------------------
def _read_metrics(run: ArtifactStore, manifest: Manifest) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for seg in manifest.metrics:
        try:
            rows += [json.loads(line) for line in run.get_bytes(seg).decode().splitlines() if line.strip()]
        except StoreError:
            continue
    return sorted(rows, key=lambda r: r.get("step", 0))


def svg_line_chart(title: str, series: dict[str, list[tuple[float, float]]], *, width: int = 640,
                   height: int = 260, x_label: str = "step", log_y: bool = False) -> str:
    """A self-contained SVG line chart (no plotting library): axes, ticks, one polyline per series."""
    import math

    pts = [p for s in series.values() for p in s if p[1] is not None and math.isfinite(p[1])]
    if log_y:
        pts = [p for p in pts if p[1] > 0]
    if not pts:
        return f"<p><em>{html.escape(title)}: no data</em></p>"
    ml, mr, mt, mb = 64, 16, 28, 40
    fx = lambda v: v  # noqa: E731
    fy = (lambda v: math.log10(v)) if log_y else (lambda v: v)  # noqa: E731
    xs, ys = [fx(p[0]) for p in pts], [fy(p[1]) for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    W, H = width - ml - mr, height - mt - mb
    sx = lambda v: ml + (fx(v) - x0) / (x1 - x0) * W  # noqa: E731
    sy = lambda v: mt + H - (fy(v) - y0) / (y1 - y0) * H  # noqa: E731
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{ml}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{ml}" y="{mt}" width="{W}" height="{H}" fill="none" stroke="#999"/>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        y = mt + H - H * i / 4
        label = 10 ** yv if log_y else yv
        out.append(f'<line x1="{ml}" x2="{ml + W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{label:.4g}</text>')
        xv = x0 + (x1 - x0) * i / 4
        x = ml + W * i / 4
        out.append(f'<text x="{x:.1f}" y="{mt + H + 16}" font-size="11" text-anchor="middle">{xv:.6g}</text>')
    out.append(f'<text x="{ml + W / 2}" y="{height - 6}" font-size="11" text-anchor="middle">{html.escape(x_label)}</text>')
    for i, (name, s) in enumerate(series.items()):
        good = [(x, y) for x, y in s if y is not None and math.isfinite(y) and (y > 0 or not log_y)]
        if not good:
            continue
        c = colors[i % len(colors)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{path}"/>')
        if len(good) <= 60:
            out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{c}"/>' for x, y in good]
        out.append(f'<text x="{ml + W - 4}" y="{mt + 14 + 14 * i}" font-size="11" text-anchor="end" fill="{c}">'
                   f'{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _html_table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_report(run: ArtifactStore, record: Optional[RunRecord], manifest: Manifest,
                  metrics: list[dict[str, Any]]) -> str:
    """The report as one HTML string: pure function of what the store holds."""
    title = f"{manifest.kind} {manifest.namespace}/{manifest.name}"
    loss = [(r["step"], r.get("loss")) for r in metrics if "loss" in r]
    ckpt_loss = [(c.step, c.loss) for c in manifest.checkpoints if c.loss is not None]
    charts = [svg_line_chart("training loss", {"loss (per step)": loss, "loss (checkpoint mean)": ckpt_loss}
                             if loss else {"loss (checkpoint mean)": ckpt_loss})]
    if any("lr" in r for r in metrics):
        charts.append(svg_line_chart("learning rate", {"lr": [(r["step"], r.get("lr")) for r in metrics]}))
    if any("tokens_per_s" in r for r in metrics):
        charts.append(svg_line_chart("throughput (tokens/s)",
                                     {"tokens/s": [(r["step"], r.get("tokens_per_s")) for r in metrics]}))
    names = sorted({k for c in manifest.checkpoints for k in c.evals if not k.endswith("_samples")})
    groups = {"perplexity": [n for n in names if "perplexity" in n],
              "memorization": [n for n in names if n.startswith("memorization")]}
    groups["other evals"] = [n for n in names if n not in groups["perplexity"] + groups["memorization"]]
    for g, keys in groups.items():
        if keys:
            charts.append(svg_line_chart(
                f"{g} over checkpoints",
                {k: [(c.step, c.evals.get(k)) for c in manifest.checkpoints if k in c.evals] for k in keys},
                log_y=(g == "perplexity")))
    rows = [(c.step, f"{c.tokens:,}", f"{c.loss:.4f}" if c.loss is not None else "-", _evals_text(c.evals) or "-",
             _data_text(c), _size(c.size), run.uri(c.path)) for c in manifest.checkpoints]
    facts = [("run", run.uri()), ("state", manifest.state), ("checkpoints", len(manifest.checkpoints)),
             ("total steps", manifest.total_steps or "-")]
    if record is not None:
        facts += [("created", record.created), ("code version", record.code_version), ("image", record.image or "-"),
                  ("seeds", json.dumps(record.seeds)), ("data manifest", record.data_manifest_digest or "-"),
                  ("tokenizer", record.tokenizer_digest or "-"), ("spec digest", record.spec_digest)]
    spec = json.dumps(record.spec, indent=2, sort_keys=True) if record is not None else "{}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; }}
th {{ background: #f4f4f4; }}
.charts svg {{ margin: 0.5em 1em 0.5em 0; }}
pre {{ background: #f8f8f8; padding: 1em; overflow-x: auto; font-size: 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{_html_table(("", ""), facts)}
<h2>Curves</h2><div class="charts">{''.join(charts)}</div>
<h2>Checkpoints</h2>
{_html_table(("step", "tokens", "loss", "evals", "data", "size", "where"), rows)}
<h2>Spec as applied</h2><pre>{html.escape(spec)}</pre>
</body></html>
"""


def report(run_or_uri: str, out: Optional[Path] = None, *, store: Optional[str] = None,
           console: Optional[Console] = None) -> int:
    """Write an HTML report (loss and eval-over-checkpoint plots as inline SVG) for a run."""
    console = console or _console()
    try:
        run, record, manifest = _load(run_or_uri, store)
    except (RunNotFound, StoreError) as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    out = Path(out) if out else Path(f"{manifest.name or 'run'}-report.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(run, record, manifest, _read_metrics(run, manifest)), encoding="utf-8")
    console.print(f"wrote {out} ({len(manifest.checkpoints)} checkpoints)")
    return 0


__all__ = ["RunNotFound", "checkpoints", "kg", "checkpoints_table", "render_report", "report", "resolve_run",
           "summarize", "summary_table", "svg_line_chart", "LocalStore"]
