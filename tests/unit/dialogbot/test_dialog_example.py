"""`glassbox run examples/dialogbot-tiny.yaml --port 0`: the run contract of DESIGN.md section 6 for
a service kind: train, publish (run.json, the split, the best checkpoint, evals/<step>/test.json,
manifest), print `run:`/`manifest:`, then `serving: URL`, answer a chat with the disclaimer, and
exit 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from glassbox_api.kinds.dialogbot import DEFAULT_DISCLAIMER
from glassbox_api.manifest import read_manifest, read_run_record
from glassbox_api.store import LocalStore

ROOT = Path(__file__).resolve().parents[3]
GLASSBOX = ROOT / ".venv" / "bin" / "glassbox"


@pytest.mark.slow
def test_glassbox_run_trains_publishes_and_serves(tmp_path):
    proc = subprocess.Popen([str(GLASSBOX), "run", "examples/dialogbot-tiny.yaml", "--store", str(tmp_path), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not any(l.startswith("serving: ") for l in lines):
        time.sleep(0.2)
    try:
        served = [l for l in lines if l.startswith("serving: ")]
        assert served, "".join(lines)[-3000:]
        url = served[0].split()[1]
        run_uri = next(l.split()[1] for l in lines if l.startswith("run:"))
        assert any(l.startswith("manifest:") for l in lines)
        run = LocalStore(Path(run_uri.removeprefix("file://")))
        m = read_manifest(run)
        assert m.state == "completed" and m.kind == "DialogBot" and read_run_record(run).kind == "DialogBot"
        latest = m.latest
        assert latest is not None and latest.files and latest.evals["perplexity"] >= 1.0
        test = json.loads(run.get_bytes(f"evals/{latest.step:08d}/test.json"))
        assert test["examples"] == 1 and set(test) >= {"perplexity", "bleu2", "bleu4", "nist4", "meteor", "entropy4",
                                                       "dist1", "dist2", "devLoss"}
        assert run.exists("data/split.json")
        body = json.dumps({"messages": [{"role": "user", "content": "I have a fever and a cough."}]}).encode()
        req = urllib.request.Request(f"{url}/openai/v1/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            out = json.loads(r.read())
        assert out["disclaimer"] == DEFAULT_DISCLAIMER
        assert out["choices"][0]["message"]["content"].endswith(DEFAULT_DISCLAIMER)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    assert rc == 0, "".join(lines)[-2000:]
