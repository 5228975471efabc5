"""The test control plane is real: pinned apiserver, Ready node pools, the real scheduler honouring
extended resources and taints, KWOK lifecycles as hack/cluster/stages.yaml documents them, and the
third-party CRDs validating with their real schemas."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.support import bins
from tests.support.cluster import EXIT_ANNOTATION, EXIT_DELAY_ANNOTATION, Cluster, CommandError, node_pools

IMAGE = "registry.invalid/glassbox/test:0"  # never pulled: KWOK runs no containers
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
TPU_TOLERATION = {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def ns(cluster: Cluster):
    name = f"cp-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    # The ServiceAccount admission plugin refuses pods until the controller made "default".
    cluster.wait_for(lambda: cluster.get("serviceaccount", "default", name), 30, what="default ServiceAccount")
    yield name
    cluster.delete("namespace", name)


def pod_manifest(name: str, *, annotations: dict[str, str] | None = None, limits: dict[str, str] | None = None,
                 tolerations: list[dict[str, str]] | None = None,
                 node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": IMAGE}
    if limits:
        container["resources"] = {"limits": limits}
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if tolerations:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations or {}}, "spec": spec}


def wait_phase(cluster: Cluster, ns: str, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    def reached():
        pod = cluster.get("pod", name, ns)
        return pod if pod and pod["status"].get("phase") == phase else None

    return cluster.wait_for(reached, timeout, what=f"pod {ns}/{name} phase {phase}")


def node_pool(cluster: Cluster, node_name: str) -> str:
    return cluster.get("node", node_name)["metadata"]["labels"]["glassbox.dev/pool"]


def test_apiserver_reports_pinned_version(cluster: Cluster):
    if not cluster.managed:
        pytest.skip("the pinned version applies to the cluster hack/cluster.sh builds, not an existing one")
    version = cluster.kubectl_json("version")["serverVersion"]
    assert version["gitVersion"] == bins.versions()["KUBE_VERSION"]


def test_node_pools_exist_and_are_ready(cluster: Cluster):
    expected = node_pools()
    assert set(expected) == {"cpu", "h100", "tpu-v5e-16"}
    for pool, names in expected.items():
        nodes = cluster.kubectl_json("get", "nodes", "-l", f"glassbox.dev/pool={pool}")["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == sorted(names)
        for node in nodes:
            ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
            assert ready and ready[0]["status"] == "True", (node["metadata"]["name"], ready)
            taints = {t["key"] for t in node["spec"].get("taints") or []}
            assert "kwok.x-k8s.io/node" not in taints
            allocatable = node["status"]["allocatable"]
            if pool == "h100":
                assert allocatable["nvidia.com/gpu"] == "8"
                assert "nvidia.com/gpu" in taints
            elif pool == "tpu-v5e-16":
                assert allocatable["google.com/tpu"] == "4"
                assert node["metadata"]["labels"]["cloud.google.com/gke-tpu-topology"] == "4x4"
                assert "google.com/tpu" in taints
            else:
                assert (allocatable["cpu"], allocatable["memory"]) == ("32", "128Gi")
                assert not taints - {"node.kubernetes.io/not-ready"}


def test_gpu_pod_is_scheduled_on_h100_and_runs(cluster: Cluster, ns: str):
    cluster.apply(pod_manifest("gpu", limits={"nvidia.com/gpu": "8"}, tolerations=[GPU_TOLERATION]), namespace=ns)
    pod = wait_phase(cluster, ns, "gpu", "Running")
    assert node_pool(cluster, pod["spec"]["nodeName"]) == "h100"
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] is True and "running" in status["state"]


def test_gpu_pod_without_toleration_stays_pending(cluster: Cluster, ns: str):
    cluster.apply(pod_manifest("gpu-untolerated", limits={"nvidia.com/gpu": "1"}), namespace=ns)

    def unschedulable():
        pod = cluster.get("pod", "gpu-untolerated", ns)
        conds = {c["type"]: c for c in pod["status"].get("conditions", [])}
        return conds.get("PodScheduled", {}).get("reason") == "Unschedulable" and pod

    pod = cluster.wait_for(unschedulable, 30, what="FailedScheduling of an untolerated GPU pod")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")


def test_tpu_pod_lands_on_the_tpu_slice(cluster: Cluster, ns: str):
    cluster.apply(pod_manifest("tpu", limits={"google.com/tpu": "4"}, tolerations=[TPU_TOLERATION],
                               node_selector={"cloud.google.com/gke-tpu-topology": "4x4"}), namespace=ns)
    pod = wait_phase(cluster, ns, "tpu", "Running")
    assert node_pool(cluster, pod["spec"]["nodeName"]) == "tpu-v5e-16"


def test_plain_pod_lands_on_cpu_and_keeps_running(cluster: Cluster, ns: str):
    cluster.apply(pod_manifest("plain"), namespace=ns)
    pod = wait_phase(cluster, ns, "plain", "Running")
    assert node_pool(cluster, pod["spec"]["nodeName"]) == "cpu"
    time.sleep(2.5)  # longer than the stages' 1 s exit delay: a bare pod never completes by itself
    assert cluster.get("pod", "plain", ns)["status"]["phase"] == "Running"


@pytest.mark.parametrize(("exit_value", "phase", "code"), [("0", "Succeeded", 0), ("1", "Failed", 1),
                                                          ("137", "Failed", 137), ("Failed", "Failed", 1)])
def test_exit_annotation_sets_the_final_phase(cluster: Cluster, ns: str, exit_value: str, phase: str, code: int):
    name = f"exit-{exit_value.lower()}"
    cluster.apply(pod_manifest(name, annotations={EXIT_ANNOTATION: exit_value}), namespace=ns)
    pod = wait_phase(cluster, ns, name, phase)
    (status,) = pod["status"]["containerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == code
    assert status["state"]["terminated"]["reason"] == ("Completed" if code == 0 else "Error")


def test_exit_delay_annotation_keeps_the_pod_running_first(cluster: Cluster, ns: str):
    cluster.apply(pod_manifest("delayed", annotations={EXIT_ANNOTATION: "0", EXIT_DELAY_ANNOTATION: "4s"}),
                  namespace=ns)
    wait_phase(cluster, ns, "delayed", "Running")
    time.sleep(2)
    assert cluster.get("pod", "delayed", ns)["status"]["phase"] == "Running"
    wait_phase(cluster, ns, "delayed", "Succeeded", timeout=30)


def test_deleted_pod_goes_away(cluster: Cluster, ns: str):
    cluster.apply(pod_manifest("doomed"), namespace=ns)
    wait_phase(cluster, ns, "doomed", "Running")
    cluster.delete("pod", "doomed", namespace=ns)
    cluster.wait_for(lambda: cluster.get("pod", "doomed", ns) is None, 30, what="pod deletion")


def job_manifest(name: str, *, annotations: dict[str, str] | None = None, completions: int = 1,
                 backoff_limit: int = 0) -> dict[str, Any]:
    template = pod_manifest("x", annotations=annotations)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": completions, "parallelism": completions, "backoffLimit": backoff_limit,
                     "template": {"metadata": {"annotations": annotations or {}}, "spec": template["spec"]}}}


def job_condition(cluster: Cluster, ns: str, name: str, type_: str):
    def has():
        job = cluster.get("job", name, ns)
        conds = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions", [])}
        return job if conds.get(type_) == "True" else None

    return has


def test_batch_job_completes_by_default(cluster: Cluster, ns: str):
    cluster.apply(job_manifest("done", completions=2), namespace=ns)
    job = cluster.wait_for(job_condition(cluster, ns, "done", "Complete"), 60, what="Job Complete")
    assert job["status"]["succeeded"] == 2


def test_job_pod_exit_annotation_fails_the_job(cluster: Cluster, ns: str):
    cluster.apply(job_manifest("crash", annotations={EXIT_ANNOTATION: "2"}), namespace=ns)
    job = cluster.wait_for(job_condition(cluster, ns, "crash", "Failed"), 60, what="Job Failed")
    assert job["status"].get("failed") == 1 and not job["status"].get("succeeded")


def test_job_pod_marked_never_keeps_running(cluster: Cluster, ns: str):
    cluster.apply(job_manifest("forever", annotations={EXIT_ANNOTATION: "never"}), namespace=ns)

    def running_pod():
        pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l", "job-name=forever")["items"]
        return pods if pods and pods[0]["status"].get("phase") == "Running" else None

    cluster.wait_for(running_pod, 60, what="the Job's pod Running")
    time.sleep(2.5)
    job = cluster.get("job", "forever", ns)
    assert job["status"].get("active") == 1 and not job["status"].get("succeeded")


THIRD_PARTY_CRDS = ["rayjobs.ray.io", "rayclusters.ray.io", "jobsets.jobset.x-k8s.io",
                    "inferenceservices.serving.kserve.io"]


@pytest.mark.parametrize("crd", THIRD_PARTY_CRDS)
def test_third_party_crd_is_established(cluster: Cluster, crd: str):
    obj = cluster.get("crd", crd)
    assert obj is not None, f"CRD {crd} is not installed"
    conds = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conds.get("Established") == "True"


HEAD_GROUP = {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": IMAGE}]}}}
JOB_TEMPLATE = {"spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "main", "image": IMAGE}]}}}}

# kind -> (a minimal valid object, an invalid one, a fragment the refusal must name)
CHILDREN: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "RayCluster": (
        {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rc"},
         "spec": {"headGroupSpec": HEAD_GROUP}},
        {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rc-bad"},
         "spec": {"workerGroupSpecs": []}},
        "spec.headGroupSpec",
    ),
    "RayJob": (
        {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "rj"},
         "spec": {"entrypoint": "python -c 'print(1)'", "rayClusterSpec": {"headGroupSpec": HEAD_GROUP}}},
        {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "rj-bad"},
         "spec": {"entrypoint": "python -c 'print(1)'", "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}}}}},
        "spec.rayClusterSpec.headGroupSpec.template",
    ),
    "JobSet": (
        {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "js"},
         "spec": {"replicatedJobs": [{"name": "workers", "replicas": 2, "template": JOB_TEMPLATE}]}},
        {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "js-bad"},
         "spec": {"replicatedJobs": [{"name": "workers", "replicas": 2}]}},
        "template",
    ),
    "InferenceService": (
        {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "isvc"},
         "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                          "storageUri": "s3://bucket/model"}}}},
        {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "isvc-bad"},
         "spec": {"transformer": {"containers": [{"name": "t", "image": IMAGE}]}}},
        "spec.predictor",
    ),
}


@pytest.mark.parametrize("kind", list(CHILDREN))
def test_third_party_schema_accepts_valid_and_refuses_invalid(cluster: Cluster, ns: str, kind: str):
    valid, invalid, field_ = CHILDREN[kind]
    cluster.apply(valid, namespace=ns)
    assert cluster.get(kind, valid["metadata"]["name"], ns) is not None
    with pytest.raises(CommandError) as refused:
        cluster.apply(invalid, namespace=ns)
    assert "Invalid value" in refused.value.stderr or "Required value" in refused.value.stderr, refused.value.stderr
    assert field_ in refused.value.stderr
    assert cluster.get(kind, invalid["metadata"]["name"], ns) is None
