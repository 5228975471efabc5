"""The operator's lifecycle for KGHarvest, MetricEval and DialogBot on the real control plane, with
KWOK's exit stages completing the pods and the InferenceService status patched as KServe would. No
workload runs here, so these tests pin what the operator does (children, placement by the real
scheduler, phases, conditions, events, printer columns), not that the kind harvests, evaluates or
chats: the programs are proven by tests/unit/<kind>/ and the e2e tests that run them for real."""

from __future__ import annotations

import re

from test_lifecycle import NOW, cond, events, example, patch_status, wait_phase


def job_kind(file: str, name: str, ns: str, accel: str | None) -> dict:
    d = example(file)
    d["metadata"] = {"name": name, "namespace": ns}
    d["spec"]["resources"] = {"backend": "job", "workers": 1, **({"accelerator": accel} if accel else {}),
                              "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    return d


def pods_of_job(cluster, ns, job):
    return cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job}")["items"]


def test_kgharvest_lifecycle_on_kwok_exits_not_the_program(cluster, operator, namespace):
    """A KGHarvest Job on the h100 pool goes to Succeeded when KWOK exits its pod with 0 (no
    harvesting program runs)."""
    cluster.apply(job_kind("kgharvest-gpu.yaml", "kg", namespace, "h100"))
    wait_phase(cluster, "kgharvest", "kg", namespace, "Succeeded")
    pods = pods_of_job(cluster, namespace, "kg-a0")
    assert pods and all(p["spec"]["nodeName"].startswith("h100") for p in pods)
    obj = cluster.get("kgharvest", "kg", namespace)
    assert cond(obj, "Succeeded")["status"] == "True"
    assert ("Normal", "Succeeded") in events(cluster, namespace, "kg")
    header, row = cluster.kubectl("get", "kgh", "kg", "-n", namespace).stdout.splitlines()[:2]
    heads = list(re.finditer(r"\S+", header))  # cells can be empty: cut the row at the header offsets
    cols = {m.group(): row[m.start():(heads[i + 1].start() if i + 1 < len(heads) else None)].strip() for i, m in enumerate(heads)}
    # relations done of requested (nothing runs, so nothing is published: 0 done)
    assert cols["PHASE"] == "Succeeded" and cols["PROGRESS"] == f"0/{len(obj['spec']['relations'])}", (header, row)
    assert cond(obj, "Complete")["status"] == "True" and cond(obj, "Ready")["status"] == "True"


def test_metriceval_lifecycle_on_kwok_exits_not_the_program(cluster, operator, namespace):
    """A MetricEval Job on the cpu pool goes to Succeeded when KWOK exits its pod with 0 (no
    evaluation program runs)."""
    cluster.apply(job_kind("metriceval-gpu.yaml", "me", namespace, None))
    wait_phase(cluster, "metriceval", "me", namespace, "Succeeded")
    pods = pods_of_job(cluster, namespace, "me-a0")
    assert pods and all(p["spec"]["nodeName"].startswith("cpu") for p in pods)
    assert "Succeeded" in cluster.kubectl("get", "meval", "me", "-n", namespace).stdout.splitlines()[1]


def test_dialogbot_stages_on_kwok_exits_and_patched_isvc_not_the_program(cluster, operator, namespace):
    """DialogBot's two stages as the operator drives them: the training Job (completed by KWOK, no
    training program) first, then the InferenceService (Ready patched as KServe would, no bot).

    KWOK may complete the Job before the test first looks, so the order is checked on what the
    operator guarantees, not on timing: the InferenceService is read before the Job, and once it
    exists the training Job must already be complete (or deleted); the Job's controller events
    (kept after the Job is deleted) show it ran."""
    d = example("dialogbot-gpu.yaml")
    d["metadata"] = {"name": "db", "namespace": namespace}
    d["spec"]["model"] = {"uri": "s3://glassbox/models/base"}
    d["spec"]["training"]["resources"] = {"backend": "job", "workers": 1, "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["serving"]["resources"] = {"backend": "kserve", "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    cluster.apply(d)

    early: list[str] = []  # wait_for retries a predicate that raises: record, assert after

    def service_after_training():
        isvc = cluster.get("inferenceservice", "db", namespace)  # first: a service implies training ended before
        jobs = cluster.kubectl_json("get", "jobs", "-n", namespace, "-l", "glassbox.dev/name=db")["items"]
        if isvc is not None:
            for j in jobs:
                done = any(c["type"] == "Complete" and c["status"] == "True" for c in j.get("status", {}).get("conditions", []))
                if not done and not j["metadata"].get("deletionTimestamp"):
                    early.append(j["metadata"]["name"])
        return isvc

    isvc = cluster.wait_for(service_after_training, timeout=90, what="InferenceService after training")
    assert early == [], f"the InferenceService existed before training Job(s) {early} completed"
    obj = cluster.get("dialogbot", "db", namespace)
    assert cond(obj, "Trained")["status"] == "True"
    assert ("Normal", "Trained") in events(cluster, namespace, "db")
    job = f"db-train-{obj['status']['artifacts']['runUri'].rsplit('-', 1)[1]}-a0"
    assert ("Normal", "Completed") in events(cluster, namespace, job)  # the job controller's: the Job ran to the end
    # the service loads the bot's own run (its latest checkpoint, or the run itself before one exists)
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    assert env["STORAGE_URI"].startswith(obj["status"]["artifacts"]["runUri"])
    url = f"http://db.{namespace}.example.com"
    patch_status(cluster, "inferenceservice", "db", namespace,
                 {"url": url, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}]})
    wait_phase(cluster, "dialogbot", "db", namespace, "Ready")
    assert cluster.get("dialogbot", "db", namespace)["status"]["endpoint"] == url
