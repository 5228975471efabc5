"""KGHarvest with several workers on the real control plane: the operator's Indexed Job (one
relation per index) is accepted by the real apiserver, the scheduler places its pods on the pool,
each pod carries its completion index, and the harvest completes when KWOK exits every index."""

from __future__ import annotations

from test_kinds import job_kind, pods_of_job
from test_lifecycle import cond, wait_phase


def test_kgharvest_with_workers_runs_as_an_indexed_job_one_relation_per_index(cluster, operator, namespace):
    d = job_kind("kgharvest-gpu.yaml", "kgi", namespace, "h100")
    d["spec"]["resources"]["workers"] = 2
    cluster.apply(d)
    wait_phase(cluster, "kgharvest", "kgi", namespace, "Succeeded")
    job = cluster.get("job", "kgi-a0", namespace)
    relations = len(d["spec"]["relations"])
    assert job["spec"]["completionMode"] == "Indexed"
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (relations, 2)
    assert job["status"].get("succeeded") == relations
    pods = pods_of_job(cluster, namespace, "kgi-a0")
    indexes = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods}
    assert indexes == {str(i) for i in range(relations)}
    assert all(p["spec"]["nodeName"].startswith("h100") for p in pods)
    assert cond(cluster.get("kgharvest", "kgi", namespace), "Complete")["status"] == "True"
