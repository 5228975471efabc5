"""`glassbox checkpoints | report | summarize` read a run through the store (no torch needed)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
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


def test_report_is_html_with_loss_and_eval_plots(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    out = tmp_path / "r.html"
    assert ca.report(run.uri(), out, console=capture()[0]) == 0
    page = out.read_text()
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    titles = [ET.fromstring(s).get("aria-label") for s in svgs]
    assert "training loss" in titles
    assert "perplexity over checkpoints" in titles and "memorization over checkpoints" in titles
    loss_svg = svgs[titles.index("training loss")]
    assert loss_svg.count("<circle") == 20 + 2  # 20 per-step points and 2 checkpoint means
    assert run.uri(checkpoint_dir(10)) in page and "d" * 64 in page


def test_cli_artifacts_never_imports_torch() -> None:
    code = ("import sys, glassbox_operator.cli_artifacts; "
            "bad = [m for m in ('torch', 'transformers', 'glassbox_workloads') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("series", [{"a": []}, {"a": [(1, float("nan"))]}])
def test_empty_charts_degrade_to_a_note(series) -> None:
    assert "no data" in ca.svg_line_chart("x", series)
