"""A user's path, for real: `helm install` glassbox (the operator a pod on the real node), `kubectl
apply` the tiny PretrainRun example edited for the real pool, and it trains in real containers,
publishing checkpoints and a manifest to the real S3 server; on a Job, on a two-worker torchrun
JobSet, on Ray (KubeRay's RayJob: a head and a worker pod, the entrypoint submitted through the
head's dashboard, Ray Train's TorchTrainer) and through the loss of its pod mid-run (retried,
resumed from the latest checkpoint)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from minio.error import S3Error

from tests.support import bins, realchart
from tests.support.node import RealCluster
from tests.support.realchart import Release

pytestmark = pytest.mark.slow

EXAMPLE = bins.REPO / "examples" / "pretrain-tiny.yaml"


def tiny_example(name: str, *, backend: str = "job", workers: int = 1, max_steps: int = 12,
                 every: int = 6) -> dict[str, Any]:
    """examples/pretrain-tiny.yaml on the real pool: sized for its 2 CPUs, a few steps."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    spec = doc["spec"]
    spec["resources"] = {"backend": backend, "workers": workers, "accelerator": "real",
                         "cpu": "500m" if workers > 1 else "1", "memory": "3Gi"}
    spec["training"].update(maxSteps=max_steps, warmupSteps=2)
    spec["checkpoint"]["everySteps"] = every
    spec["analysis"]["memorization"]["enabled"] = False
    spec["failurePolicy"] = {"maxRetries": 2, "backoffSeconds": 1}
    return doc


def status(real: RealCluster, release: Release, name: str) -> dict[str, Any]:
    return (real.cluster.get("pretrainrun", name, release.workloads) or {}).get("status") or {}


def wait_phase(real: RealCluster, release: Release, name: str, phase: str, timeout: float) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        st = status(real, release, name)
        if st.get("phase") == "Failed" and phase != "Failed":
            raise AssertionError(f"{name} Failed: {st.get('message')}")
        return st if st.get("phase") == phase else None

    try:
        return real.cluster.wait_for(reached, timeout=timeout, interval=2, what=f"{name} {phase}")
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}\n{realchart.diagnostics(real, release)}") from None


def workload_pods(real: RealCluster, release: Release) -> list[dict[str, Any]]:
    return real.cluster.kubectl_json("get", "pods", "-n", release.workloads)["items"]


def check_published(real: RealCluster, st: dict[str, Any], steps: list[int]) -> None:
    """The manifest in S3 lists exactly these checkpoint steps, their data ranges back to back (no
    sample lost or seen twice), and every file it names is there with its size and sha256."""
    run_uri = st["artifacts"]["runUri"]
    manifest = realchart.read_manifest(real, run_uri)
    assert manifest.state == "completed"
    assert [c.step for c in manifest.checkpoints] == steps
    ranges = [(c.data.samples_start, c.data.samples_end) for c in manifest.checkpoints]
    assert ranges[0][0] == 0 and all(a[1] == b[0] and b[0] < b[1] for a, b in zip(ranges, ranges[1:])), ranges
    keys = realchart.object_keys(real, run_uri)
    assert {"manifest.json", "run.json"} <= keys
    for checkpoint in manifest.checkpoints:
        for f in checkpoint.files:
            key = f"{checkpoint.path.rstrip('/')}/{f.path}"
            assert key in keys, f"{key} is in the manifest, not in S3"
        small = min(checkpoint.files, key=lambda f: f.size)
        body = realchart.read_object(real, run_uri, f"{checkpoint.path.rstrip('/')}/{small.path}")
        assert hashlib.sha256(body).hexdigest() == small.sha256 and len(body) == small.size


def test_the_operator_runs_as_a_real_pod_on_the_real_node(real_cluster: RealCluster, real_release: Release) -> None:
    pods = real_cluster.cluster.kubectl_json("get", "pods", "-n", real_release.namespace)["items"]
    operator = [p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/name") == "glassbox"]
    assert len(operator) == 1
    assert operator[0]["spec"]["nodeName"] == real_cluster.node_name
    state = operator[0]["status"]["containerStatuses"][0]
    assert state["ready"] and state["containerID"].startswith("containerd://")


def test_the_tiny_example_trains_on_a_job_in_real_containers_and_publishes_to_s3(
        real_cluster: RealCluster, real_release: Release, tmp_path: Path) -> None:
    realchart.apply(real_cluster, real_release, tiny_example("tiny-job"), tmp_path)
    st = wait_phase(real_cluster, real_release, "tiny-job", "Succeeded", timeout=900)
    assert st["progress"]["step"] == 12
    pods = [p for p in workload_pods(real_cluster, real_release) if "tiny-job" in p["metadata"]["name"]]
    assert pods and all(p["spec"]["nodeName"] == real_cluster.node_name for p in pods)
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    check_published(real_cluster, st, [6, 12])
    table = real_cluster.cluster.kubectl("get", "glassbox", "-n", real_release.workloads).stdout
    row = next(line for line in table.splitlines() if line.startswith("pretrainrun.glassbox.dev/tiny-job"))
    assert "Succeeded" in row, table


def test_a_two_worker_torchrun_jobset_trains_on_the_real_node(
        real_cluster: RealCluster, real_release: Release, tmp_path: Path) -> None:
    realchart.apply(real_cluster, real_release, tiny_example("tiny-ddp", backend="jobset", workers=2), tmp_path)
    st = wait_phase(real_cluster, real_release, "tiny-ddp", "Succeeded", timeout=900)
    pods = [p for p in workload_pods(real_cluster, real_release) if "tiny-ddp" in p["metadata"]["name"]]
    assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} == {real_cluster.node_name}
    assert all(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0 for p in pods)
    assert pods[0]["spec"]["containers"][0]["command"][0] == "torchrun"
    check_published(real_cluster, st, [6, 12])


def test_the_tiny_example_on_ray_trains_in_a_kuberay_cluster_of_real_pods(
        real_cluster: RealCluster, real_release: Release, tmp_path: Path) -> None:
    c, ns, name = real_cluster.cluster, real_release.workloads, "tiny-ray"
    doc = tiny_example(name, backend="ray")
    doc["spec"]["failurePolicy"] = {"maxRetries": 0}
    ran: dict[str, set[str]] = {}

    def watch_ray_pods() -> None:
        for p in c.kubectl_json("get", "pods", "-n", ns, "-l", "ray.io/node-type")["items"]:
            if any(s.get("ready") for s in p["status"].get("containerStatuses") or []):
                ran.setdefault(p["metadata"]["labels"]["ray.io/node-type"], set()).add(p["spec"]["nodeName"])

    st = realchart.run_to_end(real_cluster, real_release, "pretrainrun", doc, tmp_path, each=watch_ray_pods)["status"]
    # KubeRay ran the head and the worker as real pods, Ready by the httpGet probes on Ray's health
    # endpoints, and submitted the entrypoint through the head's dashboard.
    assert ran == {"head": {real_cluster.node_name}, "worker": {real_cluster.node_name}}, ran
    rayjob = next(o for o in c.kubectl_json("get", "rayjobs", "-n", ns)["items"] if name in o["metadata"]["name"])
    assert rayjob["status"]["jobStatus"] == "SUCCEEDED", rayjob["status"]
    check_published(real_cluster, st, [6, 12])


def test_a_deleted_workload_pod_is_retried_and_resumes_from_the_latest_checkpoint(
        real_cluster: RealCluster, real_release: Release, tmp_path: Path) -> None:
    c, name = real_cluster.cluster, "tiny-retry"
    # The kill must land mid-run: the test reads the manifest in S3 itself (every 0.5 s) and deletes
    # the pod as soon as the first checkpoint is published, not when the operator's status shows it
    # (that lagged up to ~10 s: with 48 steps an idle machine trained to the end before the delete
    # arrived). 96 steps leave ~80 steps of margin; 240 steps took 414 s beside the unit lane.
    steps, every = 96, 12
    realchart.apply(real_cluster, real_release, tiny_example(name, max_steps=steps, every=every), tmp_path)

    def first_checkpoint_published() -> bool:
        run_uri = (status(real_cluster, real_release, name).get("artifacts") or {}).get("runUri")
        try:
            return bool(run_uri) and bool(realchart.read_manifest(real_cluster, run_uri).checkpoints)
        except S3Error as exc:
            if exc.code == "NoSuchKey":  # not published yet
                return False
            raise

    c.wait_for(first_checkpoint_published, timeout=600, interval=0.5, what=f"{name}'s first checkpoint in S3")
    first = [p["metadata"]["name"] for p in workload_pods(real_cluster, real_release) if name in p["metadata"]["name"]]
    assert len(first) == 1
    c.kubectl("delete", "pod", "-n", real_release.workloads, first[0], "--grace-period=1", "--wait=false")
    st = wait_phase(real_cluster, real_release, name, "Succeeded", timeout=900)
    assert st["retries"] == 1 and st["progress"]["step"] == steps
    check_published(real_cluster, st, list(range(every, steps + 1, every)))  # none lost, none twice
    second = [p["metadata"]["name"] for p in workload_pods(real_cluster, real_release)
              if name in p["metadata"]["name"] and p["metadata"]["name"] != first[0]]
    assert second
    log = c.kubectl("logs", "-n", real_release.workloads, second[-1]).stdout
    assert "resuming from checkpoint step" in log, log[-2000:]

