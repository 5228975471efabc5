"""GitOps health of real objects: glassbox resources driven by the real operator on the test cluster,
read in each situation by Flux's kstatus and by Argo CD's way of running the chart's health script
(both through hack/gitops' glassbox-health, tests/support/gitops.py). Children's outcomes come as in
the other operator tests: KWOK exits the Job pods (this module's operator puts
`glassbox.dev/kwok-exit: "4"`, a permanent failure, on every workload pod), and the status of the
RayJob / InferenceService children is patched as KubeRay / Kueue / KServe would write it.

Also: examples/gitops/ validated against the real Flux and Argo CD CRDs (server-side dry run)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from conftest import GLASSBOX, ROOT, exiting_operator
from test_lifecycle import NOW, example, patch_status, pretrain
from tests.support import gitops

EXIT_CODE = "4"  # ExitCode.BAD_INPUT: permanent, so the run is Failed for good at once
RESULTS: dict[str, dict[str, str]] = {}
"""situation -> what both tools said (printed as one table at the end of the module)."""


@pytest.fixture(scope="module")
def gitops_ns(cluster, s3, tmp_path_factory):
    """A namespace with an operator of its own (namespaced, every workload pod exits with 4)."""
    gitops.health_binary()  # built before the clock starts on any situation
    with exiting_operator(cluster, s3, tmp_path_factory, "opg", EXIT_CODE) as (op, ns):
        yield op, ns
    if RESULTS:
        print("\nGitOps health of real objects (tests/cluster/operator/test_gitops.py):\n"
              + gitops.table(RESULTS.items()))


def scorer(name: str, ns: str, suspend: bool = False) -> dict:
    d = example("scorer-gpu.yaml")
    d["metadata"] = {"name": name, "namespace": ns}
    d["spec"]["resources"].pop("priorityClassName", None)
    d["spec"]["replicas"] = 1
    d["spec"]["suspend"] = suspend
    return d


def ask(cluster, kind: str, name: str, ns: str) -> tuple[dict, dict[str, str]]:
    """One snapshot of the object and what both tools say about that same snapshot (Argo CD with
    the argocd-cm snippet users install, examples/gitops/argocd/argocd-cm.yaml)."""
    obj = cluster.get(kind, name, ns)
    assert obj is not None, f"{kind}/{name} is gone"
    return obj, gitops.health([obj], argocd_cm=gitops.ARGOCD_CM)[0]


def expect(cluster, situation: str, kind: str, name: str, ns: str, ready, want: tuple[str, str], timeout: float = 90) -> dict:
    """Wait until the object is in the situation (ready(obj) is true), then assert both tools' verdict
    on that snapshot and record it."""
    def seen():
        obj, said = ask(cluster, kind, name, ns)
        return ready(obj) and (obj, said)

    obj, said = cluster.wait_for(seen, timeout=timeout, what=f"{kind}/{name}: {situation}")
    RESULTS[situation] = {**said, "why": deciding(obj)}
    detail = json.dumps({"said": said, "status": obj.get("status"), "generation": obj["metadata"].get("generation")}, indent=1)
    assert (said["kstatus"], said["argo"]) == want, f"{situation}: {detail}"
    return obj


def phase_is(*phases: str):
    return lambda o: (o.get("status") or {}).get("phase") in phases and observed(o)


def observed(o: dict) -> bool:
    return (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]


def deciding(o: dict) -> str:
    """phase/reason of the condition both tools decided on (for the printed table)."""
    st = o.get("status") or {}
    if st.get("observedGeneration") != o["metadata"]["generation"]:
        return f"{st.get('phase')}/observedGeneration {st.get('observedGeneration')} < {o['metadata']['generation']}"
    c = next((cond(o, t) for t in ("Stalled", "Reconciling", "Ready") if cond(o, t).get("status") == "True"), {})
    return f"{st.get('phase')}/{c.get('type')}={c.get('reason')}"


def cond(o: dict, ctype: str) -> dict:
    return next((c for c in (o.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def ray_run(cluster, name: str, ns: str) -> None:
    cluster.apply(pretrain(name, ns, "ray", 1, "h100", retries=0))
    cluster.wait_for(lambda: cluster.get("rayjob", f"{name}-a0", ns), what=f"RayJob {name}-a0")


def test_children_being_created(cluster, gitops_ns):
    """A RayJob created, KubeRay has not reported on it yet."""
    op, ns = gitops_ns
    ray_run(cluster, "creating", ns)
    expect(cluster, "children being created", "pretrainrun", "creating", ns, phase_is("Pending"), ("InProgress", "Progressing"))


def test_queued_by_kueue(cluster, gitops_ns):
    """Kueue holds the RayJob suspended; KubeRay reports jobDeploymentStatus Suspended."""
    op, ns = gitops_ns
    ray_run(cluster, "queued", ns)
    cluster.kubectl("patch", "rayjob", "queued-a0", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    patch_status(cluster, "rayjob", "queued-a0", ns, {"jobDeploymentStatus": "Suspended"})
    obj = expect(cluster, "queued by Kueue", "pretrainrun", "queued", ns,
                 lambda o: phase_is("Pending")(o) and "Kueue" in json.dumps(o["status"]), ("InProgress", "Progressing"))
    assert cond(obj, "Reconciling").get("reason") == "Queued", obj["status"]


def test_running(cluster, gitops_ns):
    op, ns = gitops_ns
    ray_run(cluster, "running", ns)
    patch_status(cluster, "rayjob", "running-a0", ns, {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"})
    expect(cluster, "running", "pretrainrun", "running", ns, phase_is("Running"), ("Current", "Healthy"))


def test_succeeded(cluster, gitops_ns):
    op, ns = gitops_ns
    ray_run(cluster, "done", ns)
    patch_status(cluster, "rayjob", "done-a0", ns, {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete", "endTime": NOW})
    obj = expect(cluster, "succeeded", "pretrainrun", "done", ns, phase_is("Succeeded"), ("Current", "Healthy"))
    assert cond(obj, "Complete").get("status") == "True", obj["status"]


def test_retrying_after_a_transient_failure(cluster, gitops_ns):
    """The attempt's RayJob failed (as KubeRay reports it); the operator backs off before the next
    attempt: still working toward the spec, not failed."""
    op, ns = gitops_ns
    d = pretrain("retrying", ns, "ray", 1, "h100")
    d["spec"]["failurePolicy"] = {"maxRetries": 2, "backoffSeconds": 600}
    cluster.apply(d)
    cluster.wait_for(lambda: cluster.get("rayjob", "retrying-a0", ns), what="RayJob retrying-a0")
    patch_status(cluster, "rayjob", "retrying-a0", ns, {"jobStatus": "FAILED", "jobDeploymentStatus": "Failed", "endTime": NOW,
                                                        "reason": "AppFailed", "message": "ray job failed"})
    obj = expect(cluster, "retrying after a transient failure", "pretrainrun", "retrying", ns,
                 lambda o: phase_is("Pending")(o) and cond(o, "Reconciling").get("reason") not in (None, "Creating"),
                 ("InProgress", "Progressing"))
    assert cond(obj, "Stalled").get("status") == "False", obj["status"]


def test_failed_for_good(cluster, gitops_ns):
    """The Job's pod exits with 4 (bad input, permanent): no retry can help."""
    op, ns = gitops_ns
    d = pretrain("broken", ns, "job", 1, None, retries=2)
    cluster.apply(d)
    obj = expect(cluster, "failed for good", "pretrainrun", "broken", ns, phase_is("Failed"), ("Failed", "Degraded"), timeout=120)
    assert cond(obj, "Stalled").get("status") == "True", obj["status"]


def test_invalid_spec(cluster, gitops_ns):
    """A node pool this operator does not have: refused, terminal."""
    op, ns = gitops_ns
    cluster.apply(pretrain("nopool", ns, "job", 1, "a100"))
    obj = expect(cluster, "invalid spec", "pretrainrun", "nopool", ns, phase_is("Failed"), ("Failed", "Degraded"))
    assert cond(obj, "Stalled").get("reason") == "UnknownNodePool", obj["status"]


def test_suspended(cluster, gitops_ns):
    op, ns = gitops_ns
    cluster.apply(scorer("resting", ns, suspend=True))
    expect(cluster, "suspended", "scorerservice", "resting", ns, phase_is("Suspended"), ("Current", "Suspended"))


def test_serving(cluster, gitops_ns):
    op, ns = gitops_ns
    cluster.apply(scorer("serving", ns))
    cluster.wait_for(lambda: cluster.get("inferenceservice", "serving", ns), what="InferenceService")
    patch_status(cluster, "inferenceservice", "serving", ns,
                 {"url": f"http://serving.{ns}.example.com", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}]})
    expect(cluster, "serving", "scorerservice", "serving", ns, phase_is("Ready"), ("Current", "Healthy"))


def test_spec_just_changed(cluster, gitops_ns):
    """The spec changes while the operator is down (as right after a sync): both tools wait for the
    operator to observe the new generation, and go back to Healthy once it has."""
    op, ns = gitops_ns
    ray_run(cluster, "changed", ns)
    patch_status(cluster, "rayjob", "changed-a0", ns, {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"})
    expect(cluster, "running (before the change)", "pretrainrun", "changed", ns, phase_is("Running"), ("Current", "Healthy"))
    op.kill()
    try:
        cluster.kubectl("patch", "pretrainrun", "changed", "-n", ns, "--type=merge", "-p",
                        '{"spec":{"failurePolicy":{"maxRetries":1,"backoffSeconds":1}}}')
        obj = expect(cluster, "spec just changed", "pretrainrun", "changed", ns,
                     lambda o: o["metadata"]["generation"] == 2, ("InProgress", "Progressing"), timeout=10)
        assert obj["status"]["observedGeneration"] == 1
        assert RESULTS["spec just changed"]["argoMessage"] == "waiting for the operator to observe generation 2"
    finally:
        op.start()
    expect(cluster, "spec change observed", "pretrainrun", "changed", ns, phase_is("Running"), ("Current", "Healthy"))


# ---- examples/gitops/ against the real Flux and Argo CD CRDs ---------------------------------------

@pytest.fixture(scope="module")
def gitops_crds(cluster):
    """Flux's Kustomization and GitRepository and Argo CD's Application CRDs, from their Go modules."""
    names = []
    for d in gitops.crd_dirs():
        for f in sorted(d.glob("*.yaml")):
            cluster.apply(f.read_text(), force_conflicts=True)
            names += [doc["metadata"]["name"] for doc in yaml.safe_load_all(f.read_text()) if doc]
    for name in names:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return names


def dry_run(cluster, docs: list[dict], ns: str) -> subprocess.CompletedProcess[str]:
    for d in docs:
        d["metadata"]["namespace"] = ns  # flux-system / argocd / research do not exist here
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs), check=False)


def test_examples_pass_the_real_flux_and_argocd_schemas(cluster, gitops_ns, gitops_crds):
    op, ns = gitops_ns
    assert {"kustomizations.kustomize.toolkit.fluxcd.io", "gitrepositories.source.toolkit.fluxcd.io",
            "applications.argoproj.io"} <= set(gitops_crds)
    files = sorted((gitops.EXAMPLES / "flux").glob("*.yaml")) + sorted((gitops.EXAMPLES / "argocd").glob("*.yaml"))
    for f in files:
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        proc = dry_run(cluster, docs, ns)
        assert proc.returncode == 0, f"{f.relative_to(ROOT)}: {proc.stderr}"
    built = cluster.kubectl("kustomize", str(gitops.EXAMPLES / "experiments")).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    assert {d["kind"] for d in docs} == {"PretrainRun", "MetricEval", "ScorerService"}
    proc = dry_run(cluster, docs, ns)
    assert proc.returncode == 0, proc.stderr
    resources = [p for p in sorted((gitops.EXAMPLES / "experiments").glob("*.yaml")) if p.name != "kustomization.yaml"]
    ok = subprocess.run([GLASSBOX, "validate", *map(str, resources)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert ok.returncode == 0 and ok.stdout.count("ok ") == len(resources), ok.stdout


def test_the_crds_do_refuse_a_broken_flux_kustomization(cluster, gitops_ns, gitops_crds):
    """The dry run above means something: a Kustomization without its sourceRef, or with a string
    for `wait`, is refused by the real schema, naming the field."""
    op, ns = gitops_ns
    good = yaml.safe_load((gitops.EXAMPLES / "flux" / "experiments.yaml").read_text())
    no_source = json.loads(json.dumps(good))
    del no_source["spec"]["sourceRef"]
    bad_wait = json.loads(json.dumps(good))
    bad_wait["spec"]["wait"] = "yes"
    for bad, field in ((no_source, "sourceRef"), (bad_wait, "wait")):
        proc = dry_run(cluster, [bad], ns)
        assert proc.returncode != 0 and field in proc.stderr, proc.stderr
