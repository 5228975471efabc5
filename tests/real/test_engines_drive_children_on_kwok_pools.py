"""The engines for real, on the KWOK pools: the glassbox operator (a process, as in
tests/cluster/operator) creates its children and the REAL controllers turn them into workloads --
the JobSet controller makes Jobs and pods and writes the JobSet's status, KubeRay's operator makes
the RayCluster and its head and worker pods, KServe's controller (RawDeployment) makes the
Deployment and Service -- with no child status patched by hand. KWOK's stages run the pods (Job
pods complete, others run and are Ready), so these tests prove the wiring between the operator and
the engines, not the programs in the pods (tests/real's real-node tests do that)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.support import cluster as cluster_support

ROOT = Path(__file__).resolve().parents[2]

# Field managers that write child statuses: a status written by anything else (kubectl patch in a
# test) would make these tests prove nothing.
JOBSET_MANAGERS = ("jobset",)
KUBERAY_MANAGERS = ("kuberay-operator",)
KSERVE_MANAGERS = ("kserve-manager",)


@dataclass
class Engines:
    """The cluster whose engines run, and the S3 server its operator publishes to."""

    cluster: cluster_support.Cluster
    s3: Any


@pytest.fixture(scope="module")
def engines_env(request: pytest.FixtureRequest) -> Engines:
    """tests/real's real_cluster (KWOK pools beside the real node, engines on, S3 on the bridge), or,
    with GLASSBOX_TEST_USE_EXISTING_CLUSTER=1, the cluster in KUBECONFIG (it must run the engines:
    GLASSBOX_ENGINES=1 hack/cluster.sh up) and the S3 server of the `s3` fixture."""
    if cluster_support.use_existing():
        return Engines(cluster_support.existing_cluster(), request.getfixturevalue("s3"))
    real = request.getfixturevalue("real_cluster")
    return Engines(real.cluster, real.s3)


@pytest.fixture(scope="module")
def engines(engines_env: Engines) -> cluster_support.Cluster:
    return engines_env.cluster


@pytest.fixture(scope="module")
def ns(engines: cluster_support.Cluster) -> Iterator[str]:
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        engines.apply(f.read_text(), force_conflicts=True)
    name = f"eng-{uuid.uuid4().hex[:6]}"
    engines.kubectl("create", "namespace", name)
    # The store credentials every workload namespace holds (the chart's storage.credentialsSecret):
    # KServe's pod webhook refuses a predictor pod whose service account names a missing Secret.
    engines.kubectl("create", "secret", "generic", "glassbox-storage", "-n", name,
                    "--from-literal=AWS_ACCESS_KEY_ID=glassbox-test", "--from-literal=AWS_SECRET_ACCESS_KEY=glassbox-test-secret")
    yield name
    engines.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(engines_env: Engines, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.cluster.operator.conftest import Operator

    engines, s3 = engines_env.cluster, engines_env.s3
    client = s3.client()
    if not client.bucket_exists("glassbox"):
        client.make_bucket("glassbox")
    op = Operator(engines, s3, tmp_path_factory.mktemp("engines-operator"), scope=["--namespace", ns])
    op.start()
    yield op
    # The resources go while the operator runs (it removes its finalizer); in a terminating
    # namespace it keeps failing to recreate children and the namespace hangs on the finalizer.
    engines.kubectl("delete", "shardedfinetunes,pretrainruns,scorerservices", "--all", "-n", ns,
                    "--timeout=60s", check=False, timeout=90)
    op.kill()


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "examples" / name).read_text())


def phase(cluster: cluster_support.Cluster, kind: str, name: str, ns: str) -> str | None:
    return ((cluster.get(kind, name, ns) or {}).get("status") or {}).get("phase")


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def status_writers(cluster: cluster_support.Cluster, kind: str, name: str, ns: str) -> set[str]:
    """The field managers that wrote the object's status subresource."""
    obj = cluster.kubectl_json("get", kind, name, "-n", ns, "--show-managed-fields")
    return {m["manager"] for m in obj["metadata"].get("managedFields") or [] if m.get("subresource") == "status"}


def owned_by(items: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return [o for o in items if any(r["kind"] == kind and r["name"] == name for r in o["metadata"].get("ownerReferences") or [])]


def pods(cluster: cluster_support.Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    return cluster.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]


def test_jobset_controller_runs_the_shardedfinetune_jobset_to_succeeded(engines, operator, ns):
    """ShardedFinetune on the jobset backend (h100 pool, 2 workers): the JobSet controller makes an
    Indexed Job with 2 pods, KWOK completes them, the controller writes Completed, the operator
    reports Succeeded from it."""
    d = example("finetune-tpu.yaml")
    d["metadata"] = {"name": "ft", "namespace": ns}
    d["spec"]["model"] = {"uri": "s3://glassbox/models/base"}
    d["spec"]["resources"] = {"backend": "jobset", "workers": 2, "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    d["spec"]["failurePolicy"] = {"maxRetries": 0}
    engines.apply(d)
    engines.wait_for(lambda: phase(engines, "shardedfinetune", "ft", ns) == "Succeeded", timeout=180,
                     what="ShardedFinetune ft Succeeded")
    js = engines.get("jobset", "ft-a0", ns)
    assert condition(js, "Completed").get("status") == "True"
    writers = status_writers(engines, "jobset", "ft-a0", ns)
    assert writers and writers <= set(JOBSET_MANAGERS), writers
    jobs = owned_by(engines.kubectl_json("get", "jobs", "-n", ns)["items"], "JobSet", "ft-a0")
    assert [j["metadata"]["name"] for j in jobs] == ["ft-a0-workers-0"]
    assert jobs[0]["status"].get("succeeded") == 2
    ps = pods(engines, ns, "jobset.sigs.k8s.io/jobset-name=ft-a0")
    assert len(ps) == 2 and all(p["status"]["phase"] == "Succeeded" for p in ps)
    assert all(p["spec"]["nodeName"].startswith("h100") for p in ps)
    obj = engines.get("shardedfinetune", "ft", ns)
    assert condition(obj, "Succeeded").get("status") == "True"


def test_jobset_webhook_served_by_the_host_process_refuses_an_invalid_jobset(engines, ns):
    """The validating webhook answers from the controller process (url: clientConfig, our CA): a
    JobSet whose success policy names a replicated job it does not have is refused by JobSet's own
    validation, which no CRD schema carries."""
    bad = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "bad", "namespace": ns},
        "spec": {
            "successPolicy": {"operator": "All", "targetReplicatedJobs": ["nope"]},
            "replicatedJobs": [{"name": "w", "replicas": 1, "template": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}}],
        },
    }
    proc = engines.apply(bad, check=False)
    assert proc.returncode != 0
    assert "vjobset.kb.io" in proc.stderr and "nope" in proc.stderr, proc.stderr


def test_kuberay_operator_turns_the_pretrainrun_rayjob_into_a_raycluster_with_head_and_workers(engines, operator, ns):
    """PretrainRun on backend ray (2 h100 workers): KubeRay's operator writes the RayJob's status and
    creates its RayCluster, whose head pod lands on the cpu pool and 2 worker pods on h100."""
    d = example("pretrain-gpu.yaml")
    d["metadata"] = {"name": "pr", "namespace": ns}
    d["spec"]["resources"] = {"backend": "ray", "workers": 2, "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    engines.apply(d)
    rc = engines.wait_for(
        lambda: owned_by(engines.kubectl_json("get", "rayclusters", "-n", ns)["items"], "RayJob", "pr-a0"),
        timeout=120, what="RayCluster of RayJob pr-a0")[0]
    name = rc["metadata"]["name"]

    def running_pods():
        ps = pods(engines, ns, f"ray.io/cluster={name}")
        ready = [p for p in ps if p["status"].get("phase") == "Running"]
        return ps if len(ready) == 3 else None

    ps = engines.wait_for(running_pods, timeout=120, what=f"head and 2 workers of {name} Running")
    by_type = {}
    for p in ps:
        by_type.setdefault(p["metadata"]["labels"]["ray.io/node-type"], []).append(p["spec"]["nodeName"])
    assert len(by_type["head"]) == 1 and by_type["head"][0].startswith("cpu")
    assert len(by_type["worker"]) == 2 and all(n.startswith("h100") for n in by_type["worker"])
    rj = engines.get("rayjob", "pr-a0", ns)
    assert rj["status"].get("jobDeploymentStatus"), rj["status"]
    writers = status_writers(engines, "rayjob", "pr-a0", ns)
    assert writers and writers <= set(KUBERAY_MANAGERS), writers
    # On KWOK no Ray runs, so KubeRay cannot reach the dashboard and fails the job: stop the retries.
    engines.delete("pretrainrun", "pr", namespace=ns, wait=True)


def test_kserve_controller_turns_the_scorerservice_isvc_into_a_ready_deployment_and_service(engines, operator, ns):
    """ScorerService (serving only, 2 replicas on h100): KServe's controller (RawDeployment) makes
    the predictor Deployment and Service, its pod webhook injects the storage initializer for the
    model URI, KWOK readies the pods, KServe reports the InferenceService Ready with its URL, and the
    operator reports the ScorerService Ready with that endpoint."""
    d = example("scorer-gpu.yaml")
    d["metadata"] = {"name": "sc", "namespace": ns}
    d["spec"]["replicas"] = 2
    d["spec"]["resources"] = {"backend": "kserve", "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    engines.apply(d)
    engines.wait_for(lambda: phase(engines, "scorerservice", "sc", ns) == "Ready", timeout=180,
                     what="ScorerService sc Ready")
    isvc = engines.get("inferenceservice", "sc", ns)
    assert condition(isvc, "Ready").get("status") == "True"
    writers = status_writers(engines, "inferenceservice", "sc", ns)
    assert writers and writers <= set(KSERVE_MANAGERS), writers
    # KServe creates the Deployment with one replica; its HPA scales it to minReplicas.
    dep = engines.wait_for(lambda: (d := engines.get("deployment", "sc-predictor", ns)) and
                           d["status"].get("readyReplicas") == 2 and d, timeout=120, what="2 ready predictor replicas")
    assert owned_by([dep], "InferenceService", "sc")
    svc = engines.get("service", "sc-predictor", ns)
    assert owned_by([svc], "InferenceService", "sc")
    ps = pods(engines, ns, "serving.kserve.io/inferenceservice=sc")
    assert len(ps) == 2 and all(p["spec"]["nodeName"].startswith("h100") for p in ps)
    # KServe's pod webhook: the storage initializer fetches the model URI with the Secret's keys.
    for p in ps:
        (init,) = [c for c in p["spec"].get("initContainers") or [] if c["name"] == "storage-initializer"]
        assert init["args"] == [d["spec"]["model"]["uri"], "/mnt/models"]
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= {e["name"] for e in init.get("env") or []}
    # No ingress: the URL is the predictor Service's cluster DNS name (hack/engines.sh's domain).
    assert isvc["status"]["url"] == f"http://sc-predictor.{ns}.svc.cluster.local"
    obj = engines.get("scorerservice", "sc", ns)
    assert obj["status"]["endpoint"] == isvc["status"]["url"]
