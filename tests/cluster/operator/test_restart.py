"""The operator killed (SIGKILL) and restarted at random points during 50 resources' lifecycles:
every resource converges to Succeeded, with exactly one workload child each and no duplicates."""

from __future__ import annotations

import random

from test_lifecycle import pretrain

N = 50


def test_kill_and_restart_converges(cluster, operator, namespace):
    rng = random.Random(3)
    ns = namespace
    cluster.apply([pretrain(f"k{i}", ns, "job", 1, rng.choice(["h100", None])) for i in range(N)])

    def done() -> int:
        items = cluster.kubectl_json("get", "pretrainruns", "-n", ns)["items"]
        return sum(1 for o in items if o["metadata"]["name"].startswith("k") and (o.get("status") or {}).get("phase") == "Succeeded")

    for _ in range(3):
        # kill at a random point: after a random number of resources finished (or right away)
        target = rng.randint(0, N // 2)
        cluster.wait_for(lambda: done() >= target, timeout=120, what=f">= {target} succeeded")
        operator.kill()
        operator.start()
    cluster.wait_for(lambda: done() == N, timeout=240, interval=1, what=f"all {N} succeeded")
    jobs = [j["metadata"]["name"] for j in cluster.kubectl_json("get", "jobs", "-n", ns)["items"] if j["metadata"]["name"].startswith("k")]
    assert sorted(jobs) == sorted(f"k{i}-a0" for i in range(N))  # one attempt each, no duplicates
    for o in cluster.kubectl_json("get", "pretrainruns", "-n", ns)["items"]:
        if o["metadata"]["name"].startswith("k"):
            assert [c["name"] for c in o["status"]["children"]] == [f"{o['metadata']['name']}-spec", f"{o['metadata']['name']}-a0"]
