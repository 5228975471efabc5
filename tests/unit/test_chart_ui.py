"""The chart's optional web UI (issue 19): `glassbox ui` as a Deployment + Service over the chart's
artifact store, rendered only when ui.enabled, admissible under the restricted Pod Security
Standard, with the store credentials passed by Secret reference and refused bad values.

Runs the real helm binary (`helm template`); the install into the test cluster is
tests/cluster/test_helm_ui.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_chart import CHART, REPO, RELEASE, RELEASE_NS, helm, of_kind, one, render, template  # noqa: F401 - helm is a fixture

ENABLED: dict[str, Any] = {"ui": {"enabled": True},
                           "storage": {"endpoint": "minio.minio.svc:9000", "secure": False, "bucket": "ml-runs"}}
FULLNAME = f"{RELEASE}-glassbox"


def ui_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "ui"]


@pytest.fixture(scope="module")
def ui_docs(helm: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(helm, tmp_path_factory.mktemp("ui"), ENABLED)


def ui_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deploy,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == f"{FULLNAME}-ui"]
    return deploy


def test_enabled_ui_lints_strict(helm: str, tmp_path: Path) -> None:
    from test_chart import _kube_version, run_helm, values_args

    out = run_helm(helm, "lint", str(CHART), "--strict", "--kube-version", _kube_version(), *values_args(tmp_path, ENABLED))
    assert out.returncode == 0 and "0 chart(s) failed" in out.stdout, out.stdout + out.stderr


def test_ui_is_not_rendered_by_default(helm: str, tmp_path: Path) -> None:
    assert not ui_objects(render(helm, tmp_path))
    # Disabled, it needs no store either: the default install has no storage endpoint.
    assert not ui_objects(render(helm, tmp_path, {"ui": {"credentialsSecret": "any"}}))


def test_enabled_ui_renders_a_deployment_and_a_service_of_its_own(ui_docs: list[dict[str, Any]]) -> None:
    objs = {(d["kind"], d["metadata"]["name"]) for d in ui_objects(ui_docs)}
    assert objs == {("Deployment", f"{FULLNAME}-ui"), ("Service", f"{FULLNAME}-ui")}
    deploy = ui_deployment(ui_docs)
    operator = one([d for d in of_kind(ui_docs, "Deployment") if d is not deploy], "Deployment")
    # Neither selector picks the other's pods.
    ui_labels = deploy["spec"]["template"]["metadata"]["labels"]
    op_labels = operator["spec"]["template"]["metadata"]["labels"]
    assert not operator["spec"]["selector"]["matchLabels"].items() <= ui_labels.items()
    assert not deploy["spec"]["selector"]["matchLabels"].items() <= op_labels.items()
    service = [d for d in of_kind(ui_docs, "Service") if d["metadata"]["name"] == f"{FULLNAME}-ui"][0]
    assert service["spec"]["selector"].items() <= ui_labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 8265, "targetPort": "http", "protocol": "TCP"}]
    metrics = [d for d in of_kind(ui_docs, "Service") if d["metadata"]["name"] == f"{FULLNAME}-metrics"][0]
    assert not metrics["spec"]["selector"].items() <= ui_labels.items()


def test_ui_runs_glassbox_ui_on_the_charts_store_from_the_operator_image(ui_docs: list[dict[str, Any]]) -> None:
    container = ui_deployment(ui_docs)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/glassbox/operator:0.1.0"
    assert container["command"] == ["glassbox", "ui"]
    assert container["args"] == ["--store=s3://ml-runs/runs", "--host=0.0.0.0", "--port=8265"]
    env = {e["name"]: e for e in container["env"]}
    assert env["GLASSBOX_S3_ENDPOINT"]["value"] == "minio.minio.svc:9000"
    assert env["GLASSBOX_S3_SECURE"]["value"] == "false"
    assert env["GLASSBOX_S3_REGION"]["value"] == "us-east-1"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8265}


def test_ui_image_host_port_and_service_follow_the_values(helm: str, tmp_path: Path) -> None:
    values = {"ui": {"enabled": True, "image": "registry.local/gb-ui:dev", "host": "::", "port": 9000,
                     "replicas": 2, "service": {"type": "NodePort", "port": 80}},
              "storage": {"endpoint": "s3.example.com", "prefix": ""}}
    docs = render(helm, tmp_path, values)
    deploy = ui_deployment(docs)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert deploy["spec"]["replicas"] == 2
    assert container["image"] == "registry.local/gb-ui:dev"
    assert container["args"] == ["--store=s3://glassbox", "--host=::", "--port=9000"]
    service = [d for d in of_kind(docs, "Service") if d["metadata"]["name"] == f"{FULLNAME}-ui"][0]
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["port"] == 80 and service["spec"]["ports"][0]["targetPort"] == "http"


def test_ui_follows_a_pinned_operator_image(helm: str, tmp_path: Path) -> None:
    digest = "sha256:" + "cd" * 32
    docs = render(helm, tmp_path, {**ENABLED, "image": {"digest": digest}})
    assert ui_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/glassbox/operator@{digest}"


def test_ui_pod_passes_the_restricted_pod_security_standard(ui_docs: list[dict[str, Any]]) -> None:
    spec = ui_deployment(ui_docs)["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert volumes[tmp["name"]]["emptyDir"] == {"sizeLimit": "64Mi"}
    assert {e["name"]: e.get("value") for e in container["env"]}["HOME"] == "/tmp"
    assert not [v for v in spec["volumes"] if "hostPath" in v]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"cpu": "1", "memory": "1Gi"}}


def test_ui_probes_ask_the_page_not_the_store(ui_docs: list[dict[str, Any]]) -> None:
    container = ui_deployment(ui_docs)["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "http"}, probe


def test_probe_route_is_served_without_reading_the_store(tmp_path: Path) -> None:
    """GET / (what the probes ask) answers 200 even over a store that cannot be read."""
    from starlette.testclient import TestClient

    from glassbox_api.store import open_store
    from glassbox_ui.app import create_app

    missing = open_store(tmp_path / "no-such-store")
    client = TestClient(create_app(missing))
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_store_credentials_come_from_the_secret_by_reference(helm: str, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {**ENABLED, "ui": {"enabled": True, "credentialsSecret": "ui-readonly"}})
    container = ui_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[key]
        assert env[key]["valueFrom"] == {"secretKeyRef": {"name": "ui-readonly", "key": key}}
    # Nothing the chart writes holds a credential: no ConfigMap or Secret names the UI's Secret.
    for d in of_kind(docs, "ConfigMap") + of_kind(docs, "Secret"):
        assert "ui-readonly" not in yaml.safe_dump(d), d["metadata"]["name"]
    assert not of_kind(docs, "Secret")


def test_enabled_ui_without_a_store_endpoint_is_refused(helm: str, tmp_path: Path) -> None:
    out = template(helm, tmp_path, {"ui": {"enabled": True}})
    assert out.returncode != 0
    assert "ui.enabled needs storage.endpoint" in out.stderr, out.stderr


BAD_UI_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"ui": {"enabled": "yes"}}, "/ui/enabled"),
    ({"ui": {"port": 70000}}, "/ui/port"),
    ({"ui": {"service": {"type": "ExternalName"}}}, "/ui/service/type"),
    ({"ui": {"credentialsSecret": "Not_A_Secret"}}, "/ui/credentialsSecret"),
    ({"ui": {"credentialsSecret": ""}}, "/ui/credentialsSecret"),
    ({"ui": {"accessKey": "AKIAEXAMPLE"}}, "'accessKey'"),
    ({"ui": {"replicas": -1}}, "/ui/replicas"),
    ({"ui": {"resources": {"limits": {"memory": "lots"}}}}, "/ui/resources/limits"),
]


@pytest.mark.parametrize(("values", "where"), BAD_UI_VALUES, ids=[w for _, w in BAD_UI_VALUES])
def test_schema_refuses_bad_ui_values(helm: str, tmp_path: Path, values: dict[str, Any], where: str) -> None:
    out = template(helm, tmp_path, values)
    assert out.returncode != 0, f"accepted {values}"
    assert "values don't meet the specifications of the schema" in out.stderr, out.stderr
    assert where in out.stderr, out.stderr


@pytest.mark.parametrize(("values", "where"), BAD_UI_VALUES, ids=[w for _, w in BAD_UI_VALUES])
def test_the_values_model_refuses_what_helm_refuses(values: dict[str, Any], where: str) -> None:
    from pydantic import ValidationError

    from glassbox_operator.values import ChartValues
    from test_chart import merged_values

    # strict: JSON Schema's boolean is not pydantic's lax one ("yes" is not true to helm either).
    with pytest.raises(ValidationError):
        ChartValues.model_validate(merged_values(values), strict=True)


def test_operator_image_installs_the_ui_extra_at_the_pinned_versions() -> None:
    """The ui Deployment runs the operator image: its Dockerfile must carry the `ui` extra's pins."""
    dockerfile = (REPO / "images" / "operator.Dockerfile").read_text()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for pin in extras["ui"]:
        assert f'"{pin}"' in dockerfile, pin
    assert re.search(r'pip install .*"glassbox\[operator,ui\]"', dockerfile)
    assert "COPY ui ui" in dockerfile
