"""`glassbox report`: one run as a single self-contained HTML file, with the UI's own charts.

The page inlines the vendored uPlot, static/charts.js and the chart specs that views.py builds for
the UI, so the report draws exactly what `glassbox ui` draws and opens offline from a file. Only
glassbox_api and the standard library: the operator's CLI imports this without the ui extra.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Iterable, Optional

from glassbox_api.manifest import Manifest, RunRecord
from glassbox_api.store import ArtifactStore

from .views import curve_charts, training_charts

STATIC = Path(__file__).parent / "static"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _script_json(obj: Any) -> str:
    """JSON safe inside a <script> element (no '</script>' can close it early)."""
    return json.dumps(obj).replace("</", "<\\/")


def _evals(e: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in e.items() if not k.endswith("_samples")) or "-"


def chart_specs(manifest: Manifest, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's charts: those of the UI's run view (loss, lr, throughput, evals per checkpoint,
    and a MetricEval's checkpoint curve from the points its manifest holds)."""
    return training_charts(manifest, metrics) + curve_charts(list(manifest.final.get("curvePoints") or []))


def render_report(run: ArtifactStore, record: Optional[RunRecord], manifest: Manifest,
                  metrics: list[dict[str, Any]]) -> str:
    """The report as one HTML string: a pure function of what the store holds."""
    title = f"{manifest.kind} {manifest.namespace}/{manifest.name}"
    rows = [(c.step, f"{c.tokens:,}", f"{c.loss:.4f}" if c.loss is not None else "-", _evals(c.evals),
             f"samples {c.data.samples_start:,}-{c.data.samples_end:,}  chunks done {c.data.chunks_completed}",
             _size(c.size), run.uri(c.path)) for c in manifest.checkpoints]
    facts: list[tuple[str, Any]] = [("run", run.uri()), ("state", manifest.state),
                                    ("checkpoints", len(manifest.checkpoints)), ("total steps", manifest.total_steps or "-")]
    if record is not None:
        facts += [("created", record.created), ("code version", record.code_version), ("image", record.image or "-"),
                  ("seeds", json.dumps(record.seeds)), ("data manifest", record.data_manifest_digest or "-"),
                  ("tokenizer", record.tokenizer_digest or "-"), ("spec digest", record.spec_digest)]
    spec = json.dumps(record.spec, indent=2, sort_keys=True) if record is not None else "{}"
    vendor = STATIC / "vendor" / "uplot"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{(vendor / "uPlot.min.css").read_text()}</style>
<style>{(STATIC / "app.css").read_text()}</style>
</head><body><main>
<h1>{html.escape(title)}</h1>
{_table(("", ""), facts)}
<h2>Curves</h2><div class="charts" id="charts"></div>
<h2>Checkpoints</h2>
{_table(("step", "tokens", "loss", "evals", "data", "size", "where"), rows)}
<h2>Spec as applied</h2><pre>{html.escape(spec)}</pre>
</main>
<script type="application/json" id="glassbox-charts">{_script_json(chart_specs(manifest, metrics))}</script>
<script>{(vendor / "uPlot.iife.min.js").read_text()}</script>
<script>{(STATIC / "charts.js").read_text()}</script>
<script>
(function () {{
  const box = document.getElementById("charts");
  const specs = JSON.parse(document.getElementById("glassbox-charts").textContent);
  if (!specs.length) box.textContent = "no curves: nothing published yet";
  for (const spec of specs) {{
    const c = document.createElement("div");
    c.className = "chart";
    box.append(c);
    GlassboxCharts.draw(c, spec, 560);
  }}
}})();
</script>
</body></html>
"""
