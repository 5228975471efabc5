"""The chart's security settings (issue 17): the local backend off by default, the workload pods'
security settings passed to the operator, and the operator's own store credentials read by name
from one Secret of its own namespace (a Role granting `get` on that Secret only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from test_chart import RELEASE_NS, config_of, helm, of_kind, render  # noqa: F401 - helm is a fixture


def test_default_install_refuses_the_local_backend_and_locks_workload_pods(helm: str, tmp_path: Path) -> None:
    from glassbox_operator.config import parse_config

    cfg = parse_config(config_of(render(helm, tmp_path)))
    assert cfg.security.allow_local_backend is False
    pods = cfg.security.workload_pods
    assert pods.restricted and pods.run_as_user == 65532 and not pods.automount_service_account_token
    assert pods.seccomp_profile == "RuntimeDefault"


def test_default_install_grants_no_secret_access(helm: str, tmp_path: Path) -> None:
    docs = render(helm, tmp_path)
    for role in of_kind(docs, "Role") + of_kind(docs, "ClusterRole"):
        assert not [r for r in role["rules"] if "secrets" in r.get("resources", [])], role["metadata"]["name"]


def test_operator_credentials_secret_is_granted_by_name_in_the_release_namespace(helm: str, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"storage": {"endpoint": "minio.minio:9000", "operatorCredentialsSecret": "op-s3"}})
    cfg = config_of(docs)
    assert cfg["storage"]["operatorCredentialsSecret"] == "op-s3" and cfg["operatorNamespace"] == RELEASE_NS
    secret_rules = [(role, rule) for role in of_kind(docs, "Role") + of_kind(docs, "ClusterRole")
                    for rule in role["rules"] if "secrets" in rule.get("resources", [])]
    assert len(secret_rules) == 1
    role, rule = secret_rules[0]
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == RELEASE_NS
    assert rule == {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["op-s3"], "verbs": ["get"]}
    binding = next(b for b in of_kind(docs, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"])
    assert binding["metadata"]["namespace"] == RELEASE_NS and binding["subjects"][0]["kind"] == "ServiceAccount"


@pytest.mark.parametrize("values", [
    {"security": {"allowLocalBackend": "yes"}},
    {"security": {"workloadPods": {"runAsUser": 0}}},
    {"security": {"workloadPods": {"privileged": True}}},
    {"storage": {"operatorCredentialsSecret": "Not_A_Name"}},
])
def test_schema_refuses_bad_security_values(helm: str, tmp_path: Path, values: dict[str, Any]) -> None:
    from test_chart import template

    out = template(helm, tmp_path, values)
    assert out.returncode != 0 and "values don't meet the specifications of the schema" in out.stderr, out.stderr
