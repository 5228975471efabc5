"""KGHarvest end to end on a real S3 server: the masked LM read from an s3:// model URI, each
relation published as soon as it is done, a pod killed after its first relation resuming without
redoing it, and `glassbox kg` reading the harvest back over S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from glassbox_api.manifest import read_manifest
from glassbox_api.store import S3Settings, S3Store
from glassbox_workloads.runtime.spec import load_resource
from tests.unit.kgharvest.conftest import tiny_mlm
from tests.unit.kgharvest.test_kg_workload import RELATIONS


def workload(spec: Path, store: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassbox_workloads", "kgharvest", "--spec", str(spec), "--store", store,
                           "--run-id", "kge2e001"], env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_harvest_on_s3_resumes_after_its_first_relation_and_reads_back(s3, tmp_path: Path) -> None:
    from glassbox_workloads.runtime.hfmodels import save

    bucket = f"gb-{uuid.uuid4().hex[:12]}"
    s3.client().make_bucket(bucket)
    settings = S3Settings.from_env(s3.env())
    m = tiny_mlm(7)
    local = save(m.model, m.tokenizer, tmp_path / "mlm")
    models = S3Store(bucket, "models/mlm", settings=settings)
    for f in sorted(local.iterdir()):
        models.put_file(f.name, f)
    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "KGHarvest", "metadata": {"name": "kg-e2e"},
           "spec": {"model": {"uri": f"s3://{bucket}/models/mlm/"}, "relations": RELATIONS,
                    "search": {"maxTuples": 5, "maxSubwords": 1}}}
    spec = tmp_path / "kg.yaml"
    spec.write_text(yaml.safe_dump(doc))
    env = s3.env()
    store = f"s3://{bucket}/glassbox"

    killed = workload(spec, store, {**env, "GLASSBOX_KILL_AT_STEP": "1"})
    assert killed.returncode == 137, killed.stderr[-2000:]
    res = load_resource(spec, "KGHarvest", run_id="kge2e001")
    run = S3Store(bucket, f"glassbox/{res.run_prefix}", settings=settings)
    first = read_manifest(run)
    assert [r["name"] for r in first.model_extra["relations"]] == ["lives_in"] and first.state == "running"

    resumed = workload(spec, store, env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "relation lives_in:" not in resumed.stdout and "relation words:" in resumed.stdout
    final = read_manifest(run)
    assert final.state == "completed" and [r["name"] for r in final.model_extra["relations"]] == ["lives_in", "words"]
    for r in final.model_extra["relations"]:
        for f in r["files"]:
            run.verify(f["path"], f["sha256"], f["size"])

    glassbox = Path(sys.executable).parent / "glassbox"
    out = subprocess.run([str(glassbox), "kg", run.uri(), "--json"], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(rows) == final.final["tuples"] and {r["relation"] for r in rows} == {"lives_in", "words"}
