"""KGHarvest and MetricEval for real: the tiny examples, applied as a user would (backend job, on the
real node's pool), run in real containers of the torch image built from images/ -- as uid 65532
under the restricted profile the operator renders -- to Succeeded, publishing to the real S3 server
on the node's bridge address; their manifests list every file with its sha256, and the results are
the ones `glassbox run` gives on a laptop (the same ranking, the same relation)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from glassbox_api.manifest import read_manifest
from glassbox_api.store import S3Settings, S3Store
from tests.support.node import RealCluster

pytestmark = [pytest.mark.real, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "glassbox"
# The operator's pool for the real node (hack/node/node.env NODE_POOL): CPU only, placed by label.
REAL_POOL = {"resource": "none", "nodeSelector": {"glassbox.dev/pool": "real"}}


@pytest.fixture(scope="module")
def real_ops(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """A namespace (restricted PSS) with the store's Secret, and an operator process watching it whose
    configuration has the real pool and the built images."""
    from tests.cluster.operator.conftest import Operator

    c, s3 = real_cluster.cluster, real_cluster.s3
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        c.apply(f.read_text(), force_conflicts=True)
    ns = f"torch-{uuid.uuid4().hex[:6]}"
    c.kubectl("create", "namespace", ns)
    c.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    c.kubectl("create", "secret", "generic", "glassbox-storage", "-n", ns,
              f"--from-literal=AWS_ACCESS_KEY_ID={s3.access_key}", f"--from-literal=AWS_SECRET_ACCESS_KEY={s3.secret_key}")
    client = s3.client()
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    images = {n: real_cluster.image(n) for n in ("torch", "jax", "serving")}
    op = Operator(c, s3, tmp_path_factory.mktemp("real-operator"), scope=["--namespace", ns], defaults={"images": images})
    config = yaml.safe_load(op.config.read_text())
    config["nodePools"]["real"] = REAL_POOL
    op.config.write_text(yaml.safe_dump(config))
    op.start()
    yield op, ns
    op.kill()
    c.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def upload(real: RealCluster, local: Path, key: str) -> str:
    """A file of examples/ put on the S3 server: a pod has no checkout of the repository."""
    data = local.read_bytes()
    real.s3.client().put_object(BUCKET, key, io.BytesIO(data), len(data))
    return f"s3://{BUCKET}/{key}"


def on_real_pool(doc: dict[str, Any], ns: str, name: str) -> dict[str, Any]:
    doc["metadata"] = {"name": name, "namespace": ns}
    doc["spec"]["resources"] = {"backend": "job", "accelerator": "real", "cpu": "1", "memory": "4Gi"}
    return doc


def run_to_succeeded(real: RealCluster, op: Any, ns: str, kind: str, doc: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Apply the resource and wait until it has ended; it must have Succeeded (else the pods' logs)."""
    c, name = real.cluster, doc["metadata"]["name"]
    c.apply(doc, namespace=ns)

    def ended() -> str | None:
        phase = ((c.get(kind, name, ns) or {}).get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    try:
        phase = c.wait_for(ended, timeout=timeout, interval=2, what=f"{kind}/{name} to end")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{diagnostics(real, op, ns)}") from None
    obj = c.get(kind, name, ns)
    assert phase == "Succeeded", f"{kind}/{name}: {obj['status'].get('message')}\n{diagnostics(real, op, ns)}"
    return obj


def diagnostics(real: RealCluster, op: Any, ns: str) -> str:
    c = real.cluster
    pods = c.kubectl("get", "pods", "-n", ns, "-o", "wide", check=False).stdout
    logs = c.kubectl("logs", "-n", ns, "-l", "app.kubernetes.io/managed-by=glassbox", "--tail=40", "--all-containers",
                     "--prefix", check=False).stdout
    events = c.kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp", check=False).stdout[-3000:]
    return f"pods:\n{pods}\nlogs:\n{logs[-6000:]}\nevents:\n{events}\noperator:\n{op.log_tail()}"


def run_store(real: RealCluster, run_uri: str) -> S3Store:
    bucket, _, prefix = run_uri.removeprefix("s3://").partition("/")
    return S3Store(bucket, prefix, settings=S3Settings.from_env(real.s3.env()))


def job_pods(real: RealCluster, ns: str, owner: str) -> list[dict[str, Any]]:
    items = real.cluster.kubectl_json("get", "pods", "-n", ns)["items"]
    return [p for p in items if p["metadata"].get("labels", {}).get("job-name", "").startswith(owner)]


def assert_ran_on_the_real_node_as_65532(real: RealCluster, ns: str, name: str) -> None:
    pods = job_pods(real, ns, name)
    assert pods, f"no Job pod of {name} in {ns}"
    for p in pods:
        assert p["spec"]["nodeName"] == real.node_name
        assert p["spec"]["securityContext"]["runAsUser"] == 65532
        assert p["spec"]["containers"][0]["image"] == real.image("torch")


def test_kgharvest_tiny_example_runs_in_a_real_container_to_succeeded(real_cluster: RealCluster, real_ops) -> None:
    op, ns = real_ops
    doc = yaml.safe_load((ROOT / "examples/kgharvest-tiny.yaml").read_text())
    doc["spec"]["pretrain"]["corpus"]["uri"] = upload(real_cluster, ROOT / "examples/data/capitals.txt",
                                                      f"data/{ns}/capitals.txt")
    on_real_pool(doc, ns, "capitals")
    obj = run_to_succeeded(real_cluster, op, ns, "kgharvest", doc, timeout=1200)

    assert_ran_on_the_real_node_as_65532(real_cluster, ns, "capitals")
    run = run_store(real_cluster, obj["status"]["artifacts"]["runUri"])
    m = read_manifest(run)
    assert m is not None and m.state == "completed"
    relations = m.model_extra["relations"]
    assert [r["name"] for r in relations] == ["capital_of"]
    for f in relations[0]["files"]:
        run.verify(f["path"], f["sha256"], f["size"])
    tuples = [json.loads(x) for x in run.get_bytes("relations/capital_of/tuples.jsonl").decode().splitlines()]
    assert tuples and m.final["tuples"] >= len(tuples)


def test_metriceval_tiny_example_runs_in_a_real_container_to_succeeded(real_cluster: RealCluster, real_ops) -> None:
    op, ns = real_ops
    doc = yaml.safe_load((ROOT / "examples/metriceval-tiny.yaml").read_text())
    doc["spec"]["data"]["uri"] = upload(real_cluster, ROOT / "examples/data/summaries-judged.jsonl",
                                        f"data/{ns}/summaries-judged.jsonl")
    on_real_pool(doc, ns, "summaries")
    obj = run_to_succeeded(real_cluster, op, ns, "metriceval", doc, timeout=900)

    assert_ran_on_the_real_node_as_65532(real_cluster, ns, "summaries")
    run = run_store(real_cluster, obj["status"]["artifacts"]["runUri"])
    m = read_manifest(run)
    assert m is not None and m.state == "completed" and m.final["examplesScored"] == m.final["examplesTotal"] == 6
    for name in ("scores", "summary"):
        e = m.final["outputs"][name]
        run.verify(e["path"], e["sha256"], e["size"])
    by = {r["id"]: r for r in (json.loads(x) for x in run.get_bytes("scores.jsonl").decode().splitlines())}
    # The real MiniLM weights from the image: faithful summaries above their unfaithful twins.
    assert by["s1"]["consistency"] > by["s1-wrong"]["consistency"]
    assert by["s3"]["consistency"] > by["s3-wrong"]["consistency"]
