"""DialogBot end to end on a real S3 server: the operator renders the training Job for the tiny
example (consultations read from the bucket), the real program runs as that Job's container would
(its environment, its mounted spec, `--stage train`) and publishes the split, the best checkpoint,
its test evals and the manifest to the run folder the operator names; all is read back over S3
with sha256 checks. Then a changed spec.training trains into a run of its own, the first run stays
as it was, and the operator's promotion decision on the two real manifests follows their test
perplexities."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from glassbox_api.manifest import Manifest, read_manifest, read_run_record
from glassbox_api.resource import parse_resource
from glassbox_api.store import S3Settings, S3Store
from glassbox_operator.config import default_config
from glassbox_operator.context import STAGE_SERVE, STAGE_TRAIN, Context, Plan
from glassbox_operator.kinds.base import Rival
from glassbox_operator.kinds.dialogbot import HOME, promotion
from glassbox_operator.render import render
from glassbox_operator.render.common import artifacts

ROOT = Path(__file__).resolve().parents[2]
UID = "5e2e0000-d1a1-4b07-8000-000000000014"
METRICS = {"perplexity", "bleu2", "bleu4", "nist4", "meteor", "entropy4", "dist1", "dist2", "devLoss"}


def bot(data_uri: str, epochs: int) -> dict:
    d = yaml.safe_load((ROOT / "examples" / "dialogbot-tiny.yaml").read_text())
    d["metadata"] = {"name": "covid-e2e", "namespace": "e2e", "uid": UID, "generation": 1}
    d["spec"]["training"].update(data={"uri": data_uri, "format": "jsonl"}, epochs=epochs,
                                 resources={"backend": "job", "cpu": "1", "memory": "1Gi"})
    d["spec"]["serving"]["resources"] = {"backend": "kserve", "cpu": "1", "memory": "1Gi"}
    return d


def train_as_the_job_would(doc: dict, config, s3, tmp_path: Path) -> tuple[str, subprocess.CompletedProcess]:
    """Render the training stage, then run its container's command with its environment and the
    spec it mounts; returns the run URI status.artifacts would name, and the finished process."""
    ctx = Context(resource=parse_resource(doc), config=config, plan=Plan(stage=STAGE_TRAIN))
    children = render(ctx)
    cm, job = children[0], children[-1]
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("covid-e2e-train-")
    c = job["spec"]["template"]["spec"]["containers"][0]
    spec = tmp_path / f"{job['metadata']['name']}.json"
    spec.write_text(next(iter(cm["data"].values())))
    cmd = [sys.executable if a == "python" else a for a in c["command"]]
    cmd[cmd.index("--spec") + 1] = str(spec)
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}  # credentials: from s3.env() (a Secret there)
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", **s3.env(), **env},
                          capture_output=True, text=True, timeout=900)
    return artifacts(ctx)["runUri"], proc


def read_back(run_uri: str, settings: S3Settings) -> tuple[Manifest, dict]:
    """The run's manifest and its best checkpoint's test.json, every listed file fetched with its sha256."""
    bucket, _, prefix = run_uri.removeprefix("s3://").partition("/")
    run = S3Store(bucket, prefix, settings=settings)
    m = read_manifest(run)
    assert m is not None and m.state == "completed" and m.kind == "DialogBot"
    latest = m.latest
    assert latest is not None and latest.files
    for f in latest.files:  # listed means uploaded, whole
        assert hashlib.sha256(run.get_bytes(f"{latest.path}/{f.path}")).hexdigest() == f.sha256, f.path
    assert read_run_record(run).kind == "DialogBot" and run.exists("data/split.json")
    test = json.loads(run.get_bytes(f"{latest.evals_path or f'evals/{latest.step:08d}'}/test.json"))
    return m, test


@pytest.mark.slow
def test_tiny_dialogbot_trains_from_s3_publishes_there_and_a_changed_spec_gets_its_own_run(s3, tmp_path: Path) -> None:
    bucket = f"gb-{uuid.uuid4().hex[:12]}"
    s3.client().make_bucket(bucket)
    settings = S3Settings.from_env(s3.env())
    S3Store(bucket, "data", settings=settings).put_file("consultations.jsonl", ROOT / "examples/data/consultations.jsonl")
    cfg = default_config()
    config = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"endpoint": s3.host, "secure": s3.secure,
                                                                              "bucket": bucket, "prefix": "runs"})})
    data = f"s3://{bucket}/data/consultations.jsonl"

    first_uri, proc = train_as_the_job_would(bot(data, 1), config, s3, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert first_uri in proc.stdout and first_uri.startswith(f"s3://{bucket}/runs/e2e/dialogbot/covid-e2e-")
    first, test = read_back(first_uri, settings)
    assert set(test) >= METRICS and test["perplexity"] >= 1.0
    assert {k: first.latest.evals[k] for k in METRICS} == {k: test[k] for k in METRICS}
    first_json = S3Store(bucket, first_uri.split(f"{bucket}/", 1)[1], settings=settings).get_bytes("manifest.json")

    second_uri, proc = train_as_the_job_would(bot(data, 2), config, s3, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert second_uri != first_uri and second_uri.rsplit("-", 1)[0] == first_uri.rsplit("-", 1)[0]
    second, _ = read_back(second_uri, settings)
    assert S3Store(bucket, first_uri.split(f"{bucket}/", 1)[1], settings=settings).get_bytes("manifest.json") == first_json

    # The operator's decision on the two real runs: serving the first, the second completed.
    res = parse_resource(bot(data, 2))
    served = f"{first_uri}/{first.latest.path}"
    old = {"progress": {"servingCheckpoint": served}, "artifacts": {"runUri": second_uri}}
    rival = Rival(first_uri, first)
    assert HOME.rival_run(res, old, second, second_uri) == first_uri
    choice = HOME.choose(res, STAGE_SERVE, old, second, second_uri, rival)
    expect = promotion("perplexity", "lower", first.latest.evals, second.latest.evals)
    assert choice.verdict is not None and choice.verdict.promoted is expect.promote
    assert choice.checkpoint == (f"{second_uri}/{second.latest.path}" if expect.promote else served)
    assert f"{second.latest.evals['perplexity']:.4g}" in choice.verdict.message
    assert f"{first.latest.evals['perplexity']:.4g}" in choice.verdict.message
