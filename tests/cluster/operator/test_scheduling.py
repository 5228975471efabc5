"""Pods that cannot be created or placed show in the resource's status, with a reason a script
can match: a missing PriorityClass (the Job controller's FailedCreate events on the child) and a
pod no node can take (the scheduler's Unschedulable pod condition)."""

from __future__ import annotations

from test_lifecycle import cond, events, pretrain


def wait_cond(cluster, name, ns, ctype, status):
    return cluster.wait_for(lambda: (o := cluster.get("pretrainrun", name, ns)) and (c := cond(o, ctype)) and c["status"] == status and o,
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
    cluster.delete("pretrainrun", "big", namespace=namespace)
