"""The checkpoint curve end to end: a MetricEval following a PretrainRun (model.fromRun.checkpoint:
each) on the real control plane, both run by the operator (backend local) and publishing to the real
S3 server. The MetricEval waits for the PretrainRun's first published manifest, evaluates every
checkpoint as it lands, gains one curve point per published checkpoint, and finishes only when the
PretrainRun's manifest says completed; `kubectl get meval` shows the latest and best points.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from glassbox_api.manifest import read_manifest
from tests.e2e.test_pretrain_e2e import (  # noqa: F401  (fixtures: bucket, namespace, operator)
    STEPS, bucket, namespace, operator, run_store, tiny_ptr, wait_phase)
from tests.support.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]


def curve_eval(name: str, ns: str, source: str) -> dict:
    return {
        "apiVersion": "glassbox.dev/v1alpha1", "kind": "MetricEval",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "task": "generation", "metrics": ["perplexity"],
            "data": {"uri": str(ROOT / "examples" / "data" / "code-heldout.jsonl")},
            "fields": {"source": "prompt", "output": "completion", "references": "completion"},
            "model": {"fromRun": {"kind": "PretrainRun", "name": source, "checkpoint": "each"}},
            "perplexity": {"given": "source", "maxLength": 64},
            "curve": {"pollSeconds": 1, "idleTimeoutSeconds": 120},
            "resources": {"backend": "local"},
            "failurePolicy": {"maxRetries": 1, "backoffSeconds": 1},
        },
    }


def get_meval(cluster: Cluster, name: str, ns: str) -> dict[str, str]:
    """`kubectl get meval NAME -o wide`, its row as {column: value}, cut at the header's offsets."""
    header, row = cluster.kubectl("get", "meval", name, "-n", ns, "-o", "wide").stdout.splitlines()[:2]
    heads = list(re.finditer(r"\S+", header))
    return {m.group(): row[m.start():(heads[i + 1].start() if i + 1 < len(heads) else None)].strip()
            for i, m in enumerate(heads)}


def test_metriceval_following_a_pretrainrun_gains_one_point_per_checkpoint(cluster, s3, operator, namespace):
    ns, src, name = namespace, "tiny-curve-src", "tiny-curve"
    t0 = time.monotonic()
    cluster.apply(curve_eval(name, ns, src))  # first: it waits for the source to exist and publish
    waiting = cluster.wait_for(lambda: ((cluster.get("metriceval", name, ns) or {}).get("status") or {})
                               .get("phase") == "Pending" or None, timeout=30, what="MetricEval Pending")
    assert waiting
    cluster.apply(tiny_ptr(src, ns))
    seen: list[int] = []  # status.progress.checkpoints as the operator reports it over time

    def done() -> bool:
        st = (cluster.get("metriceval", name, ns) or {}).get("status") or {}
        n = (st.get("progress") or {}).get("checkpoints")
        if isinstance(n, int) and (not seen or seen[-1] != n):
            seen.append(n)
        if st.get("phase") == "Failed":
            raise AssertionError(f"{name} failed: {st.get('message')}\n{operator.diagnostics()}")
        return st.get("phase") == "Succeeded"

    try:
        cluster.wait_for(done, timeout=300, interval=0.5, what=f"{name} Succeeded")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{operator.diagnostics()}") from None
    elapsed = time.monotonic() - t0
    ptr = wait_phase(cluster, operator, src, ns, "Succeeded", timeout=60)
    st = cluster.get("metriceval", name, ns)["status"]

    # One point per checkpoint the PretrainRun published, in step order, each naming its checkpoint.
    source = read_manifest(run_store(s3, ptr["artifacts"]["runUri"]))
    assert source.state == "completed" and [c.step for c in source.checkpoints] == STEPS
    store = run_store(s3, st["artifacts"]["runUri"])
    m = read_manifest(store)
    e = m.final["outputs"]["curve"]
    store.verify(e["path"], e["sha256"], e["size"])
    points = [json.loads(line) for line in store.get_bytes("curve.jsonl").decode().splitlines()]
    assert [p["step"] for p in points] == STEPS
    assert [p["uri"] for p in points] == [f"{ptr['artifacts']['runUri']}/{c.path}" for c in source.checkpoints]
    assert all(p["perplexity"] > 1 for p in points)
    assert seen == sorted(seen) and seen[-1] == len(STEPS)  # the count only grew, to one per checkpoint
    assert st["lineage"]["source"] == f"PretrainRun/{src}@each" and st["lineage"]["uri"] == ptr["artifacts"]["runUri"]

    # kubectl get meval: the latest and the best point, as the manifest has them.
    best = min(points, key=lambda p: (p["perplexity"], p["step"]))
    row = get_meval(cluster, name, ns)
    assert row["PHASE"] == "Succeeded" and row["CHECKPOINT"] == f"step-{STEPS[-1]}"
    assert float(row["LATEST"]) == round(points[-1]["perplexity"], 4)
    assert float(row["BEST"]) == round(best["perplexity"], 4) and row["BEST-CHECKPOINT"] == best["checkpoint"]
    assert st["artifacts"]["curveUri"] == f"{st['artifacts']['runUri']}/curve.jsonl"
    print(f"curve of {len(points)} points ({[round(p['perplexity'], 1) for p in points]}) in {elapsed:.1f}s; "
          f"progress.checkpoints seen {seen}")
