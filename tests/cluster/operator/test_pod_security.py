"""Every kind's children in a namespace that enforces the `restricted` Pod Security Standard
(pod-security.kubernetes.io/enforce=restricted), judged by the real apiserver's PodSecurity
admission; and the operator's refusals of issue 17 with the reasons a script matches.

Jobs' pods are created by the real Job controller (kube-controller-manager runs in the test
cluster), so their admission is the real thing. No KubeRay, JobSet or KServe controller runs here:
for a RayJob (head, workers, and the submitter Job's pod), a JobSet and an InferenceService, each
pod template the operator rendered is sent as a server-side dry-run Pod create into the restricted
namespace (the same admission a controller's pod create goes through), with a negative control
(the template without its security context is refused) so the check can fail."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Iterator

import pytest

from tests.support.invalid_cases import valid
from tests.support.podsecurity import pod_templates, restricted_violations
from test_lifecycle import cond, events, example, pretrain, tpu_finetune, wait_phase

ENFORCE = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}


@pytest.fixture(scope="module")
def restricted(cluster, operator) -> Iterator[str]:
    ns = f"psr-{uuid.uuid4().hex[:6]}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": ENFORCE}})
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def dry_run_pod(cluster, ns: str, name: str, template: dict):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": (template.get("metadata") or {}).get("labels", {})},
           "spec": template["spec"]}
    return cluster.kubectl("create", "--dry-run=server", "-o", "name", "-f", "-", "-n", ns, input=json.dumps(pod), check=False)


def insecure(template: dict) -> dict:
    t = copy.deepcopy(template)
    t["spec"].pop("securityContext", None)
    for c in t["spec"]["containers"]:
        c.pop("securityContext", None)
    return t


def test_job_children_are_admitted_and_the_job_controller_creates_their_pods(cluster, operator, restricted):
    """Job backend on the GPU pool and on CPU, and a DialogBot's training Job: the real Job
    controller's pod creates pass restricted admission, and KWOK runs the pods to the end."""
    ns = restricted
    cluster.apply(pretrain("ps-gpu", ns, "job", 1, "h100"))
    cluster.apply(pretrain("ps-cpu", ns, "job", 1, None))
    for name in ("ps-gpu", "ps-cpu"):
        wait_phase(cluster, "pretrainrun", name, ns, "Succeeded", timeout=90)
        pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={name}-a0")["items"]
        assert pods, name
        for p in pods:
            assert restricted_violations(p["spec"]) == [], p["metadata"]["name"]
            assert p["spec"]["automountServiceAccountToken"] is False
            # no token volume: nothing of the ServiceAccount is mounted
            assert not [v for v in p["spec"]["volumes"] if v["name"].startswith("kube-api-access")]
        assert "FailedCreate" not in {r for _, r in events(cluster, ns, f"{name}-a0")}


def test_dialogbot_training_pods_and_predictor_are_admitted(cluster, operator, restricted):
    ns = restricted
    d = example("dialogbot-gpu.yaml")
    d["metadata"] = {"name": "ps-db", "namespace": ns}
    d["spec"]["model"] = {"uri": "s3://glassbox/models/base"}
    d["spec"]["training"]["resources"] = {"backend": "job", "workers": 1, "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["serving"]["resources"] = {"backend": "kserve", "accelerator": "h100", "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    cluster.apply(d)
    # The training Job's name carries the run id of the training spec (ps-db-train-<run8>-a0): find it by label.
    job = cluster.wait_for(lambda: cluster.kubectl_json("get", "jobs", "-n", ns, "-l", "glassbox.dev/name=ps-db")["items"],
                           timeout=60, what="DialogBot training Job")[0]["metadata"]["name"]
    assert job.startswith("ps-db-train-") and job.endswith("-a0"), job
    cluster.wait_for(lambda: cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job}")["items"],
                     timeout=60, what="DialogBot training pods created by the Job controller")
    isvc = cluster.wait_for(lambda: cluster.get("inferenceservice", "ps-db", ns), timeout=90, what="InferenceService")
    (where, tpl), = pod_templates(isvc)
    assert dry_run_pod(cluster, ns, "ps-db-predictor", tpl).returncode == 0


@pytest.mark.parametrize("case", ["ray-gpu", "jobset-tpu", "scorer-kserve"])
def test_engine_pod_templates_pass_restricted_admission_by_server_side_dry_run(cluster, operator, restricted, case):
    """No KubeRay/JobSet/KServe controller runs here: their pod templates (RayJob head, workers
    and submitter; the JobSet's TPU slice pods; the predictor) go through admission as dry-run Pods."""
    ns = restricted
    if case == "ray-gpu":
        doc, kind, child = pretrain("ps-ray", ns, "ray", 2, "h100"), "rayjob", "ps-ray-a0"
    elif case == "jobset-tpu":
        doc, kind, child = tpu_finetune("ps-js", ns), "jobset", "ps-js-a0"
    else:
        doc = valid("ScorerService", "ps-sc")
        doc["metadata"]["namespace"] = ns
        kind, child = "inferenceservice", "ps-sc"
    cluster.apply(doc)
    obj = cluster.wait_for(lambda: cluster.get(kind, child, ns), timeout=60, what=f"{kind}/{child}")
    templates = list(pod_templates(obj))
    want = {"ray-gpu": 3, "jobset-tpu": 1, "scorer-kserve": 1}[case]
    assert len(templates) == want, [w for w, _ in templates]
    for i, (where, tpl) in enumerate(templates):
        ok = dry_run_pod(cluster, ns, f"{child}-dry-{i}", tpl)
        assert ok.returncode == 0, (where, ok.stderr)
        refused = dry_run_pod(cluster, ns, f"{child}-bad-{i}", insecure(tpl))
        assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr, (where, refused.stderr)


def stalled_reason(cluster, kind: str, name: str, ns: str) -> str | None:
    obj = cluster.get(kind, name, ns)
    c = cond(obj, "Stalled") if obj and obj.get("status") else None
    return c["reason"] if c and c["status"] == "True" else None


def test_local_backend_is_refused_with_a_reason_and_an_event(cluster, operator, namespace):
    d = pretrain("ps-local", namespace, "local", 1, None)
    cluster.apply(d)
    reason = cluster.wait_for(lambda: stalled_reason(cluster, "pretrainrun", "ps-local", namespace), timeout=60,
                              what="Stalled=True")
    assert reason == "LocalBackendDisabled"
    obj = cluster.get("pretrainrun", "ps-local", namespace)
    assert obj["status"]["phase"] == "Failed" and "security.allowLocalBackend" in obj["status"]["message"]
    assert ("Warning", "LocalBackendDisabled") in events(cluster, namespace, "ps-local")
    # what a script does: kubectl wait on the reason
    cluster.kubectl("wait", "pretrainrun/ps-local", "-n", namespace, "--timeout=10s",
                    "--for=jsonpath={.status.conditions[?(@.type==\"Stalled\")].reason}=LocalBackendDisabled")
    assert not [c for c in obj["status"].get("children", [])]


def test_an_endpoint_without_its_own_secret_is_refused(cluster, operator, namespace):
    d = pretrain("ps-foreign", namespace, "job", 1, None)
    d["spec"]["storage"] = {"endpoint": "https://s3.elsewhere.invalid"}
    cluster.apply(d)
    reason = cluster.wait_for(lambda: stalled_reason(cluster, "pretrainrun", "ps-foreign", namespace), timeout=60,
                              what="Stalled=True")
    assert reason == "EndpointNeedsCredentials"
    assert ("Warning", "EndpointNeedsCredentials") in events(cluster, namespace, "ps-foreign")
    assert cluster.get("job", "ps-foreign-a0", namespace) is None
    # With its own Secret the same endpoint is accepted: the pods reference only that Secret.
    d = pretrain("ps-foreign-ok", namespace, "job", 1, None)
    d["spec"]["storage"] = {"endpoint": "https://s3.elsewhere.invalid", "secretRef": {"name": "elsewhere-creds"}}
    cluster.apply(d)
    job = cluster.wait_for(lambda: cluster.get("job", "ps-foreign-ok-a0", namespace), timeout=60, what="Job")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in (e.get("valueFrom") or {})}
    assert refs == {"elsewhere-creds"}


def test_an_endpoint_with_credentials_in_it_is_refused_by_the_apiserver(cluster, namespace):
    d = pretrain("ps-userinfo", namespace, "job", 1, None)
    d["spec"]["storage"] = {"endpoint": "https://AKIAEXAMPLE:topsecret@s3.elsewhere.invalid"}
    out = cluster.apply(d, check=False)
    assert out.returncode != 0 and "spec.storage.endpoint" in out.stderr
    assert cluster.get("pretrainrun", "ps-userinfo", namespace) is None
