"""The spec the operator hands to a workload (the local runner's resource.json, the ConfigMap's
resource.yaml) loads in the workload with the values the apiserver defaulted, numbers as numbers:
json.dumps writes 1e-06, which YAML 1.1 reads as a string."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox_operator.render.common import SPEC_KEY, spec_configmap, spec_document
from glassbox_workloads.runtime.spec import load_resource
from tests.unit.operator.opkit import ctx, example, resource


@pytest.fixture
def defaulted() -> dict:
    """A PretrainRun as the apiserver returns it: small floats defaulted by the CRD schema."""
    doc = example("pretrain-tiny.yaml")
    doc["spec"]["model"]["config"]["rmsNormEps"] = 1e-6
    doc["spec"]["training"]["optimizer"].update(minLr=3e-5, eps=1e-8)
    return doc


def test_local_runner_document_loads_with_small_floats_as_numbers(defaulted, tmp_path: Path):
    c = ctx(resource(defaulted, name="tiny"))
    spec_file = tmp_path / "resource.json"
    spec_file.write_text(json.dumps(spec_document(c), indent=2))  # as LocalRunner.ensure writes it
    assert "1e-06" in spec_file.read_text()
    res = load_resource(spec_file, "PretrainRun", run_id=c.uid)
    assert res.raw_spec["model"]["config"]["rmsNormEps"] == 1e-6
    assert res.raw_spec["training"]["optimizer"]["minLr"] == 3e-5
    assert res.raw_spec["training"]["optimizer"]["eps"] == 1e-8
    assert (res.name, res.namespace, res.uid) == ("tiny", "ns", c.uid)


def test_configmap_spec_loads_too(defaulted, tmp_path: Path):
    c = ctx(resource(defaulted, name="tiny"))
    spec_file = tmp_path / SPEC_KEY
    spec_file.write_text(spec_configmap(c)["data"][SPEC_KEY])
    res = load_resource(spec_file, "PretrainRun")
    assert res.raw_spec["model"]["config"]["rmsNormEps"] == 1e-6


def test_yaml_files_still_load(tmp_path: Path):
    spec_file = tmp_path / "ptr.yaml"
    spec_file.write_text((Path(__file__).resolve().parents[2] / "examples" / "pretrain-tiny.yaml").read_text())
    res = load_resource(spec_file, "PretrainRun")
    assert res.name == "tiny-coder" and res.raw_spec["model"]["config"]["rmsNormEps"] == 1e-6
