"""What both modes of bench.py share: kubectl, the two operators' runs (namespace, process, peak
memory, teardown), the resources each side is given and what counts as done for each.

A run: a fresh namespace, the operator started for that namespace only, then (after the run) the
namespace deleted and waited for while the operator still runs (both put finalizers on their
resources), then the operator killed. KubeRay's RayClusters get pods, which the kube-scheduler
binds and KWOK (hack/cluster/stages.yaml) marks Running; glassbox's work stops at the RayJob
(no KubeRay runs during glassbox's run, so its RayJobs stay unreconciled).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import yaml

ROOT = Path(__file__).resolve().parents[2]
GLASSBOX = str(Path(sys.executable).parent / "glassbox")


def kubectl(*args: str, input: str | None = None) -> str:
    return subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, check=True).stdout


def apply(docs: list[dict]) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(docs))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def remove_namespace(ns: str, timeout: float = 1200) -> None:
    """Delete a run's namespace and wait until it is gone, so the next run does not share the
    control plane with the deletion of 1000s of objects (and their pods). Without this, whichever
    side ran after KubeRay's (RayClusters and pods to delete) started on a busier cluster. Called
    before the operator is stopped: both put finalizers on their resources."""
    t0 = time.monotonic()
    kubectl("delete", "namespace", ns, "--wait=false")
    while time.monotonic() - t0 < timeout:
        r = subprocess.run(["kubectl", "get", "namespace", ns, "-o", "name"], capture_output=True, text=True)
        if r.returncode != 0 and "NotFound" in r.stderr:
            log(f"namespace {ns} gone after {time.monotonic() - t0:.0f} s")
            return
        time.sleep(2)
    raise SystemExit(f"namespace {ns} still there after {timeout:.0f} s")


def peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: Optional[int]) -> float:
    """User + system CPU seconds a process has used so far (nan if it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return float("nan")


def apiserver_pid() -> Optional[int]:
    """The test cluster's kube-apiserver (hack/cluster.sh: kwokctl's pid file beside the kubeconfig)."""
    try:
        return int((Path(os.environ["KUBECONFIG"]).parent / "pids" / "kube-apiserver.pid").read_text().strip())
    except (KeyError, OSError, ValueError):
        return None


class RssSampler(threading.Thread):
    """VmHWM of a process, sampled until stopped (the last value is the peak)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            v = peak_rss_mib(self.pid)
            if v == v:
                self.peak = max(self.peak, v)
            time.sleep(0.2)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


# ---- what each side is given ----

def pretrainrun(name: str, ns: str) -> dict:
    d = yaml.safe_load((ROOT / "examples/pretrain-gpu.yaml").read_text())
    d["metadata"] = {"name": name, "namespace": ns}
    d["spec"]["resources"] = {"backend": "ray", "workers": 1, "cpu": "1", "memory": "1Gi"}
    d["spec"]["storage"] = {}
    return d


def rayjob(name: str, ns: str) -> dict:
    pod = {"containers": [{"name": "ray", "image": "rayproject/ray:2.46.0", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
           "nodeSelector": {"glassbox.dev/pool": "cpu"}}
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": name, "namespace": ns},
            "spec": {"entrypoint": "python -c 'print(1)'", "shutdownAfterJobFinishes": False,
                     "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": pod}},
                                        "workerGroupSpecs": [{"groupName": "w", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                                                              "rayStartParams": {}, "template": {"spec": pod}}]}}}


# ---- the two operators, one run each ----

def _stop(proc: subprocess.Popen, rss: RssSampler, ns: str) -> None:
    rss.stop.set()
    try:
        remove_namespace(ns)  # while the operator runs: it removes its finalizers
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def glassbox_operator(tag: str, workdir: Path) -> Iterator[tuple[str, RssSampler]]:
    """A fresh namespace and `glassbox operator` watching only it; yields (namespace, peak RSS)."""
    ns = f"bgb-{tag}-{uuid.uuid4().hex[:4]}"
    kubectl("create", "namespace", ns)
    values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
    endpoint = os.environ["GLASSBOX_S3_ENDPOINT"]
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump({"apiVersion": "glassbox.dev/v1alpha1", "kind": "OperatorConfig", "nodePools": values["nodePools"],
                                   "storage": dict(values["storage"], endpoint=endpoint.split("://")[-1], secure=endpoint.startswith("https")),
                                   "defaults": values["defaults"]}))
    out = open(workdir / f"glassbox-{tag}.log", "wb")
    proc = subprocess.Popen([GLASSBOX, "operator", "--standalone", "-n", ns, "--config", str(cfg), "--resync-seconds", "30",
                             "--log-level", "warning"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    rss = RssSampler(proc.pid)
    rss.start()
    try:
        time.sleep(3)  # operator up and watching
        yield ns, rss
    finally:
        _stop(proc, rss, ns)


@contextlib.contextmanager
def kuberay_operator(binary: str, tag: str, workdir: Path) -> Iterator[tuple[str, RssSampler]]:
    """A fresh namespace and KubeRay's ray-operator watching only it; yields (namespace, peak RSS)."""
    ns = f"bkr-{tag}-{uuid.uuid4().hex[:4]}"
    kubectl("create", "namespace", ns)
    out = open(workdir / f"kuberay-{tag}.log", "wb")
    proc = subprocess.Popen([binary, "-watch-namespace", ns, "-metrics-addr", "127.0.0.1:0", "-health-probe-bind-address", "127.0.0.1:0",
                             "-enable-leader-election=false"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    rss = RssSampler(proc.pid)
    rss.start()
    try:
        time.sleep(3)
        yield ns, rss
    finally:
        _stop(proc, rss, ns)


@dataclass(frozen=True)
class Side:
    """One side of the comparison as the steady mode watches it: the resource applied (parent),
    the child the operator creates for it, and what counts as the parent's first status write."""
    name: str
    parent: tuple[str, str, str]  # group, version, plural
    child: tuple[str, str, str]
    manifest: Callable[[str, str], dict]
    parent_of_child: Callable[[dict], Optional[str]]
    status_written: Callable[[dict], bool]
    operator: Callable[[str, Path], Any]  # (tag, workdir) -> context manager yielding (ns, rss)


def _gb_parent_of_child(o: dict) -> Optional[str]:
    # The RayJob of attempt 0 of PretrainRun <name> is <name>-a0 (what the all-done mode checks).
    name = o["metadata"]["name"]
    return name[:-3] if name.endswith("-a0") else None


def _gb_status_written(o: dict) -> bool:
    # The operator's status patch: a phase (or conditions) with observedGeneration of this spec.
    st = o.get("status") or {}
    return bool(st.get("phase") or st.get("conditions")) and st.get("observedGeneration") == o["metadata"].get("generation")


def _kr_parent_of_child(o: dict) -> Optional[str]:
    for ref in o["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "RayJob":
            return ref["name"]
    return None


def _kr_status_written(o: dict) -> bool:
    # KubeRay's first RayJob status write sets jobDeploymentStatus (Initializing), before it creates
    # the RayCluster; its RayJob controller writes no observedGeneration (v1.5.0).
    return bool((o.get("status") or {}).get("jobDeploymentStatus"))


def sides(kuberay_binary: str) -> list[Side]:
    return [
        Side("glassbox", ("glassbox.dev", "v1alpha1", "pretrainruns"), ("ray.io", "v1", "rayjobs"), pretrainrun,
             _gb_parent_of_child, _gb_status_written, glassbox_operator),
        Side("KubeRay", ("ray.io", "v1", "rayjobs"), ("ray.io", "v1", "rayclusters"), rayjob,
             _kr_parent_of_child, _kr_status_written, lambda tag, workdir: kuberay_operator(kuberay_binary, tag, workdir)),
    ]
