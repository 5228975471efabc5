"""The CRDs on the real apiserver: examples accepted, invalid resources refused naming the field,
immutable fields frozen, and kubectl get / explain / scale telling the story."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from glassbox_api.kinds import KINDS
from glassbox_operator.manifests import load_documents
from tests.support.cluster import CommandError
from tests.support.invalid_cases import ALLOWED_UPDATES, CASES, valid

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
NS = "api-tests"


@pytest.fixture(scope="module")
def api(cluster):
    """The glassbox CRDs installed and established, and a namespace for the tests."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for info in KINDS.values():
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{info.plural}.glassbox.dev")
    namespaces = {NS} | {d["metadata"].get("namespace", "default") for p in EXAMPLES for d in load_documents(p)}
    for ns in sorted(namespaces):
        cluster.kubectl("create", "namespace", ns, check=False)
    # Idempotent on a reused cluster: start from an empty test namespace.
    cluster.kubectl("delete", "glassbox", "--all", "-n", NS, "--wait=true")
    return cluster


def _create(cluster, doc, check=True):
    return cluster.kubectl("create", "--validate=strict", "-n", NS, "-f", "-", input=yaml.safe_dump(doc), check=check)


def _apply(cluster, doc, check=True):
    return cluster.kubectl(
        "apply", "--server-side", "--field-manager=tests", "--validate=strict", "-n", NS, "-f", "-",
        input=yaml.safe_dump(doc), check=check,
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_accepted_by_server_side_apply_with_strict_validation(api, path):
    out = api.kubectl("apply", "--server-side", "--field-manager=tests", "--validate=strict", "-f", str(path))
    assert "serverside-applied" in out.stdout
    for doc in load_documents(path):
        ns = doc["metadata"].get("namespace", "default")
        got = api.get(doc["kind"].lower(), doc["metadata"]["name"], ns)
        assert got is not None and got["spec"]  # defaults filled in by the apiserver
        if doc["kind"] == "PretrainRun":
            assert got["spec"]["training"]["optimizer"]["beta2"] == 0.95
            assert got["spec"]["suspend"] is False


@pytest.mark.parametrize("case", [c for c in CASES if not c.update], ids=lambda c: c.id)
def test_invalid_resource_is_refused_naming_the_field(api, case):
    res = _create(api, case.document(), check=False)
    assert res.returncode != 0, f"{case.id} was accepted:\n{res.stdout}"
    assert case.field in res.stderr, f"{case.id}: refusal does not name {case.field}:\n{res.stderr}"


@pytest.mark.parametrize("case", [c for c in CASES if c.update], ids=lambda c: c.id)
def test_immutable_field_change_is_refused(api, case):
    doc = case.document(name=f"imm-{case.id}")
    _apply(api, doc)
    res = _apply(api, case.updated(doc), check=False)
    assert res.returncode != 0, f"{case.id}: the change was accepted"
    assert case.field in res.stderr and "immutable" in res.stderr, res.stderr


@pytest.mark.parametrize("case", ALLOWED_UPDATES, ids=lambda c: c.id)
def test_mutable_fields_can_change(api, case):
    doc = case.document(name=f"mut-{case.id}")
    _apply(api, doc)
    _apply(api, case.updated(doc))


def test_apiserver_defaults_match_local_defaults(api):
    from glassbox_api.resource import parse_resource

    for kind in KINDS:
        doc = valid(kind, name=f"defaults-{kind.lower()}")
        _apply(api, doc)
        served = api.get(kind.lower(), doc["metadata"]["name"], NS)["spec"]
        local = parse_resource(doc).wire()["spec"]
        assert served == local, f"{kind}: apiserver and local defaults differ"


def test_kubectl_get_glassbox_lists_every_kind(api):
    for kind in KINDS:
        _apply(api, valid(kind, name=f"listed-{kind.lower()}"))
    out = api.kubectl("get", "glassbox", "-n", NS, "-o", "name").stdout
    for info in KINDS.values():
        assert f"{info.singular}.glassbox.dev/listed-{info.singular}" in out, out


def test_short_names_work(api):
    for info in KINDS.values():
        api.kubectl("get", info.short, "-n", NS)


def test_kubectl_explain_shows_the_field_docs(api):
    out = api.kubectl("explain", "pretrainrun.spec").stdout
    assert "Desired state of the PretrainRun" in out
    for field in ("model", "data", "training", "checkpoint", "resources", "storage", "suspend"):
        assert f"  {field}\t" in out or f"  {field} " in out, out
    out = api.kubectl("explain", "pretrainrun.spec.training.strategy").stdout
    assert "Data parallelism" in out and "fsdp" in out
    out = api.kubectl("explain", "scorerservice.spec.replicas").stdout
    assert "scale subresource" in out


def test_printer_columns_show_status(api):
    name = "columns-ptr"
    _apply(api, valid("PretrainRun", name=name))
    status = {
        "status": {
            "phase": "Running",
            "progress": {"step": 120, "totalSteps": 160, "done": "120/160", "tokens": 983040, "loss": 2.7513,
                         "perplexity": 15.66, "checkpoint": "step-120", "latestCheckpoint": "s3://runs/x/checkpoints/120/"},
        }
    }
    api.kubectl("patch", "pretrainrun", name, "-n", NS, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    table = api.kubectl("get", "ptr", name, "-n", NS).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "LOSS", "PPL", "CHECKPOINT", "AGE"]
    assert table[1].split()[:6] == [name, "Running", "120/160", "2.7513", "15.66", "step-120"]
    wide = api.kubectl("get", "ptr", name, "-n", NS, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[7:9] == ["TOKENS", "CHECKPOINT-URI"] and "s3://runs/x/checkpoints/120/" in wide[1]


def test_status_is_validated_too(api):
    name = "bad-status"
    _apply(api, valid("PretrainRun", name=name))
    res = api.kubectl(
        "patch", "pretrainrun", name, "-n", NS, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Exploding"}}), check=False,
    )
    assert res.returncode != 0 and "status.phase" in res.stderr


def test_scale_subresource_drives_replicas(api):
    name = "scaled"
    _apply(api, valid("ScorerService", name=name))
    api.kubectl("scale", "scorer", name, "-n", NS, "--replicas=4")
    assert api.get("scorerservice", name, NS)["spec"]["replicas"] == 4
    with pytest.raises(CommandError):
        api.kubectl("scale", "scorer", name, "-n", NS, "--replicas=-2")
