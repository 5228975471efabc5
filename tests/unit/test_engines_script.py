"""hack/engines.sh without a cluster: its usage, its refusal to start against a cluster that is not
there, an idempotent down, and the webhook configurations it registers (url: to the host process
on loopback, the CA of the certificate it made, pod webhooks limited to the engines' own pods so
no other pod ever waits on them)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "engines.sh"


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "GLASSBOX_CLUSTER_DIR": str(tmp_path), "GLASSBOX_CLUSTER_NAME": "absent", **env}
    return subprocess.run([str(SCRIPT), *args], env=full, capture_output=True, text=True, timeout=60)


def test_unknown_command_prints_usage_and_exits_2(tmp_path):
    proc = run(tmp_path, "sideways")
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_up_refuses_a_cluster_that_is_not_running_and_names_the_fix(tmp_path):
    proc = run(tmp_path, "up")
    assert proc.returncode == 1
    assert "cluster absent is not running" in proc.stderr and "hack/cluster.sh up" in proc.stderr
    assert not (tmp_path / "engines").exists()


def test_down_with_nothing_running_succeeds_and_leaves_no_state(tmp_path):
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "jobset-controller.pid").write_text("999999999\n")
    proc = run(tmp_path, "down")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "engines").exists()


def _webhooks(tmp_path: Path, **env: str) -> list[dict]:
    proc = run(tmp_path, "webhooks", **env)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_webhooks_call_the_host_processes_on_loopback_with_the_ca_of_their_certificate(tmp_path):
    docs = _webhooks(tmp_path)
    ca = (tmp_path / "engines" / "certs" / "ca.crt").read_bytes()
    hooks = [h for d in docs for h in d["webhooks"]]
    assert {h["name"] for h in hooks} >= {"mjobset.kb.io", "vjobset.kb.io", "mpod.kb.io", "vpod.kb.io",
                                           "inferenceservice.kserve-webhook-server.pod-mutator",
                                           "inferenceservice.kserve-webhook-server.defaulter",
                                           "inferenceservice.kserve-webhook-server.validator"}
    for h in hooks:
        assert h["clientConfig"]["url"].startswith("https://127.0.0.1:"), h
        assert base64.b64decode(h["clientConfig"]["caBundle"]) == ca
        assert h["failurePolicy"] == "Fail" and h["sideEffects"] == "None"
    # The serving certificate is for 127.0.0.1 and signed by that CA.
    certs = tmp_path / "engines" / "certs"
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(certs / "ca.crt"), str(certs / "tls.crt")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(certs / "tls.crt")],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text


def test_pod_webhooks_select_only_jobset_and_inferenceservice_pods(tmp_path):
    hooks = {h["name"]: h for d in _webhooks(tmp_path) for h in d["webhooks"]}
    pod_hooks = {n: h for n, h in hooks.items() if h["rules"][0]["resources"] == ["pods"]}
    keys = {n: [e["key"] for e in h["objectSelector"]["matchExpressions"]] for n, h in pod_hooks.items()}
    assert keys == {
        "mpod.kb.io": ["jobset.sigs.k8s.io/jobset-name"],
        "vpod.kb.io": ["jobset.sigs.k8s.io/jobset-name"],
        "inferenceservice.kserve-webhook-server.pod-mutator": ["serving.kserve.io/inferenceservice"],
    }


def test_without_kserve_no_kserve_webhook_is_registered(tmp_path):
    docs = _webhooks(tmp_path, GLASSBOX_ENGINES_KSERVE="0")
    assert {d["metadata"]["name"] for d in docs} == {"glassbox-engines-jobset"}
