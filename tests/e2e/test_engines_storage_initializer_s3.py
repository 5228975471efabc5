"""The storage initializer hack/engines.sh gives KServe (ClusterStorageContainer glassbox-s3: no
registry serves kserve/storage-initializer here) against a real S3 server: KServe's contract --
args SOURCE_URI DEST_DIR, credentials and endpoint in the environment KServe's pod webhook sets --
downloads every object under the prefix (nested paths kept, a sibling prefix left alone), and a
prefix with nothing under it fails instead of serving an empty model directory."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def downloader() -> str:
    out = subprocess.run([str(ROOT / "hack" / "engines.sh"), "storage-container", "img:1"],
                         capture_output=True, text=True, check=True).stdout
    command = yaml.safe_load(out)["spec"]["container"]["command"]
    assert command[:2] == ["python", "-c"]
    return command[2]


def run(s3, src: str, dest: Path) -> subprocess.CompletedProcess[str]:
    # The variables KServe's pod webhook sets from the ConfigMap's s3Endpoint and the Secret.
    env = {**os.environ, "AWS_ENDPOINT_URL": s3.endpoint, "S3_ENDPOINT": s3.host, "S3_USE_HTTPS": "0",
           "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    return subprocess.run([sys.executable, "-c", downloader(), src, str(dest)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_downloads_every_object_under_the_prefix_and_nothing_beside_it(s3, tmp_path):
    bucket = f"gb-{uuid.uuid4().hex[:12]}"
    client = s3.client()
    client.make_bucket(bucket)
    files = {"run/ckpt/config.json": b"{}", "run/ckpt/model.safetensors": b"w" * 1000,
             "run/ckpt/tok/vocab.json": b'{"a": 1}', "run/ckpt2/other.bin": b"no"}
    for key, data in files.items():
        client.put_object(bucket, key, io.BytesIO(data), len(data))
    proc = run(s3, f"s3://{bucket}/run/ckpt", tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert got == {"config.json": b"{}", "model.safetensors": b"w" * 1000, "tok/vocab.json": b'{"a": 1}'}
    assert "3 objects" in proc.stdout


def test_an_empty_prefix_fails(s3, tmp_path):
    bucket = f"gb-{uuid.uuid4().hex[:12]}"
    s3.client().make_bucket(bucket)
    proc = run(s3, f"s3://{bucket}/nothing/here", tmp_path)
    assert proc.returncode == 1 and "0 objects" in proc.stdout
