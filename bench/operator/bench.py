"""Operator reconcile throughput and latency: glassbox vs KubeRay's own Go operator, same control plane.

For each N: N PretrainRuns (ray backend) applied at once to glassbox -> time until each has its
RayJob child and a status phase; then N RayJobs applied at once to KubeRay's operator -> time until
each has its RayCluster and a jobDeploymentStatus. Prints p50/p99/total per side, the operators'
peak RSS, and the ratio.

Needs a running test cluster and S3 (hack/cluster.sh up; eval "$(hack/cluster.sh env)") and the
KubeRay operator binary (bench/operator/build-kuberay.sh prints its path):

    python bench/operator/bench.py --kuberay "$(bench/operator/build-kuberay.sh)" --n 100 1000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GLASSBOX = str(Path(sys.executable).parent / "glassbox")


def kubectl(*args: str, input: str | None = None) -> str:
    return subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, check=True).stdout


def apply(docs: list[dict]) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(docs))


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
            print(f"namespace {ns} gone after {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
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
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def wait_all(list_done, n: int, t0: float, timeout: float) -> list[float]:
    """Poll list_done() -> {name: done?}; the time each name was first seen done, relative to t0."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < n and time.monotonic() < deadline:
        now = time.monotonic() - t0
        for name in list_done():
            seen.setdefault(name, now)
        time.sleep(0.25)
    if len(seen) < n:
        raise TimeoutError(f"only {len(seen)}/{n} done after {timeout:.0f}s")
    return list(seen.values())


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


def run_glassbox(n: int, workdir: Path, timeout: float) -> dict:
    ns = f"bgb-{n}-{uuid.uuid4().hex[:4]}"
    kubectl("create", "namespace", ns)
    values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
    endpoint = os.environ["GLASSBOX_S3_ENDPOINT"]
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump({"apiVersion": "glassbox.dev/v1alpha1", "kind": "OperatorConfig", "nodePools": values["nodePools"],
                                   "storage": dict(values["storage"], endpoint=endpoint.split("://")[-1], secure=endpoint.startswith("https")),
                                   "defaults": values["defaults"]}))
    log = open(workdir / f"glassbox-{n}.log", "wb")
    proc = subprocess.Popen([GLASSBOX, "operator", "--standalone", "-n", ns, "--config", str(cfg), "--resync-seconds", "30",
                             "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rss = RssSampler(proc.pid)
    rss.start()
    try:
        time.sleep(3)  # operator up and watching
        docs = [pretrainrun(f"r{i}", ns) for i in range(n)]
        t0 = time.monotonic()
        apply(docs)

        def done() -> list[str]:
            have = {i["metadata"]["name"] for i in json.loads(kubectl("get", "rayjobs", "-n", ns, "-o", "json"))["items"]}
            out = []
            for o in json.loads(kubectl("get", "pretrainruns", "-n", ns, "-o", "json"))["items"]:
                name = o["metadata"]["name"]
                if (o.get("status") or {}).get("phase") and f"{name}-a0" in have:
                    out.append(name)
            return out

        times = wait_all(done, n, t0, timeout)
    finally:
        rss.stop.set()
        try:
            remove_namespace(ns)  # while the operator runs: it removes its finalizers
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return {"p50": pct(times, 0.5), "p99": pct(times, 0.99), "all": max(times), "rss": rss.peak}


def run_kuberay(binary: str, n: int, workdir: Path, timeout: float) -> dict:
    ns = f"bkr-{n}-{uuid.uuid4().hex[:4]}"
    kubectl("create", "namespace", ns)
    log = open(workdir / f"kuberay-{n}.log", "wb")
    proc = subprocess.Popen([binary, "-watch-namespace", ns, "-metrics-addr", "127.0.0.1:0", "-health-probe-bind-address", "127.0.0.1:0",
                             "-enable-leader-election=false"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rss = RssSampler(proc.pid)
    rss.start()
    try:
        time.sleep(3)
        docs = [rayjob(f"r{i}", ns) for i in range(n)]
        t0 = time.monotonic()
        apply(docs)

        def done() -> list[str]:
            clusters = {i["metadata"]["ownerReferences"][0]["name"]
                        for i in json.loads(kubectl("get", "rayclusters", "-n", ns, "-o", "json"))["items"] if i["metadata"].get("ownerReferences")}
            return [o["metadata"]["name"] for o in json.loads(kubectl("get", "rayjobs", "-n", ns, "-o", "json"))["items"]
                    if (o.get("status") or {}).get("jobDeploymentStatus") and o["metadata"]["name"] in clusters]

        times = wait_all(done, n, t0, timeout)
    finally:
        rss.stop.set()
        try:
            remove_namespace(ns)  # while the operator runs: it removes its finalizers
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return {"p50": pct(times, 0.5), "p99": pct(times, 0.99), "all": max(times), "rss": rss.peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kuberay", required=True, help="KubeRay operator binary (bench/operator/build-kuberay.sh)")
    ap.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
    workdir = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    rows = []
    for n in args.n:
        gb = run_glassbox(n, workdir, args.timeout)
        kr = run_kuberay(args.kuberay, n, workdir, args.timeout)
        rows.append((n, gb, kr))
        print(f"N={n} glassbox {gb} kuberay {kr}", file=sys.stderr, flush=True)
    print("| N | glassbox p50 s | p99 s | all s | peak RSS MiB | KubeRay p50 s | p99 s | all s | peak RSS MiB | all-done ratio glassbox/KubeRay |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, gb, kr in rows:
        print(f"| {n} | {gb['p50']:.2f} | {gb['p99']:.2f} | {gb['all']:.2f} | {gb['rss']:.0f} | {kr['p50']:.2f} | {kr['p99']:.2f} | "
              f"{kr['all']:.2f} | {kr['rss']:.0f} | {gb['all'] / kr['all']:.2f} |")
    print(f"(logs in {workdir})", file=sys.stderr)


if __name__ == "__main__":
    main()
