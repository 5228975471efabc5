"""Secure by default (issue 17), in the pure renderers and one reconcile pass: every workload pod
passes `restricted` (GPU/TPU, every backend, KubeRay's submitter, the serving predictor), the local
backend is refused unless configured, a spec's other endpoint gets no configured credentials, and
the operator's own credentials come from where its configuration says."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from glassbox_api.store import StoreError
from glassbox_operator.config import WorkloadPodSecurity
from glassbox_operator.context import STAGE_SERVE, Plan
from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.render import RenderError, render
from glassbox_operator.render.common import store_target
from glassbox_operator.storecreds import StoreCredentials
from tests.support.podsecurity import pod_templates, restricted_violations

from opkit import config, ctx, example, resource
from test_localrunner import child, until
from test_reconcile_errors import FakeKube, body, cond, reconciler

PRETRAIN = example("pretrain-gpu.yaml")
for _k in ("acceleratorsPerWorker", "queueName", "priorityClassName"):
    PRETRAIN["spec"]["resources"].pop(_k, None)

CASES = [
    ("job-cpu", PRETRAIN, {"resources__backend": "job", "resources__workers": 1, "resources__accelerator": None}, None),
    ("job-gpu", PRETRAIN, {"resources__backend": "job", "resources__workers": 1, "resources__accelerator": "h100"}, None),
    ("jobset-gpu", PRETRAIN, {"resources__backend": "jobset", "resources__workers": 2, "resources__accelerator": "h100"}, None),
    ("ray-gpu", PRETRAIN, {"resources__backend": "ray", "resources__workers": 2, "resources__accelerator": "h100"}, None),
    ("jobset-tpu", example("finetune-tpu.yaml"), {}, None),
    ("scorer-serving", example("scorer-gpu.yaml"), {}, STAGE_SERVE),
    ("dialogbot-serving", example("dialogbot-gpu.yaml"), {}, STAGE_SERVE),
]


def templates(doc, updates, stage, cfg=None):
    res = resource(doc, **updates)
    plan = Plan(stage=stage) if stage else None
    children = render(ctx(res, cfg, plan))
    return [t for c in children for t in pod_templates(c)]


@pytest.mark.parametrize("doc,updates,stage", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_workload_pod_passes_restricted(doc, updates, stage):
    found = templates(doc, updates, stage)
    assert found
    for where, tpl in found:
        spec = tpl["spec"]
        assert restricted_violations(spec) == [], where
        assert spec["securityContext"]["runAsUser"] == 65532 and spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False, where
        scratch = next(v for v in spec["volumes"] if v["name"] == "scratch")
        assert scratch == {"name": "scratch", "emptyDir": {}}
        for c in spec["containers"]:
            assert {"name": "scratch", "mountPath": "/tmp"} in c["volumeMounts"], where
            assert {"name": "HOME", "value": "/tmp"} in c["env"], where


def test_ray_job_submitter_is_hardened_and_carries_no_store_access():
    found = dict(templates(PRETRAIN, dict(CASES[3][2]), None))
    sub = next(v for k, v in found.items() if k.endswith("/submitter"))["spec"]
    (c,) = sub["containers"]
    assert c["name"] == "ray-job-submitter" and "command" not in c  # KubeRay fills in `ray job submit`
    assert not [e for e in c["env"] if e["name"].startswith(("AWS_", "GLASSBOX_S3"))]
    assert sub["nodeSelector"] == {"glassbox.dev/pool": "cpu"} and sub["restartPolicy"] == "Never"


def test_pod_security_settings_come_from_the_configuration():
    base = config()
    pods = WorkloadPodSecurity(run_as_user=1000, run_as_group=100, fs_group=None, scratch_size_limit="20Gi",
                               automount_service_account_token=True)
    cfg = base.model_copy(update={"security": base.security.model_copy(update={"workload_pods": pods})})
    (where, tpl), = templates(PRETRAIN, dict(CASES[1][2]), None, cfg)
    spec = tpl["spec"]
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["automountServiceAccountToken"] is True
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}} in spec["volumes"]


def test_restricted_can_be_turned_off_for_clusters_that_need_it():
    base = config()
    pods = WorkloadPodSecurity(restricted=False)
    cfg = base.model_copy(update={"security": base.security.model_copy(update={"workload_pods": pods})})
    (where, tpl), = templates(PRETRAIN, dict(CASES[1][2]), None, cfg)
    assert "securityContext" not in tpl["spec"] and "securityContext" not in tpl["spec"]["containers"][0]
    assert restricted_violations(tpl["spec"])  # the checker sees the difference


def test_run_as_root_is_refused_by_the_configuration():
    with pytest.raises(ValueError):
        WorkloadPodSecurity(run_as_user=0)


# ---- the local backend ------------------------------------------------------------------------
def test_local_backend_is_refused_by_default():
    res = resource(PRETRAIN, resources__backend="local", resources__workers=1, resources__accelerator=None)
    with pytest.raises(RenderError) as err:
        render(ctx(res, config(allow_local=False)))
    assert err.value.reason == "LocalBackendDisabled" and "security.allowLocalBackend" in err.value.message
    assert [c["kind"] for c in render(ctx(res, config(allow_local=True)))] == ["LocalProcess"]


def test_local_serving_is_refused_by_default():
    doc = example("dialogbot-gpu.yaml")
    res = resource(doc, serving__resources__backend="local", serving__resources__accelerator=None)
    with pytest.raises(RenderError) as err:
        render(ctx(res, config(allow_local=False), Plan(stage=STAGE_SERVE)))
    assert err.value.reason == "LocalBackendDisabled"


def test_a_local_default_backend_is_refused_too():
    base = config(allow_local=False)
    cfg = base.model_copy(update={"defaults": base.defaults.model_copy(update={"backend": "local"})})
    res = resource(PRETRAIN, resources__accelerator=None)
    res.spec.resources.model_fields_set.discard("backend")
    with pytest.raises(RenderError) as err:
        render(ctx(res, cfg))
    assert err.value.reason == "LocalBackendDisabled"


def test_local_backend_refusal_is_stalled_with_an_event(tmp_path):
    r = reconciler(FakeKube(), tmp_path, endpoint="127.0.0.1:9")
    r.config = r.config.model_copy(update={"security": r.config.security.model_copy(update={"allow_local_backend": False})})
    res = r.reconcile(body(backend="local", accelerator=None))
    assert res.status["phase"] == "Failed"
    stalled = cond(res.status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "LocalBackendDisabled"
    assert [(e.type, e.reason) for e in res.events] == [("Warning", "LocalBackendDisabled")]
    assert r.kube.objs == {}  # nothing created


# ---- store endpoints ----------------------------------------------------------------------------
def test_another_endpoint_without_its_own_secret_is_refused():
    res = resource(PRETRAIN, storage={"endpoint": "https://other.example:443"})
    with pytest.raises(RenderError) as err:
        store_target(ctx(res, config(endpoint="minio.storage:9000")))
    assert err.value.reason == "EndpointNeedsCredentials" and "spec.storage.secretRef" in err.value.message


def test_plain_http_to_the_configured_https_endpoint_is_another_endpoint():
    res = resource(PRETRAIN, storage={"endpoint": "http://minio.storage:9000"})
    with pytest.raises(RenderError):
        store_target(ctx(res, config(endpoint="minio.storage:9000", secure=True)))
    same = resource(PRETRAIN, storage={"endpoint": "https://MINIO.storage:9000"})
    t = store_target(ctx(same, config(endpoint="minio.storage:9000", secure=True)))
    assert t.configured and t.secret == "glassbox-storage"


def test_another_endpoint_with_its_own_secret_uses_only_that_secret():
    res = resource(PRETRAIN, storage={"endpoint": "https://other.example:443", "secretRef": {"name": "mine"}},
                   resources__backend="job", resources__workers=1)
    c = ctx(res, config(endpoint="minio.storage:9000"))
    t = store_target(c)
    assert not t.configured and t.secret == "mine" and t.endpoint == "other.example:443"
    job = render(c)[-1]
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]}
    assert refs == {"mine"}


def test_foreign_endpoint_refusal_is_stalled(tmp_path):
    r = reconciler(FakeKube(), tmp_path, endpoint="127.0.0.1:9")
    doc = body()
    doc["spec"]["storage"] = {"endpoint": "https://other.example"}
    res = r.reconcile(doc)
    stalled = cond(res.status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "EndpointNeedsCredentials"
    assert r.kube.objs == {}


# ---- the operator's own credentials --------------------------------------------------------------
def secret(access: str, secret_key: str) -> dict:
    enc = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return {"data": {"AWS_ACCESS_KEY_ID": enc(access), "AWS_SECRET_ACCESS_KEY": enc(secret_key)}}


class SecretKube:
    def __init__(self, secrets: dict, forbid: bool = False):
        self.secrets, self.forbid, self.reads = secrets, forbid, 0

    def get(self, api_version, kind, namespace, name):
        assert (api_version, kind) == ("v1", "Secret")
        self.reads += 1
        if self.forbid:
            raise ApiException(status=403, reason="Forbidden")
        return self.secrets.get((namespace, name))


ENV = {"AWS_ACCESS_KEY_ID": "ENV-KEY", "AWS_SECRET_ACCESS_KEY": "env-secret", "GLASSBOX_S3_CREDENTIALS_DIR": "/nonexistent"}


def creds_config(secret_name: str = ""):
    base = config(endpoint="minio.storage:9000", operator_credentials_secret=secret_name)
    return base.model_copy(update={"operator_namespace": "glassbox-system"})


def test_configured_endpoint_uses_the_operators_secret_read_through_the_api():
    kube = SecretKube({("glassbox-system", "op-s3"): secret("OP-KEY", "op-secret")})
    now = [0.0]
    sc = StoreCredentials(kube, creds_config("op-s3"), env=ENV, clock=lambda: now[0])
    t = store_target(ctx(resource(PRETRAIN, storage={}), sc.config))
    s = sc.settings("team", t)
    assert (s.endpoint, s.access_key, s.secret_key.get_secret_value()) == ("minio.storage:9000", "OP-KEY", "op-secret")
    sc.settings("team", t)
    assert kube.reads == 1  # cached
    now[0] = 31.0
    sc.settings("team", t)
    assert kube.reads == 2  # read again: a rotated key is picked up


def test_without_a_configured_secret_the_environment_serves_the_configured_endpoint_only():
    sc = StoreCredentials(SecretKube({}), creds_config(), env=ENV)
    t = store_target(ctx(resource(PRETRAIN, storage={}), sc.config))
    assert sc.settings("team", t).access_key == "ENV-KEY"
    foreign = resource(PRETRAIN, storage={"endpoint": "https://other.example", "secretRef": {"name": "theirs"}})
    kube = SecretKube({("team", "theirs"): secret("THEIR-KEY", "their-secret")})
    sc = StoreCredentials(kube, creds_config(), env=ENV)
    s = sc.settings("team", store_target(ctx(foreign, sc.config)))
    assert s.endpoint == "other.example" and s.access_key == "THEIR-KEY"


def test_an_unreadable_secret_is_a_store_error_that_names_it_and_falls_back_to_nothing():
    foreign = resource(PRETRAIN, storage={"endpoint": "https://other.example", "secretRef": {"name": "theirs"}})
    sc = StoreCredentials(SecretKube({}, forbid=True), creds_config(), env=ENV)
    with pytest.raises(StoreError) as err:
        sc.settings("team", store_target(ctx(foreign, sc.config)))
    assert "team/theirs" in str(err.value) and "403" in str(err.value) and "ENV-KEY" not in str(err.value)
    sc = StoreCredentials(SecretKube({}), creds_config("op-s3"), env=ENV)
    with pytest.raises(StoreError, match="glassbox-system/op-s3.*does not exist"):
        sc.settings("team", store_target(ctx(resource(PRETRAIN, storage={}), sc.config)))


def test_a_local_process_inherits_no_credentials_but_those_it_is_given(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "GLASSBOX_S3_SECRET_KEY": "leaked", "AWS_SECRET_ACCESS_KEY": "leaked2"}
    r = LocalRunner(tmp_path, env=env)
    c = child(["/usr/bin/env"])
    r.ensure(c, {"AWS_ACCESS_KEY_ID": "GIVEN", "AWS_SECRET_ACCESS_KEY": "given"})
    until(lambda: r.observe(c).state == "Succeeded")
    log = next(tmp_path.glob("ns/*/r-a0/log")).read_text()
    assert "leaked" not in log and "AWS_ACCESS_KEY_ID=GIVEN" in log and "GB_TEST=x" in log


def test_a_local_process_is_not_started_while_its_credentials_cannot_be_read(tmp_path):
    r = reconciler(FakeKube(), tmp_path, endpoint="127.0.0.1:9", operator_credentials_secret="op-s3")
    r.credentials.config = r.config = r.config.model_copy(update={"operator_namespace": "glassbox-system"})
    res = r.reconcile(body(backend="local", accelerator=None))
    assert res.status["phase"] == "Pending" and not list(tmp_path.glob("ns/*/*/pid"))
    res = r.reconcile({**body(backend="local", accelerator=None), "status": res.status})
    c = cond(res.status, "StoreReadable")
    assert c["status"] == "False" and "glassbox-system/op-s3" in c["message"] and "does not exist" in c["message"]
