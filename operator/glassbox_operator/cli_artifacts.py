"""`glassbox checkpoints | report | summarize`: read a run's record through the store.

Only glassbox_api and rich: no torch, no workload code. A run is named by its URI (a path,
file://, s3://...) or, for runs in the local store, by the resource name.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.table import Table

from glassbox_api.manifest import (
    MANIFEST_JSON,
    RUN_JSON,
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
    staged = any(c.stage is not None for c in manifest.checkpoints)  # one model per stage (progressive)
    if staged:
        t.add_column("stage", justify="right", no_wrap=True)
    for c in manifest.checkpoints:
        e = c.evals
        mem = (f"{e['memorization_token_match']:.3f}/{e.get('memorization_full_match', 0):.2f}"
               if "memorization_token_match" in e else "-")
        stage = [f"{c.stage.index}/{c.stage.count} step {c.stage.step}" if c.stage else "-"] if staged else []
        t.add_row(str(c.step) + ("" if c.resumable else "*"), f"{c.tokens:,}", _opt(c.loss, ".4f"),
                  _opt(e.get("perplexity"), ".2f"), mem, f"{c.data.samples_start:,}-{c.data.samples_end:,}",
                  str(c.data.chunks_completed), _size(c.size), c.time[5:16].replace("T", " "),
                  *[_opt(e.get(k), ".4g") for k in extra], *stage)
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


def render_report(run: ArtifactStore, record: Optional[RunRecord], manifest: Manifest,
                  metrics: list[dict[str, Any]]) -> str:
    """The report as one HTML string, with the same charts as `glassbox ui` (glassbox_ui.report)."""
    from glassbox_ui.report import render_report as render

    return render(run, record, manifest, metrics)


def report(run_or_uri: str, out: Optional[Path] = None, *, store: Optional[str] = None,
           console: Optional[Console] = None) -> int:
    """Write a self-contained HTML report (loss, lr, throughput and eval-over-checkpoint charts) for a run."""
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
           "summarize", "summary_table", "LocalStore"]
