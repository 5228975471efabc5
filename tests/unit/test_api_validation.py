"""Local validation: the examples pass, every invalid resource of the shared table is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox_api.kinds import KINDS, kind_info
from glassbox_api.resource import InvalidResource, parse_resource
from glassbox_operator.manifests import load_documents
from tests.support.invalid_cases import ALLOWED_UPDATES, BASE, CASES, valid

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_at_least_forty_invalid_cases_cover_every_kind():
    assert len(CASES) >= 40
    assert {c.kind for c in CASES} == set(KINDS)


@pytest.mark.parametrize("kind", sorted(BASE))
def test_base_documents_are_valid(kind):
    parse_resource(valid(kind))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path):
    for doc in load_documents(path):
        parse_resource(doc)


def test_every_kind_has_a_tiny_and_a_production_example():
    kinds = {}
    for path in EXAMPLES:
        for doc in load_documents(path):
            kinds.setdefault(doc["kind"], []).append(path.name)
    for kind in KINDS:
        assert len(kinds.get(kind, [])) >= 2, f"{kind}: needs a tiny and a production example, has {kinds.get(kind)}"


@pytest.mark.parametrize("case", [c for c in CASES if c.local], ids=lambda c: c.id)
def test_invalid_resource_is_refused_naming_the_field(case):
    with pytest.raises(InvalidResource) as err:
        parse_resource(case.document())
    text = str(err.value)
    assert case.field in text, f"refusal does not name {case.field}:\n{text}"
    assert "fix:" in text or any(e.message for e in err.value.errors)


@pytest.mark.parametrize("case", [c for c in CASES if c.update] + ALLOWED_UPDATES, ids=lambda c: c.id)
def test_update_cases_are_valid_documents_on_their_own(case):
    # Immutability is a transition rule: both versions are valid alone, only the change is refused.
    doc = case.document()
    parse_resource(doc)
    parse_resource(case.updated(doc))


def test_header_errors_name_the_field_and_the_fix():
    doc = valid("PretrainRun")
    doc["apiVersion"] = "glassbox.dev/v1"
    doc["kind"] = "PretrainJob"
    doc["metadata"] = {"name": "Bad_Name"}
    with pytest.raises(InvalidResource) as err:
        parse_resource(doc)
    paths = {e.path for e in err.value.errors}
    assert {"apiVersion", "kind", "metadata.name"} <= paths
    assert "use glassbox.dev/v1alpha1" in str(err.value)


def test_unknown_field_error_says_to_remove_it():
    doc = valid("ScorerService")
    doc["spec"]["storage"] = {"accessKey": "AKIA"}
    with pytest.raises(InvalidResource) as err:
        parse_resource(doc)
    (e,) = err.value.errors
    assert e.path == "spec.storage.accessKey" and "remove it" in e.fix


def test_defaults_are_filled_in_the_wire_form():
    spec = parse_resource(valid("PretrainRun")).wire()["spec"]
    assert spec["training"]["optimizer"] == {"lr": 3e-4, "minLr": 3e-5, "beta1": 0.9, "beta2": 0.95, "weightDecay": 0.1, "eps": 1e-8}
    assert spec["resources"]["backend"] == "job"
    assert spec["data"]["tokenizer"] == {"train": {"vocabSize": 8192, "minFrequency": 2}}
    assert spec["suspend"] is False


def test_floats_accept_integers_and_yaml_exponents(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(
        "apiVersion: glassbox.dev/v1alpha1\nkind: PretrainRun\nmetadata: {name: a}\n"
        "spec:\n  model: {architecture: llama, config: {rmsNormEps: 1e-5}}\n"
        "  data: {sources: [{name: a, uri: stdlib://, weight: 2}], holdOut: 1}\n"
        "  training: {optimizer: {lr: 1e-3, minLr: 0}}\n"
    )
    (doc,) = load_documents(f)
    spec = parse_resource(doc).spec
    assert spec.model.config.rms_norm_eps == 1e-5 and spec.training.optimizer.lr == 1e-3
    assert spec.data.sources[0].weight == 2


def test_kind_lookup_by_any_name():
    assert kind_info("ptr").kind == "PretrainRun"
    assert kind_info("dialogbots").kind == "DialogBot"
    with pytest.raises(KeyError, match="unknown kind"):
        kind_info("notebook")
