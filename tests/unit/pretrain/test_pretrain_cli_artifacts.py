"""`glassbox checkpoints | report | summarize` read a run through the store (no torch needed)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from glassbox_api.manifest import (
    CheckpointEntry,
    DataRange,
    FileEntry,
    Manifest,
    RunRecord,
    checkpoint_dir,
    metrics_segment,
    run_prefix,
)
from glassbox_api.store import LocalStore
from glassbox_operator import cli_artifacts as ca


def fake_run(root: Path, name: str = "tiny", uid: str = "abcdef0123") -> LocalStore:
    run = LocalStore(root).sub(run_prefix("default", "PretrainRun", name, uid))
    run.write_json("run.json", RunRecord(kind="PretrainRun", name=name, uid=uid, spec={"data": {"seed": 1}},
                                         spec_digest="s", data_manifest_digest="d" * 64,
                                         tokenizer_digest="t" * 64, seeds={"data": 1}).to_json())
    m = Manifest(kind="PretrainRun", name=name, namespace="default", uid=uid, total_steps=20)
    for step in (10, 20):
        rows = "".join(json.dumps({"step": s, "loss": 6.0 - s * 0.1, "lr": 1e-3, "tokens_per_s": 1000.0}) + "\n"
                       for s in range(step - 9, step + 1))
        run.put_bytes(metrics_segment(step), rows.encode())
        m = m.with_checkpoint(CheckpointEntry(
            step=step, tokens=step * 512, loss=6.0 - step * 0.1, path=checkpoint_dir(step),
            files=[FileEntry(path="model.safetensors", sha256="0" * 64, size=1_500_000)],
            evals={"perplexity": 400.0 / step, "memorization_token_match": 0.01 * step,
                   "memorization_full_match": 0.0},
            data=DataRange(samples_start=(step - 10) * 8, samples_end=step * 8, chunks_completed=step // 10),
            metrics_path=metrics_segment(step)))
    m = m.model_copy(update={"state": "completed", "final": {"loss": 4.0, "perplexity": 20.0}})
    run.write_json("manifest.json", m.to_json())
    return run


def capture() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200), buf


def test_checkpoints_table_by_uri_and_by_name(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    con, buf = capture()
    assert ca.checkpoints(run.uri(), console=con) == 0
    out = buf.getvalue()
    assert re.search(r"10 .* 5,120 .* 5\.0000 .* 40\.00 .* 0\.100/0\.00 .* 0-80 ", out)
    assert "20/20 steps" in out and "completed" in out
    con, buf = capture()
    assert ca.checkpoints("tiny", store=str(tmp_path), console=con) == 0
    assert "5,120" in buf.getvalue()
    assert ca.checkpoints("default/tiny", store=str(tmp_path), console=capture()[0]) == 0
    con, buf = capture()
    assert ca.checkpoints("missing", store=str(tmp_path), console=con) == 1
    assert "no run named" in buf.getvalue()


def test_summary_lists_checkpoints_and_where(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    con, buf = capture()
    assert ca.summarize(run.uri(), console=con) == 0
    out = buf.getvalue()
    assert run.uri(checkpoint_dir(20)) in out and "manifest.json" in out and "perplexity 20" in out


def report_charts(page: str) -> dict[str, dict[str, int]]:
    """Chart title -> points per series, from the chart specs the report embeds for uPlot."""
    raw = re.search(r'<script type="application/json" id="glassbox-charts">(.*?)</script>', page, re.S).group(1)
    return {c["title"]: {s["name"]: len(s["points"]) for s in c["series"]} for c in json.loads(raw)}


def test_report_is_html_with_loss_and_eval_plots(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    out = tmp_path / "r.html"
    assert ca.report(run.uri(), out, console=capture()[0]) == 0
    page = out.read_text()
    charts = report_charts(page)
    assert charts["training loss"] == {"loss (per step)": 20, "loss (checkpoint mean)": 2}
    assert charts["perplexity over checkpoints"] == {"perplexity": 2}
    assert charts["memorization over checkpoints"] == {"memorization_full_match": 2, "memorization_token_match": 2}
    assert charts["throughput"] == {"tokens/s": 20} and charts["learning rate"] == {"lr": 20}
    assert run.uri(checkpoint_dir(10)) in page and "d" * 64 in page
    assert "uPlot" in page and "<svg" not in page and "src=\"http" not in page  # the library inlined, no CDN


def test_cli_artifacts_never_imports_torch() -> None:
    code = ("import sys, glassbox_operator.cli_artifacts; "
            "bad = [m for m in ('torch', 'transformers', 'glassbox_workloads') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_run_without_curves_reports_none(tmp_path: Path) -> None:
    run = LocalStore(tmp_path).sub(run_prefix("default", "PretrainRun", "empty", "abcdef0123"))
    run.write_json("manifest.json", Manifest(kind="PretrainRun", name="empty", namespace="default").to_json())
    out = tmp_path / "r.html"
    assert ca.report(run.uri(), out, console=capture()[0]) == 0
    assert report_charts(out.read_text()) == {}
    assert "no curves: nothing published yet" in out.read_text()
