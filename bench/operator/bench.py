"""Operator reconcile throughput and latency: glassbox vs KubeRay's own Go operator, same control plane.

Two modes, either or both in one invocation (all-done first):

All-done (--n N ...): for each N, N PretrainRuns (ray backend) applied at once to glassbox -> time
until each has its RayJob child and a status phase; then N RayJobs applied at once to KubeRay's
operator -> time until each has its RayCluster and a jobDeploymentStatus. Prints p50/p99/total per
side, the operators' peak RSS, and the ratio.

Steady state (--steady [--rate R --duration S --grace G]): resources arriving at R per second for S
seconds, to each operator in turn; per resource, the latency from its apply to its children and to
its first status write; p50/p90/p99/max side by side, the ratio, and how many never got there
(steady.py says exactly what is measured and how).

Needs a running test cluster and S3 (hack/cluster.sh up; eval "$(hack/cluster.sh env)") and the
KubeRay operator binary (bench/operator/build-kuberay.sh prints its path):

    python bench/operator/bench.py --kuberay "$(bench/operator/build-kuberay.sh)" --n 100 1000 --steady
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from frame import ROOT, apply, glassbox_operator, kubectl, kuberay_operator, log, pct, pretrainrun, rayjob, sides


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


def run_glassbox(n: int, workdir: Path, timeout: float) -> dict:
    with glassbox_operator(str(n), workdir) as (ns, rss):
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
    return {"p50": pct(times, 0.5), "p99": pct(times, 0.99), "all": max(times), "rss": rss.peak}


def run_kuberay(binary: str, n: int, workdir: Path, timeout: float) -> dict:
    with kuberay_operator(binary, str(n), workdir) as (ns, rss):
        docs = [rayjob(f"r{i}", ns) for i in range(n)]
        t0 = time.monotonic()
        apply(docs)

        def done() -> list[str]:
            clusters = {i["metadata"]["ownerReferences"][0]["name"]
                        for i in json.loads(kubectl("get", "rayclusters", "-n", ns, "-o", "json"))["items"] if i["metadata"].get("ownerReferences")}
            return [o["metadata"]["name"] for o in json.loads(kubectl("get", "rayjobs", "-n", ns, "-o", "json"))["items"]
                    if (o.get("status") or {}).get("jobDeploymentStatus") and o["metadata"]["name"] in clusters]

        times = wait_all(done, n, t0, timeout)
    return {"p50": pct(times, 0.5), "p99": pct(times, 0.99), "all": max(times), "rss": rss.peak}


def all_done(binary: str, ns_: list[int], workdir: Path, timeout: float) -> str:
    rows = []
    for n in ns_:
        gb = run_glassbox(n, workdir, timeout)
        kr = run_kuberay(binary, n, workdir, timeout)
        rows.append((n, gb, kr))
        log(f"N={n} glassbox {gb} kuberay {kr}")
    out = ["| N | glassbox p50 s | p99 s | all s | peak RSS MiB | KubeRay p50 s | p99 s | all s | peak RSS MiB | all-done ratio glassbox/KubeRay |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for n, gb, kr in rows:
        out.append(f"| {n} | {gb['p50']:.2f} | {gb['p99']:.2f} | {gb['all']:.2f} | {gb['rss']:.0f} | {kr['p50']:.2f} | {kr['p99']:.2f} | "
                   f"{kr['all']:.2f} | {kr['rss']:.0f} | {gb['all'] / kr['all']:.2f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kuberay", required=True, help="KubeRay operator binary (bench/operator/build-kuberay.sh)")
    ap.add_argument("--n", type=int, nargs="+", help="all-done mode at these sizes (default 100 1000 unless --steady alone)")
    ap.add_argument("--timeout", type=float, default=900, help="all-done mode: seconds per run")
    ap.add_argument("--steady", action="store_true", help="steady-state mode")
    ap.add_argument("--rate", type=float, default=10, help="steady: resources applied per second")
    ap.add_argument("--duration", type=float, default=120, help="steady: seconds of arrivals")
    ap.add_argument("--grace", type=float, default=30, help="steady: seconds after the last arrival before a resource counts as never there")
    args = ap.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.rate * args.duration > 5000:
        ap.error("--rate and --duration must be positive, at most 5000 resources in all")
    ns_ = args.n if args.n is not None else ([] if args.steady else [100, 1000])
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
    workdir = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    tables = []
    if ns_:
        tables.append(all_done(args.kuberay, ns_, workdir, args.timeout))
    if args.steady:
        import steady  # needs the kubernetes client (the operator extra); the all-done mode does not

        results = []
        for side in sides(args.kuberay):
            results.append(steady.run_side(side, args.rate, args.duration, args.grace, workdir))
            log(f"steady {side.name}: {len(results[-1].children)}/{results[-1].n} children, {len(results[-1].status)} status")
        tables.append(steady.table(results, args.rate, args.duration, args.grace))
    print("\n\n".join(tables))
    log(f"(logs in {workdir})")


if __name__ == "__main__":
    main()
