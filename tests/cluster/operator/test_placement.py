"""Placement of the children no controller runs in the test cluster: KubeRay, JobSet and KServe are
absent, so the test creates the pods those controllers would create, from the pod templates the
operator rendered (RayJob head and worker groups, each JobSet replicated job, the InferenceService
predictor), and the real kube-scheduler places them: GPU workers on h100, TPU workers on
tpu-v5e-16 with its topology selector, everything else on the cpu pool."""

from __future__ import annotations

import copy

from test_lifecycle import example, pretrain, tpu_finetune

# InferenceService predictor fields that are KServe's, not the PodSpec's.
ISVC_COMPONENT_FIELDS = {"minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "containerConcurrency",
                         "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations", "deploymentStrategy",
                         "autoScaling", "model", "workerSpec"}


def pod(name: str, ns: str, template: dict) -> dict:
    """A pod as the engine's controller would create it from a pod template."""
    meta = copy.deepcopy(template.get("metadata") or {})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {**meta.get("labels", {}), "placement-test": name.rsplit("-", 1)[0]},
                         "annotations": meta.get("annotations", {})},
            "spec": copy.deepcopy(template["spec"])}


def node_pool(cluster, node: str) -> dict:
    return cluster.get("node", node)["metadata"]["labels"]


def place(cluster, pods: list[dict]) -> dict[str, dict]:
    """Create the pods; wait until the scheduler bound every one; name -> labels of its node."""
    cluster.apply(pods)
    ns = pods[0]["metadata"]["namespace"]
    names = [p["metadata"]["name"] for p in pods]

    def bound():
        got = {n: (cluster.get("pod", n, ns) or {}).get("spec", {}).get("nodeName") for n in names}
        return got if all(got.values()) else None

    nodes = cluster.wait_for(bound, timeout=60, what=f"scheduler binds {names}")
    out = {n: node_pool(cluster, node) for n, node in nodes.items()}
    cluster.kubectl("delete", "pod", "-n", ns, "--wait=false", *names)
    return out


def test_rayjob_head_on_cpu_gpu_workers_on_h100(cluster, operator, namespace):
    d = pretrain("rp", namespace, "ray", 2, "h100")
    d["spec"]["resources"]["acceleratorsPerWorker"] = 1
    cluster.apply(d)
    rj = cluster.wait_for(lambda: cluster.get("rayjob", "rp-a0", namespace), what="RayJob")
    spec = rj["spec"]["rayClusterSpec"]
    pods = [pod("rp-head-0", namespace, spec["headGroupSpec"]["template"])]
    for g in spec["workerGroupSpecs"]:
        pods += [pod(f"rp-{g['groupName']}-{i}", namespace, g["template"]) for i in range(g["replicas"])]
    placed = place(cluster, pods)
    assert placed["rp-head-0"]["glassbox.dev/pool"] == "cpu"
    workers = {n: lbl for n, lbl in placed.items() if n != "rp-head-0"}
    assert len(workers) == 2 and all(lbl["glassbox.dev/pool"] == "h100" for lbl in workers.values()), placed


def test_cpu_rayjob_all_on_cpu(cluster, operator, namespace):
    cluster.apply(pretrain("rc", namespace, "ray", 2, None))
    rj = cluster.wait_for(lambda: cluster.get("rayjob", "rc-a0", namespace), what="RayJob")
    spec = rj["spec"]["rayClusterSpec"]
    pods = [pod("rc-head-0", namespace, spec["headGroupSpec"]["template"])]
    for g in spec["workerGroupSpecs"]:
        pods += [pod(f"rc-{g['groupName']}-{i}", namespace, g["template"]) for i in range(g["replicas"])]
    assert all(lbl["glassbox.dev/pool"] == "cpu" for lbl in place(cluster, pods).values())


def test_jobset_tpu_slice_on_the_tpu_pool_with_topology(cluster, operator, namespace):
    cluster.apply(tpu_finetune("tp", namespace, workers=4))
    js = cluster.wait_for(lambda: cluster.get("jobset", "tp-a0", namespace), what="JobSet")
    pods = []
    for rj in js["spec"]["replicatedJobs"]:
        job = rj["template"]["spec"]
        for r in range(rj["replicas"]):
            pods += [pod(f"tp-{rj['name']}-{r}-{i}", namespace, job["template"]) for i in range(job["parallelism"])]
    selector = pods[0]["spec"]["nodeSelector"]
    assert "cloud.google.com/gke-tpu-topology" in selector
    placed = place(cluster, pods)
    assert len(placed) == 4
    for lbl in placed.values():
        assert lbl["glassbox.dev/pool"] == "tpu-v5e-16"
        assert all(lbl.get(k) == v for k, v in selector.items()), (selector, lbl)


def test_inferenceservice_predictor_on_h100(cluster, operator, namespace):
    d = example("scorer-gpu.yaml")
    d["metadata"] = {"name": "ps", "namespace": namespace}
    d["spec"]["resources"] = {"backend": "kserve", "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["replicas"] = 2
    cluster.apply(d)
    isvc = cluster.wait_for(lambda: cluster.get("inferenceservice", "ps", namespace), what="InferenceService")
    predictor = isvc["spec"]["predictor"]
    podspec = {k: v for k, v in predictor.items() if k not in ISVC_COMPONENT_FIELDS}
    pods = [pod(f"ps-predictor-{i}", namespace, {"spec": podspec}) for i in range(predictor["minReplicas"])]
    placed = place(cluster, pods)
    assert len(placed) == 2 and all(lbl["glassbox.dev/pool"] == "h100" for lbl in placed.values()), placed


def test_cpu_inferenceservice_on_cpu(cluster, operator, namespace):
    d = example("scorer-gpu.yaml")
    d["metadata"] = {"name": "pc", "namespace": namespace}
    d["spec"]["resources"] = {"backend": "kserve", "cpu": "1", "memory": "1Gi"}
    d["spec"]["replicas"] = 1
    cluster.apply(d)
    isvc = cluster.wait_for(lambda: cluster.get("inferenceservice", "pc", namespace), what="InferenceService")
    podspec = {k: v for k, v in isvc["spec"]["predictor"].items() if k not in ISVC_COMPONENT_FIELDS}
    assert all(lbl["glassbox.dev/pool"] == "cpu" for lbl in place(cluster, [pod("pc-predictor-0", namespace, {"spec": podspec})]).values())
