"""Pods that cannot be created or placed show in the resource's status, with a reason a script
can match: a missing PriorityClass (the Job controller's FailedCreate events on the child) and a
pod no node can take (the scheduler's Unschedulable pod condition), a KServe predictor pod included."""

from __future__ import annotations

from test_lifecycle import cond, events, example, pretrain


def wait_cond(cluster, name, ns, ctype, status, kind="pretrainrun"):
    return cluster.wait_for(lambda: (o := cluster.get(kind, name, ns)) and (c := cond(o, ctype)) and c["status"] == status and o,
                            timeout=60, what=f"{name} {ctype}={status}")


def test_missing_priority_class_is_failed_create(cluster, operator, namespace):
    d = pretrain("npc", namespace, "job", 1, None)
    d["spec"]["resources"]["priorityClassName"] = "no-such-class"
    cluster.apply(d)
    obj = wait_cond(cluster, "npc", namespace, "PodsScheduled", "False")
    c = cond(obj, "PodsScheduled")
    assert c["reason"] == "FailedCreate" and "no-such-class" in c["message"], c
    assert obj["status"]["phase"] in ("Pending", "Running") and "FailedCreate" in obj["status"]["message"]
    assert ("Warning", "FailedCreate") in events(cluster, namespace, "npc")
    # the class appears: the Job controller creates the pod, the condition clears, the run finishes
    cluster.apply({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "no-such-class"}, "value": 10})
    try:
        cluster.wait_for(lambda: cluster.get("pretrainrun", "npc", namespace)["status"]["phase"] == "Succeeded", timeout=90,
                         what="npc Succeeded once the PriorityClass exists")
        c = cond(cluster.get("pretrainrun", "npc", namespace), "PodsScheduled")
        assert c["status"] == "True" and c["reason"] == "Scheduled", c
    finally:
        cluster.kubectl("delete", "priorityclass", "no-such-class", check=False)


def test_unschedulable_pod_is_reported(cluster, operator, namespace):
    d = pretrain("big", namespace, "job", 1, None)
    d["spec"]["resources"]["cpu"] = "500"  # no cpu node has 500 cores
    cluster.apply(d)
    obj = wait_cond(cluster, "big", namespace, "PodsScheduled", "False")
    c = cond(obj, "PodsScheduled")
    assert c["reason"] == "Unschedulable" and "Insufficient cpu" in c["message"], c
    assert obj["status"]["phase"] == "Pending" or obj["status"]["phase"] == "Running"
    assert ("Warning", "Unschedulable") in events(cluster, namespace, "big")
    # Seen through the operator's watch of pods: the operator only reads them (no finalizer, no
    # annotation of its own on a pod).
    (pod,) = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "glassbox.dev/name=big")["items"]
    assert not [f for f in pod["metadata"].get("finalizers") or [] if "glassbox" in f or "kopf" in f], pod["metadata"]
    assert not [a for a in pod["metadata"].get("annotations") or {} if a.startswith(("glassbox.dev", "kopf"))], pod["metadata"]
    cluster.delete("pretrainrun", "big", namespace=namespace)


def test_unschedulable_predictor_pod_of_a_scorer(cluster, operator, namespace):
    """KServe's predictor pods carry KServe's labels (serving.kserve.io/inferenceservice=<name>,
    component=predictor) and the predictor's own `labels` (ours: the operator watches pods by them).
    Made here as KServe's Deployment would, from the InferenceService's predictor: one more replica
    of 8 GPUs than the h100 pool has nodes, so the real scheduler refuses the last one, and the
    ScorerService says so; it clears once that pod goes."""
    ns = namespace
    d = example("scorer-gpu.yaml")
    d["metadata"] = {"name": "usc", "namespace": ns}
    d["spec"]["resources"].pop("priorityClassName", None)
    nodes = len(cluster.kubectl_json("get", "nodes", "-l", "glassbox.dev/pool=h100")["items"])
    d["spec"]["replicas"] = nodes + 1
    cluster.apply(d)
    isvc = cluster.wait_for(lambda: cluster.get("inferenceservice", "usc", ns), what="InferenceService")
    pred = isvc["spec"]["predictor"]
    labels = {**pred["labels"], "serving.kserve.io/inferenceservice": "usc", "component": "predictor", "app": "isvc.usc-predictor"}
    spec = {k: pred[k] for k in ("containers", "volumes", "nodeSelector", "tolerations", "serviceAccountName") if k in pred}
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] in (8, "8")
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"usc-predictor-{i}", "namespace": ns, "labels": labels},
             "spec": spec} for i in range(nodes + 1)]
    try:
        cluster.create(pods)
        obj = wait_cond(cluster, "usc", ns, "PodsScheduled", "False", kind="scorerservice")
        c = cond(obj, "PodsScheduled")
        assert c["reason"] == "Unschedulable" and "Insufficient nvidia.com/gpu" in c["message"], c
        assert obj["status"]["phase"] == "Pending" and obj["status"]["message"].startswith("Unschedulable: pod usc-predictor-")
        assert ("Warning", "Unschedulable") in events(cluster, ns, "usc")
        stuck = c["message"].split()[1].rstrip(":")
        cluster.delete("pod", stuck, namespace=ns)  # as KServe would on a scale-down
        obj = wait_cond(cluster, "usc", ns, "PodsScheduled", "True", kind="scorerservice")
        assert cond(obj, "PodsScheduled")["reason"] == "Scheduled"
    finally:
        cluster.delete("scorerservice", "usc", namespace=ns)
        cluster.kubectl("delete", "pods", "-n", ns, "-l", "serving.kserve.io/inferenceservice=usc", "--wait=false")
