"""DialogBot's eval-gated promotion on the real control plane, program not run: the operator's own
configuration annotates every workload pod `glassbox.dev/kwok-exit: never`, so KWOK keeps a training
pod Running until the test re-annotates it to exit 0. The test publishes each run's manifest and
test evals (known perplexities) to the real S3 server as the training program would, so every step
happens in an order the test chooses, not one timing gives. A changed spec.training trains a new run
while the InferenceService keeps serving; a worse candidate is refused (the old checkpoint serves on,
Promoted=False CandidateWorse with both numbers), a better one is promoted."""

from __future__ import annotations

import io
import json
from typing import Iterator

import pytest

from conftest import exiting_operator
from glassbox_api.manifest import CheckpointEntry, Manifest, evals_dir
from test_lifecycle import NOW, cond, events, example, patch_status, wait_phase


@pytest.fixture(scope="module")
def held(cluster, s3, tmp_path_factory) -> Iterator[str]:
    """A namespace whose operator keeps every training pod Running until the test lets it exit."""
    with exiting_operator(cluster, s3, tmp_path_factory, "dbp", "never") as (_, ns):
        yield ns


def bot(name: str, ns: str, epochs: int) -> dict:
    d = example("dialogbot-gpu.yaml")
    d["metadata"] = {"name": name, "namespace": ns}
    d["spec"]["model"] = {"uri": "s3://glassbox/models/base"}
    d["spec"]["training"]["epochs"] = epochs
    d["spec"]["training"]["resources"] = {"backend": "job", "cpu": "1", "memory": "1Gi"}
    d["spec"]["serving"]["resources"] = {"backend": "kserve", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    return d


def status(cluster, name, ns) -> dict:
    return (cluster.get("dialogbot", name, ns) or {}).get("status") or {}


def publish(s3, run_uri: str, step: int, perplexity: float) -> str:
    """What the training program publishes at its end: the test evals and the completed manifest
    listing the best checkpoint with them. Returns the checkpoint's URI."""
    bucket, _, key = run_uri.removeprefix("s3://").partition("/")
    evals = {"perplexity": perplexity, "bleu2": 1.0, "devLoss": 3.0}
    m = Manifest(kind="DialogBot", name="x", namespace="x", total_steps=step, state="completed",
                 checkpoints=[CheckpointEntry(step=step, tokens=10 * step, loss=2.0, path=f"checkpoints/{step:08d}",
                                              evals=evals, evals_path=evals_dir(step), resumable=False)])
    client = s3.client()
    for path, doc in ((f"{evals_dir(step)}/test.json", {"step": step, "examples": 1, **evals}), ("manifest.json", m.to_json())):
        body = json.dumps(doc).encode()
        client.put_object(bucket, f"{key}/{path}", io.BytesIO(body), len(body))
    return f"{run_uri}/checkpoints/{step:08d}"


def new_run(cluster, name, ns, not_this: str | None = None) -> str:
    """The run the operator names for the spec as it is now (status.artifacts.runUri)."""
    def run():
        uri = status(cluster, name, ns).get("artifacts", {}).get("runUri")
        return uri if uri and uri != not_this else None
    return cluster.wait_for(run, timeout=60, what=f"a run for {name}'s training spec")


def finish_training(cluster, name, ns, run_uri: str) -> str:
    """Let the training Job of run_uri's run exit 0 (its pod held Running so far); returns the Job's name."""
    run8 = run_uri.rsplit("-", 1)[1]
    job = f"{name}-train-{run8}-a0"
    pods = cluster.wait_for(lambda: [p for p in cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job}")["items"]
                                     if p.get("status", {}).get("phase") == "Running"], timeout=90, what=f"{job}'s pod Running")
    for p in pods:
        cluster.kubectl("annotate", "pod", p["metadata"]["name"], "-n", ns, "glassbox.dev/kwok-exit=0", "--overwrite")
    return job


def storage_uri(cluster, name, ns) -> str | None:
    isvc = cluster.get("inferenceservice", name, ns)
    env = isvc["spec"]["predictor"]["containers"][0].get("env", []) if isvc else []
    return next((e.get("value") for e in env if e["name"] == "STORAGE_URI"), None)


def serving_first_model(cluster, s3, name, ns, perplexity: float) -> tuple[str, str]:
    """Train (held, then released), publish and serve the first model; (its checkpoint, the isvc uid)."""
    cluster.apply(bot(name, ns, epochs=5))
    run = new_run(cluster, name, ns)
    first = publish(s3, run, 6, perplexity)
    finish_training(cluster, name, ns, run)
    cluster.wait_for(lambda: storage_uri(cluster, name, ns) == first, timeout=90, what="the service on the first model")
    patch_status(cluster, "inferenceservice", name, ns, {"url": f"http://{name}.{ns}.example.com",
                                                         "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}]})
    wait_phase(cluster, "dialogbot", name, ns, "Ready")
    assert status(cluster, name, ns)["progress"]["servingCheckpoint"] == first
    return first, cluster.get("inferenceservice", name, ns)["metadata"]["uid"]


def retrain(cluster, name, ns, epochs: int, first: str, isvc_uid: str) -> str:
    """Change spec.training: a new run trains (held Running) while the old checkpoint keeps serving."""
    old_run = status(cluster, name, ns)["artifacts"]["runUri"]
    cluster.kubectl("patch", "dialogbot", name, "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"training": {"epochs": epochs}}}))
    run = new_run(cluster, name, ns, not_this=old_run)
    job = f"{name}-train-{run.rsplit('-', 1)[1]}-a0"
    cluster.wait_for(lambda: cluster.get("job", job, ns), timeout=60, what="the new training Job")
    wait_phase(cluster, "dialogbot", name, ns, "Running", timeout=90)
    st = status(cluster, name, ns)
    assert cond(cluster.get("dialogbot", name, ns), "Trained")["reason"] == "Retraining"
    assert st["progress"]["servingCheckpoint"] == first and st["endpoint"] == f"http://{name}.{ns}.example.com"
    isvc = cluster.get("inferenceservice", name, ns)
    assert isvc["metadata"]["uid"] == isvc_uid and storage_uri(cluster, name, ns) == first
    return run


def test_worse_retrained_model_is_refused_and_the_old_checkpoint_keeps_serving(cluster, s3, held):
    ns, name = held, "worse"
    first, isvc_uid = serving_first_model(cluster, s3, name, ns, perplexity=40.0)
    run = retrain(cluster, name, ns, 7, first, isvc_uid)
    candidate = publish(s3, run, 8, 45.5)
    finish_training(cluster, name, ns, run)
    decided = cluster.wait_for(lambda: cond(cluster.get("dialogbot", name, ns), "Promoted"), timeout=90, what="a promotion decision")
    assert decided["status"] == "False" and decided["reason"] == "CandidateWorse", decided
    assert "45.5" in decided["message"] and "40" in decided["message"] and first in decided["message"]
    wait_phase(cluster, "dialogbot", name, ns, "Ready", timeout=90)
    st = status(cluster, name, ns)
    assert st["progress"]["servingCheckpoint"] == first and st["progress"]["candidateCheckpoint"] == candidate
    isvc = cluster.get("inferenceservice", name, ns)
    assert isvc["metadata"]["uid"] == isvc_uid and storage_uri(cluster, name, ns) == first
    assert ("Warning", "CandidateWorse") in events(cluster, ns, name)
    wide = cluster.kubectl("get", "dbot", name, "-n", ns, "-o", "wide").stdout
    assert first in wide and candidate in wide


def test_better_retrained_model_is_promoted_and_served(cluster, s3, held):
    ns, name = held, "better"
    first, isvc_uid = serving_first_model(cluster, s3, name, ns, perplexity=40.0)
    run = retrain(cluster, name, ns, 7, first, isvc_uid)
    candidate = publish(s3, run, 8, 38.25)
    job = finish_training(cluster, name, ns, run)
    cluster.wait_for(lambda: storage_uri(cluster, name, ns) == candidate, timeout=90, what="the service on the promoted model")
    obj = cluster.get("dialogbot", name, ns)
    promoted = cond(obj, "Promoted")
    assert promoted["status"] == "True" and "38.25" in promoted["message"] and "40" in promoted["message"]
    assert obj["status"]["progress"]["servingCheckpoint"] == candidate
    assert "candidateCheckpoint" not in obj["status"]["progress"]
    assert ("Normal", "Promoted") in events(cluster, ns, name)
    cluster.wait_for(lambda: cluster.get("job", job, ns) is None, timeout=60, what="the finished training Job removed")
