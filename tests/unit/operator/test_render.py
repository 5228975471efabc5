"""Table tests of the pure renderers: every backend, placement, names, Kueue, priority, errors."""

from __future__ import annotations

import pytest

from glassbox_api.constants import LABEL_UID
from glassbox_operator.context import STAGE_SERVE, STAGE_TRAIN, Plan
from glassbox_operator.naming import child_name
from glassbox_operator.render import RenderError, render
from glassbox_operator.render.common import QUEUE_LABEL, SPEC_FILE

from opkit import UID, config, ctx, example, resource

PRETRAIN = example("pretrain-gpu.yaml")
for _k in ("acceleratorsPerWorker", "queueName", "priorityClassName"):
    PRETRAIN["spec"]["resources"].pop(_k, None)
FINETUNE_TPU = example("finetune-tpu.yaml")
SCORER = example("scorer-gpu.yaml")


def kinds(children):
    return [c["kind"] for c in children]


def pod(child):
    """The pod spec of a workload child, whatever its backend."""
    k = child["kind"]
    if k == "Job":
        return child["spec"]["template"]["spec"]
    if k == "JobSet":
        return child["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    if k == "RayJob":
        return child["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    if k == "InferenceService":
        return child["spec"]["predictor"]
    raise AssertionError(k)


@pytest.mark.parametrize(
    "backend,workers,accel,want_kinds,want_selector,want_limit",
    [
        ("job", 1, "h100", ["ConfigMap", "Job"], {"glassbox.dev/pool": "h100"}, ("nvidia.com/gpu", "8")),
        ("job", 1, None, ["ConfigMap", "Job"], {"glassbox.dev/pool": "cpu"}, None),
        ("ray", 4, "h100", ["ConfigMap", "RayJob"], {"glassbox.dev/pool": "h100"}, ("nvidia.com/gpu", "8")),
        ("jobset", 2, "h100", ["ConfigMap", "JobSet"], {"glassbox.dev/pool": "h100"}, ("nvidia.com/gpu", "8")),
        ("jobset", 8, "tpu-v5e-16", ["ConfigMap", "JobSet"], {"cloud.google.com/gke-tpu-topology": "4x4"}, ("google.com/tpu", "4")),
        ("local", 1, None, ["LocalProcess"], None, None),
    ],
)
def test_backends_place_workers_on_their_pool(backend, workers, accel, want_kinds, want_selector, want_limit):
    res = resource(PRETRAIN, resources__backend=backend, resources__workers=workers, resources__accelerator=accel,
                   resources__priorityClassName=None, resources__queueName="team-a")
    children = render(ctx(res))
    assert kinds(children) == want_kinds
    for c in children:
        assert c["metadata"]["labels"][LABEL_UID] == UID
        if c["kind"] != "LocalProcess":
            (owner,) = c["metadata"]["ownerReferences"]
            assert owner["uid"] == UID and owner["controller"] is True and owner["kind"] == "PretrainRun"
    wl = children[-1]
    if want_selector is None:
        assert wl["spec"]["argv"][:4] == ["python", "-m", "glassbox_workloads", "pretrainrun"]
        return
    assert wl["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert QUEUE_LABEL not in children[0]["metadata"]["labels"]  # the ConfigMap is not a workload
    spec = pod(wl)
    for k, v in want_selector.items():
        assert spec["nodeSelector"][k] == v
    limits = spec["containers"][0]["resources"]["limits"]
    if want_limit:
        assert limits[want_limit[0]] == want_limit[1]
        assert spec["tolerations"][0]["key"] == want_limit[0]
    else:
        assert not any("/" in k for k in limits)
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["GLASSBOX_STORE"]["value"] == "s3://llm360-runs/runs"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "AWS_SECRET_ACCESS_KEY"
    assert "value" not in env["AWS_ACCESS_KEY_ID"]  # credentials only by reference
    assert {"name": "spec", "configMap": {"name": "r-spec"}} in spec["volumes"]


def test_ray_head_on_cpu_workers_on_gpus_and_entrypoint():
    res = resource(PRETRAIN, resources__backend="ray", resources__workers=4, resources__priorityClassName=None)
    rj = render(ctx(res))[-1]
    cluster = rj["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]
    assert head["nodeSelector"] == {"glassbox.dev/pool": "cpu"}
    # The head runs the driver: the config's rayHead size, not the worker's cpu/memory.
    assert head["containers"][0]["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    group = cluster["workerGroupSpecs"][0]
    worker = group["template"]["spec"]["containers"][0]["resources"]
    assert worker["requests"]["memory"] == str(res.spec.resources.memory) != "8Gi"
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 4
    assert rj["spec"]["entrypoint"] == f"python -m glassbox_workloads pretrainrun --spec {SPEC_FILE}"
    assert rj["spec"]["shutdownAfterJobFinishes"] is True
    # the head takes no task of the run: its workers go to the worker group
    assert cluster["headGroupSpec"]["rayStartParams"] == {"num-cpus": "0", "num-gpus": "0"}


def test_ray_pods_carry_http_probes_on_rays_health_endpoints_so_the_image_needs_no_wget():
    # KubeRay's default probes exec `wget` in the Ray container; it keeps probes the template sets.
    rj = render(ctx(resource(PRETRAIN, resources__backend="ray", resources__workers=2)))[-1]
    cluster = rj["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert head["readinessProbe"]["httpGet"] == {"port": 8265, "path": "/api/gcs_healthz"}
    for c in (head, worker):
        assert c["livenessProbe"]["httpGet"] == {"port": 52365, "path": "/api/local_raylet_healthz"}
        assert "exec" not in c["livenessProbe"] and "exec" not in c["readinessProbe"]
    assert worker["readinessProbe"]["httpGet"] == {"port": 52365, "path": "/api/local_raylet_healthz"}
    assert (head["readinessProbe"]["timeoutSeconds"], worker["readinessProbe"]["timeoutSeconds"]) == (5, 2)


def test_ray_head_size_comes_from_the_config():
    from glassbox_operator.config import parse_config

    cfg = config()
    cfg = cfg.model_copy(update={"defaults": parse_config({"defaults": {"rayHead": {"cpu": 4, "memory": "16Gi"}}}).defaults})
    rj = render(ctx(resource(PRETRAIN, resources__backend="ray"), cfg))[-1]
    head = rj["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["resources"] == {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}


def test_jobset_tpu_one_replicated_job_per_slice_with_exclusive_topology():
    res = resource(FINETUNE_TPU, resources__workers=8, resources__priorityClassName=None)
    js = render(ctx(res))[-1]
    (rjob,) = js["spec"]["replicatedJobs"]
    assert (rjob["name"], rjob["replicas"]) == ("slice", 2)
    assert rjob["template"]["spec"]["parallelism"] == rjob["template"]["spec"]["completions"] == 4
    assert rjob["template"]["spec"]["completionMode"] == "Indexed"
    assert rjob["template"]["metadata"]["annotations"]["alpha.jobset.sigs.k8s.io/exclusive-topology"] == "cloud.google.com/gke-nodepool"
    env = {e["name"]: e for e in pod(js)["containers"][0]["env"]}
    assert env["GLASSBOX_NUM_PROCESSES"]["value"] == "8" and env["GLASSBOX_PODS_PER_JOB"]["value"] == "4"
    assert "jobset-name" in env["JOBSET_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]


def test_jobset_torch_multinode_uses_torchrun_on_node_zero():
    res = resource(PRETRAIN, resources__backend="jobset", resources__workers=2, resources__priorityClassName=None)
    js = render(ctx(res))[-1]
    cmd = pod(js)["containers"][0]["command"]
    assert cmd[0] == "torchrun" and "--nnodes=2" in cmd and "--nproc-per-node=8" in cmd
    assert "--master-addr=r-a0-workers-0-0.r-a0" in cmd
    assert cmd[-4:] == ["glassbox_workloads", "pretrainrun", "--spec", SPEC_FILE]


def test_serving_isvc_storage_uri_and_service_account():
    res = resource(SCORER, resources__priorityClassName=None, replicas=3)
    children = render(ctx(res))
    assert kinds(children) == ["ConfigMap", "ServiceAccount", "InferenceService"]
    sa, isvc = children[1], children[2]
    assert sa["secrets"] == [{"name": res.spec.storage.secret_ref.name}]
    pred = isvc["spec"]["predictor"]
    assert pred["serviceAccountName"] == sa["metadata"]["name"]
    assert pred["minReplicas"] == pred["maxReplicas"] == 3
    env = {e["name"]: e.get("value") for e in pred["containers"][0]["env"]}
    assert env["STORAGE_URI"] == res.spec.model.uri
    assert pred["nodeSelector"]["glassbox.dev/pool"] == "h100"


def test_dialogbot_trains_then_serves():
    doc = example("dialogbot-gpu.yaml")
    res = resource(doc, training__resources__priorityClassName=None, serving__resources__priorityClassName=None)
    train = render(ctx(res, plan=Plan(stage=STAGE_TRAIN)))
    # one run per training spec: the Job names it (`r-train-<run8>-a0`), like the run folder
    run8 = ctx(res).run_id[:8]
    assert kinds(train) == ["ConfigMap", "Job"] and train[-1]["metadata"]["name"] == f"r-train-{run8}-a0"
    serve = render(ctx(res, plan=Plan(stage=STAGE_SERVE), model_uri="s3://b/run/checkpoints/00000010"))
    assert kinds(serve)[-1] == "InferenceService"
    env = {e["name"]: e.get("value") for e in pod(serve[-1])["containers"][0]["env"]}
    assert env["STORAGE_URI"] == "s3://b/run/checkpoints/00000010"


def test_from_run_is_replaced_by_the_resolved_uri_in_the_mounted_spec():
    doc = example("finetune-tpu.yaml")
    res = resource(doc, model={"fromRun": {"kind": "PretrainRun", "name": "amber", "checkpoint": "step-10"}}, resources__priorityClassName=None)
    cm = render(ctx(res, model_uri="s3://b/amber/checkpoints/00000010"))[0]
    import json

    model = json.loads(cm["data"]["resource.yaml"])["spec"]["model"]
    assert model == {"uri": "s3://b/amber/checkpoints/00000010"}


def test_priority_class_and_queue_default_from_config():
    cfg = config()
    cfg = cfg.model_copy(update={"defaults": cfg.defaults.model_copy(update={"queue_name": "default-q", "priority_class_name": "batch-low"})})
    res = resource(PRETRAIN, resources__backend="job", resources__workers=1, resources__priorityClassName=None)
    job = render(ctx(res, cfg))[-1]
    assert job["metadata"]["labels"][QUEUE_LABEL] == "default-q"
    assert pod(job)["priorityClassName"] == "batch-low"
    res2 = resource(PRETRAIN, resources__backend="job", resources__workers=1, resources__priorityClassName="urgent")
    assert pod(render(ctx(res2, cfg))[-1])["priorityClassName"] == "urgent"


@pytest.mark.parametrize("backend,workers,accel", [("job", 1, None), ("ray", 2, "h100"), ("jobset", 4, "tpu-v5e-16")])
def test_pod_annotations_from_config_on_every_workload_pod_template(backend, workers, accel):
    cfg = config()
    cfg = cfg.model_copy(update={"defaults": cfg.defaults.model_copy(update={"pod_annotations": {"example.com/a": "1"}})})
    res = resource(PRETRAIN, resources__backend=backend, resources__workers=workers, resources__accelerator=accel)
    wl = render(ctx(res, cfg))[-1]
    if backend == "job":
        templates = [wl["spec"]["template"]]
    elif backend == "ray":
        rc = wl["spec"]["rayClusterSpec"]
        templates = [rc["headGroupSpec"]["template"], *(g["template"] for g in rc["workerGroupSpecs"])]
    else:
        templates = [rj["template"]["spec"]["template"] for rj in wl["spec"]["replicatedJobs"]]
    assert templates and all(t["metadata"]["annotations"]["example.com/a"] == "1" for t in templates)
    assert "annotations" not in render(ctx(res))[-1]["spec"].get("template", {}).get("metadata", {})


def test_render_is_deterministic_and_teardown_renders_nothing():
    res = resource(PRETRAIN, resources__priorityClassName=None)
    assert render(ctx(res)) == render(ctx(res))
    assert render(ctx(res, plan=Plan(teardown=True))) == []
    assert render(ctx(res, plan=Plan(attempt=3)))[-1]["metadata"]["name"] == "r-a3"


@pytest.mark.parametrize(
    "updates,cfg,reason",
    [
        ({"resources__accelerator": "a100"}, None, "UnknownNodePool"),
        ({"resources__acceleratorsPerWorker": 16}, None, "TooManyAccelerators"),
        ({"resources__backend": "jobset", "resources__workers": 3, "resources__accelerator": "tpu-v5e-16"}, None, "UnsupportedTopology"),
        ({"resources__backend": "job", "resources__workers": 1, "resources__accelerator": "tpu-v5e-16"}, None, "UnsupportedTopology"),
        ({"storage": {}}, {"endpoint": ""}, "NoArtifactStore"),
    ],
)
def test_render_errors_name_a_reason(updates, cfg, reason):
    res = resource(PRETRAIN, resources__priorityClassName=None, **updates)
    with pytest.raises(RenderError) as err:
        render(ctx(res, config(**cfg) if cfg else None))
    assert err.value.reason == reason and err.value.message


def test_local_backend_needs_no_store_endpoint():
    res = resource(PRETRAIN, storage={}, resources__backend="local", resources__workers=1, resources__accelerator=None)
    (proc,) = render(ctx(res, config(endpoint="")))
    assert proc["spec"]["env"]["GLASSBOX_STORE"] == "glassbox-runs"


@pytest.mark.parametrize(
    "name,suffix,max_len",
    [("tiny", "a0", 40), ("x" * 253, "a12", 40), ("a.b.c", "spec", 63), ("9lives", "", 40), ("y" * 60, "train-a1", 40)],
)
def test_child_names_are_dns_labels_within_limits(name, suffix, max_len):
    import re

    n = child_name(name, suffix, max_len)
    assert len(n) <= max_len and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", n)
    assert n == child_name(name, suffix, max_len)
    assert n.endswith(suffix)


def test_long_names_sharing_a_prefix_do_not_collide():
    a, b = "p" * 100 + "-one", "p" * 100 + "-two"
    assert child_name(a, "a0") != child_name(b, "a0")
    assert child_name("a.b", "a0") != child_name("a-b", "a0")
