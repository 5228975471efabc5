"""The committed CRDs are exactly what the API types generate, and they follow the conventions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from glassbox_api.crdgen import all_crds
from glassbox_api.kinds import KINDS
from glassbox_operator.manifests import rendered_crds, write_crds

ROOT = Path(__file__).resolve().parents[2]
CRDS = all_crds()


@pytest.mark.parametrize("folder", ["crds", "charts/glassbox/crds"])
def test_committed_crds_match_the_generator(folder):
    want = rendered_crds()
    have = {p.name: p.read_text() for p in (ROOT / folder).glob("glassbox.dev_*.yaml")}
    assert set(have) == set(want), f"{folder}: run `glassbox crds`"
    for name in want:
        assert have[name] == want[name], f"{folder}/{name} drifted from the API types: run `glassbox crds`"


def test_check_mode_reports_drift_and_changes_nothing(tmp_path, capsys):
    assert write_crds([tmp_path]) == 0
    victim = tmp_path / "glassbox.dev_pretrainruns.yaml"
    victim.write_text(victim.read_text().replace("shortNames", "shortNamez"))
    (tmp_path / "glassbox.dev_oldkinds.yaml").write_text("stale")
    assert write_crds([tmp_path], check=True) == 1
    out = capsys.readouterr().out
    assert "glassbox.dev_pretrainruns.yaml" in out and "glassbox.dev_oldkinds.yaml" in out
    assert "shortNamez" in victim.read_text()
    assert write_crds([tmp_path]) == 0 and write_crds([tmp_path], check=True) == 0
    assert not (tmp_path / "glassbox.dev_oldkinds.yaml").exists()


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        yield path, node
        for key, sub in node.get("properties", {}).items():
            yield from _walk(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            yield from _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _schema(crd: dict) -> dict:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("name", sorted(CRDS))
def test_schema_is_structural_and_documented(name):
    schema = _schema(CRDS[name])
    text = yaml.safe_dump(schema)
    assert "$ref" not in text and "title:" not in text and "$defs" not in text
    for path, node in _walk(schema):
        if path in ("", ".metadata"):
            continue
        if not node.get("x-kubernetes-int-or-string"):
            assert "type" in node, f"{name}{path}: no type"
        assert node.get("type") != "null", f"{name}{path}"
        for flag in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(flag, True), bool), f"{name}{path}: OpenAPI v3.0 wants a boolean {flag}"
        for branch in node.get("anyOf", []):
            assert node.get("x-kubernetes-int-or-string"), f"{name}{path}: anyOf only for int-or-string"
            assert "description" not in branch and "default" not in branch
        if path.startswith((".spec.", ".status.")) and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{name}{path}: every field needs a doc (kubectl explain shows it)"
        if node.get("type") == "array" and path.startswith(".spec"):
            assert "maxItems" in node, f"{name}{path}: lists need maxItems (CEL cost budget)"
        if node.get("type") == "string" and "enum" not in node and path.startswith(".spec"):
            assert "maxLength" in node or "format" in node, f"{name}{path}: strings need maxLength (CEL cost budget)"


@pytest.mark.parametrize("info", KINDS.values(), ids=lambda i: i.kind)
def test_names_columns_and_subresources(info):
    crd = all_crds()[f"glassbox.dev_{info.plural}.yaml"]
    names = crd["spec"]["names"]
    assert names["shortNames"] == [info.short] and names["categories"] == ["glassbox"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["status"] == {}
    assert ("scale" in version["subresources"]) == info.is_service
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Phase" and "Age" in columns
    assert any(c in columns for c in ("Checkpoint", "Endpoint", "Progress"))
    if not info.is_service:  # batch kinds show progress as done/total, e.g. 78/104
        prog = next(c for c in version["additionalPrinterColumns"] if c["name"] == "Progress")
        assert prog["jsonPath"] == ".status.progress.done" and prog.get("priority", 0) == 0


def test_short_names_are_the_documented_ones():
    assert {i.short for i in KINDS.values()} == {"ptr", "sft", "scorer", "kgh", "meval", "dbot"}


def test_defaults_enums_ranges_and_rules_reach_the_schema():
    spec = _schema(CRDS["glassbox.dev_pretrainruns.yaml"])["properties"]["spec"]["properties"]
    training = spec["training"]
    assert training["properties"]["strategy"]["enum"] == ["ddp", "fsdp", "deepspeed"]
    assert training["properties"]["microBatchSize"]["minimum"] == 1
    assert training["properties"]["optimizer"]["default"] == {"lr": 3e-4, "minLr": 3e-5, "beta1": 0.9, "beta2": 0.95, "weightDecay": 0.1, "eps": 1e-8}
    assert spec["data"]["properties"]["tokenizer"]["default"] == {"train": {"vocabSize": 8192, "minFrequency": 2}}
    rules = [r["rule"] for r in training["x-kubernetes-validations"]]
    assert "self == oldSelf" in rules and "!has(self.zeroStage) || self.strategy == 'deepspeed'" in rules
    sources = spec["data"]["properties"]["sources"]
    assert sources["x-kubernetes-list-type"] == "map" and sources["x-kubernetes-list-map-keys"] == ["name"]
    resources = spec["resources"]["properties"]
    assert resources["memory"]["x-kubernetes-int-or-string"] is True
    status = _schema(CRDS["glassbox.dev_pretrainruns.yaml"])["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "default" not in yaml.safe_dump(status), "status carries no defaults"
    shards = _schema(CRDS["glassbox.dev_shardedfinetunes.yaml"])["properties"]["spec"]["properties"]["sharding"]
    assert shards["properties"]["modelShards"]["x-kubernetes-int-or-string"] is True
