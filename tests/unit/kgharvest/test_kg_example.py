"""`glassbox run examples/kgharvest-tiny.yaml` keeps the run contract (DESIGN.md section 6) and
harvests something meaningful: the top tuples are planted country-capital facts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glassbox_api.store import open_store
from glassbox_workloads.kgharvest.facts import CAPITALS, capitals_corpus

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "kgharvest-tiny.yaml"


def test_the_example_corpus_is_the_committed_one():
    assert (ROOT / "examples" / "data" / "capitals.txt").read_text().splitlines() == capitals_corpus()


@pytest.mark.slow
def test_glassbox_run_of_the_tiny_example_publishes_true_capitals_first(tmp_path):
    glassbox = Path(sys.executable).parent / "glassbox"
    out = subprocess.run([str(glassbox), "run", str(EXAMPLE), "--store", str(tmp_path / "store")], cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    run_uri = re.search(r"^run:\s+(\S+)$", out.stdout, re.M).group(1)
    assert re.search(r"^manifest:\s+\S+/manifest.json$", out.stdout, re.M)
    run = open_store(run_uri)
    m = json.loads(run.get_bytes("manifest.json"))
    assert m["state"] == "completed" and m["final"]["relationsDone"] == 1
    ckpt = m["checkpoints"][0]
    assert ckpt["step"] == 600 and {f["path"] for f in ckpt["files"]} >= {"config.json", "model.safetensors"}
    (rel,) = m["relations"]
    for f in rel["files"] + [m["kg"]]:
        run.verify(f["path"], f["sha256"], f["size"])
    rows = [json.loads(x) for x in run.get_bytes("kg.jsonl").decode().splitlines()]
    top = [tuple(e.lower() for e in r["entities"]) for r in rows[:10]]
    assert sum(t in set(CAPITALS) for t in top) >= 7, top
    prompts = json.loads(run.get_bytes("relations/capital_of/prompts.json"))
    assert prompts[0]["prompt"] == "<ENT1> is the capital of <ENT0> ." and prompts[0]["weight"] > 0.5
