"""`glassbox run examples/scorer-tiny.yaml --port 0`: the run contract of DESIGN.md section 6 for a
service kind: adapt, publish (run.json, pairs, checkpoint, eval, manifest), print `run:`/`manifest:`,
then `serving: URL`, answer requests, and exit 0 on SIGTERM. A second run serves what the first published."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from glassbox_api.manifest import read_manifest, read_run_record
from glassbox_api.store import LocalStore

ROOT = Path(__file__).resolve().parents[3]
GLASSBOX = ROOT / ".venv" / "bin" / "glassbox"


def _run(store: Path) -> tuple[subprocess.Popen, list[str], str]:
    proc = subprocess.Popen([str(GLASSBOX), "run", "examples/scorer-tiny.yaml", "--store", str(store), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        served = [l for l in lines if l.startswith("serving: ")]
        if served:
            return proc, lines, served[0].split()[1]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("no serving line:\n" + "".join(lines)[-3000:])


def _predict(url: str) -> list[float]:
    body = json.dumps({"instances": [{"instruction": "Give the chemical symbol for gold.", "response": "Au"}]}).encode()
    req = urllib.request.Request(f"{url}/v1/models/cappy-tiny:predict", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["predictions"]


@pytest.mark.slow
def test_glassbox_run_adapts_publishes_and_serves(tmp_path):
    proc, lines, url = _run(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        first = _predict(url)
        assert len(first) == 1 and 0.0 <= first[0] <= 1.0
        # no spec.generator: boosting routes say so, naming the field, and the server goes on
        for route, body in (("/v1/models/cappy-tiny:generate", {"instruction": "q"}),
                            ("/openai/v1/completions", {"model": "cappy-tiny", "prompt": "q"})):
            req = urllib.request.Request(url + route, json.dumps(body).encode(), {"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=60)
            assert err.value.code == 400 and "generator" in err.value.read().decode()
        assert _predict(url) == first
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "".join(lines)[-2000:]
    out = "".join(lines)
    run_line = next(l for l in lines if l.startswith("run:"))
    assert "manifest: " in out and "adapted in 4 steps" in out
    run = LocalStore(run_line.split("file://", 1)[1].strip())
    m = read_manifest(run)
    assert m.state == "completed" and m.latest.step == 4 and m.total_steps == 4
    assert {"rougeL", "rougeL_first", "rougeL_oracle"} <= set(m.latest.evals)
    names = {f.path for f in m.latest.files}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    rec = read_run_record(run)
    pairs = run.get_bytes("data/pairs.jsonl")
    import hashlib

    assert rec.data_manifest_digest == hashlib.sha256(pairs).hexdigest() and len(pairs.splitlines()) == 64
    assert json.loads(run.get_bytes("evals/00000004/results.json"))["step"] == 4
    # the same file again: nothing to adapt, the published checkpoint is served (same scores)
    proc, lines, url = _run(tmp_path)
    try:
        assert _predict(url) == pytest.approx(first, abs=1e-6)
        assert any("already adapted" in l for l in lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
