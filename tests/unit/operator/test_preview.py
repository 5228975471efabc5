"""`glassbox render`: a GitOps preview of every example without the cluster's config (a marked
placeholder store and a note on stderr), the real store with --config, and an operator that still
refuses a resource with no store."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from glassbox_operator.cli import app
from glassbox_operator.config import default_config, load_config
from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.preview import PLACEHOLDER_ENDPOINT
from glassbox_operator.reconcile import Reconciler
from glassbox_operator.runner import EXIT_INVALID

from opkit import ROOT, UID, example
from test_reconcile_errors import NOW, FakeKube

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
cli = CliRunner()


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch):
    monkeypatch.delenv("GLASSBOX_CONFIG", raising=False)


def config_file(tmp_path, **storage) -> str:
    """The chart's default node pools with this storage block, as a --config file."""
    doc = default_config().model_dump(by_alias=True, mode="json")
    doc["storage"] = storage
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(doc))
    return str(tmp_path / "config.yaml")


def render(*args: str):
    return cli.invoke(app, ["render", *args])


def env_of(children: list[dict]) -> dict[str, str]:
    """GLASSBOX_* variables of every container in the children (the store they publish to)."""
    out: dict[str, str] = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("name", "").startswith("GLASSBOX_S3") and "value" in node:
                out[node["name"]] = node["value"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(children)
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_without_config(path):
    res = render(str(path))
    assert res.exit_code == 0, res.stderr
    children = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert children and all({"apiVersion", "kind", "metadata"} <= d.keys() for d in children)
    assert "note:" not in res.stdout
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if {c["kind"] for c in children} == {"LocalProcess"}:
        # the local backend publishes to a directory: nothing stands in, nothing to note
        assert res.stderr == "" and PLACEHOLDER_ENDPOINT not in res.stdout
        return
    assert env_of(children)["GLASSBOX_S3_ENDPOINT"] == PLACEHOLDER_ENDPOINT
    err = res.stderr
    assert err.startswith("note:") and "PLACEHOLDER" in err and PLACEHOLDER_ENDPOINT in err
    assert all(f"{d['kind']}/{d['metadata']['name']}:" in err for d in docs), err
    assert f"glassbox render {path} --config config.yaml" in err and "NoArtifactStore" in err


def test_note_names_the_store_the_spec_chose_and_the_chart_defaults_otherwise(tmp_path):
    d = example("pretrain-gpu.yaml")
    err = render(str(ROOT / "examples/pretrain-gpu.yaml")).stderr
    assert f"s3://{d['spec']['storage']['bucket']}/runs at {PLACEHOLDER_ENDPOINT}" in err
    assert f"Secret {d['spec']['storage']['secretRef']['name']}" in err
    d["spec"]["storage"] = {}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(d))
    err = render(str(tmp_path / "r.yaml")).stderr
    assert f"s3://glassbox/runs at {PLACEHOLDER_ENDPOINT}, credentials Secret glassbox-storage" in err


def test_with_config_the_real_store_is_used_and_nothing_is_noted(tmp_path):
    cfg = config_file(tmp_path, endpoint="s3.corp.example:9000", secure=False)
    res = render(str(ROOT / "examples/pretrain-gpu.yaml"), "--config", cfg)
    assert res.exit_code == 0 and res.stderr == ""
    env = env_of([d for d in yaml.safe_load_all(res.stdout) if d])
    assert env == {"GLASSBOX_S3_ENDPOINT": "s3.corp.example:9000", "GLASSBOX_S3_SECURE": "false", "GLASSBOX_S3_REGION": "us-east-1"}
    assert PLACEHOLDER_ENDPOINT not in res.stdout


def test_spec_endpoint_needs_no_placeholder(tmp_path):
    d = example("pretrain-gpu.yaml")
    d["spec"]["storage"]["endpoint"] = "https://s3.spec.example"
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(d))
    res = render(str(tmp_path / "r.yaml"))
    assert res.exit_code == 0 and res.stderr == ""
    assert env_of([c for c in yaml.safe_load_all(res.stdout) if c])["GLASSBOX_S3_ENDPOINT"] == "s3.spec.example"


def test_a_config_without_a_store_is_as_strict_as_the_operator(tmp_path):
    res = render(str(ROOT / "examples/pretrain-gpu.yaml"), "--config", config_file(tmp_path, bucket="bkt"))
    assert res.exit_code == EXIT_INVALID and res.stdout == ""
    assert "NoArtifactStore" in res.stderr and PLACEHOLDER_ENDPOINT not in res.stderr


def test_other_render_errors_are_not_papered_over(tmp_path):
    d = example("pretrain-gpu.yaml")
    d["spec"]["resources"]["accelerator"] = "a100"
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(d))
    res = render(str(tmp_path / "r.yaml"))
    assert res.exit_code == EXIT_INVALID and res.stdout == "" and "UnknownNodePool" in res.stderr


def test_unconfigured_operator_still_refuses(tmp_path):
    d = example("pretrain-gpu.yaml")
    d["metadata"] = {"name": "r", "namespace": "ns", "uid": UID, "generation": 1}
    d["spec"]["resources"].pop("priorityClassName")
    kube = FakeKube()
    r = Reconciler(kube, load_config(None), LocalRunner(tmp_path), clock=lambda: NOW)
    res = r.reconcile(d)
    conds = {c["type"]: c for c in res.status["conditions"]}
    assert res.status["phase"] == "Failed" and conds["Failed"]["reason"] == conds["Stalled"]["reason"] == "NoArtifactStore"
    assert [(e.type, e.reason) for e in res.events] == [("Warning", "NoArtifactStore")]
    assert kube.objs == {}
