"""`glassbox run examples/metriceval-tiny.yaml` keeps the run contract (DESIGN.md section 6): exit 0,
`run:` and `manifest:` lines, results as files listed in manifest.json with their sha256; the real
MiniLM encoder's E-consistency ranks each faithful summary above its unfaithful twin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glassbox_api.manifest import read_manifest
from glassbox_api.store import open_store

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "metriceval-tiny.yaml"

@pytest.mark.slow
def test_tiny_example_runs_to_the_contract_and_ranks_faithful_summaries_higher(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "from glassbox_operator.cli import app; app()", "run", str(EXAMPLE),
                          "--store", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(re.findall(r"^(run|manifest):\s+(\S+)$", out.stdout, re.M))
    assert set(lines) == {"run", "manifest"}
    run = open_store(lines["run"])
    m = read_manifest(run)
    assert m is not None and m.state == "completed" and m.final["examplesScored"] == m.final["examplesTotal"] == 6
    for name in ("scores", "summary"):
        e = m.final["outputs"][name]
        run.verify(e["path"], e["sha256"], e["size"])
    rows = [json.loads(l) for l in run.get_bytes("scores.jsonl").decode().splitlines()]
    assert [r["id"] for r in rows] == ["s1", "s2", "s3", "s4", "s1-wrong", "s3-wrong"]
    assert set(rows[0]) == {"id", "consistency", "relevance", "rouge-1", "rouge-2", "rouge-l", "bleu-4", "bertscore"}
    by = {r["id"]: r for r in rows}
    assert by["s1"]["consistency"] > by["s1-wrong"]["consistency"]
    assert by["s3"]["consistency"] > by["s3-wrong"]["consistency"]
    summary = json.loads(run.get_bytes("summary.json"))
    assert set(summary["results"]) == {"consistency", "relevance", "rouge-1", "rouge-2", "rouge-l", "bleu-4", "bertscore",
                                       "dist-1", "dist-2"}
    assert "dist-1" not in summary["correlations"]  # set-level: no per-example value to correlate
    assert summary["correlations"]["consistency"]["consistency"]["spearman"] > 0.5
    # Running the same file again finds it complete and publishes nothing new.
    again = subprocess.run([sys.executable, "-c", "from glassbox_operator.cli import app; app()", "run", str(EXAMPLE),
                            "--store", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "already complete" in again.stdout
    assert read_manifest(run) == m
