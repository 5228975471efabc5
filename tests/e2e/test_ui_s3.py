"""`glassbox ui --store s3://...` over the real S3 server: runs published to a bucket are listed,
drawn and paged through the minio SDK; a listed file gone and a bucket that does not exist are
messages, not stack traces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from glassbox_api.store import S3Settings, S3Store
from tests.unit.ui.conftest import harvest_run, pretrain_run


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def serve_ui(store: str, env: dict[str, str]) -> Iterator[str]:
    exe = Path(sys.executable).with_name("glassbox")
    proc = subprocess.Popen([str(exe), "ui", "--store", store, "--port", "0"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **env, "GLASSBOX_S3_RETRY_DEADLINE": "2"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("glassbox ui: http://127.0.0.1:"), line
        yield line.split()[2]
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture
def bucket(s3) -> str:
    name = f"gb-ui-{uuid.uuid4().hex[:10]}"
    s3.client().make_bucket(name)
    return name


def test_ui_reads_runs_from_a_bucket(s3, bucket) -> None:
    root = S3Store(bucket, "glassbox", settings=S3Settings.from_env(s3.env()))
    pretrain, _, _ = pretrain_run(root)
    harvest, run = harvest_run(root, tuples_per_relation=2000)
    for url in serve_ui(f"s3://{bucket}/glassbox", s3.env()):
        code, runs = get(f"{url}/api/runs")
        assert code == 200 and runs["store"] == f"s3://{bucket}/glassbox"
        assert {r["id"]: r["progress"]["label"] for r in runs["runs"]} == {pretrain: "30/30 steps", harvest: "2/2 relations"}
        code, charts = get(f"{url}/api/runs/{pretrain}/charts")
        loss = next(c for c in charts["charts"] if c["id"] == "loss")
        assert [len(s["points"]) for s in loss["series"]] == [30, 3]
        run.delete("relations/born_in/tuples.jsonl")  # before any read: a file read once is cached by its digest
        code, page = get(f"{url}/api/runs/{harvest}/table/tuples?relation=capital_of&offset=1000&limit=1000&sort=score")
        assert code == 200 and page["total"] == 2000 and len(page["rows"]) == 1000
        code, err = get(f"{url}/api/runs/{harvest}/table/tuples?relation=born_in")
        assert code == 404 and "the manifest lists relations/born_in/tuples.jsonl, but the store has no" in err["error"]


def test_ui_over_a_bucket_that_does_not_exist_says_so(s3) -> None:
    for url in serve_ui(f"s3://gb-ui-missing-{uuid.uuid4().hex[:8]}/x", s3.env()):
        code, err = get(f"{url}/api/runs")
        assert code == 502 and err["error"].startswith("cannot list the store s3://gb-ui-missing-")
        assert "Traceback" not in json.dumps(err)
