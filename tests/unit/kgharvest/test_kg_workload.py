"""The harvest as a run: per-relation publishing listed in the manifest, kg.jsonl at the end, a
restarted harvest that skips published relations, and a model without an MLM head refused (exit 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from glassbox_api.podcontract import ExitCode
from glassbox_api.store import LocalStore, find_run
from glassbox_workloads.__main__ import main

from .conftest import tiny_mlm

RELATIONS = [
    {"name": "lives_in", "prompts": ["<ENT0> lives in the <ENT1>."],
     "seeds": [["lion", "savanna"], ["otter", "river"], ["camel", "desert"]]},
    {"name": "words", "prompts": ["<ENT0> and <ENT1> are words."],
     "seeds": [["lion", "tiger"], ["otter", "beaver"], ["whale", "shark"]]},
]


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory) -> Path:
    from glassbox_workloads.runtime.hfmodels import save

    m = tiny_mlm(7)
    return save(m.model, m.tokenizer, tmp_path_factory.mktemp("mlm"))


def spec_file(tmp_path: Path, model: dict) -> Path:
    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "KGHarvest", "metadata": {"name": "kg"},
           "spec": {"model": model, "relations": RELATIONS, "search": {"maxTuples": 5, "maxSubwords": 1},
                    "resources": {"backend": "local"}}}
    p = tmp_path / "kg.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def _run(spec: Path, store: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassbox_workloads", "kgharvest", "--spec", str(spec), "--store", str(store)],
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env}, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_harvest_killed_after_its_first_relation_resumes_without_redoing_it(tmp_path, mlm_dir):
    spec, store = spec_file(tmp_path, {"uri": str(mlm_dir)}), tmp_path / "store"
    first = _run(spec, store, GLASSBOX_KILL_AT_STEP="1")
    assert first.returncode == 137, first.stderr
    run = find_run(LocalStore(store), "default", "KGHarvest", "kg")
    m = json.loads(run.get_bytes("manifest.json"))
    assert [r["name"] for r in m["relations"]] == ["lives_in"] and m["state"] == "running"
    assert m["final"]["relationsDone"] == 1 and not run.exists("kg.jsonl")
    entry_before = run.get_bytes("relations/lives_in/entry.json")

    second = _run(spec, store)
    assert second.returncode == 0, second.stderr
    assert "relation words:" in second.stdout and "relation lives_in:" not in second.stdout
    assert "(published before)" in second.stdout
    assert run.get_bytes("relations/lives_in/entry.json") == entry_before
    m = json.loads(run.get_bytes("manifest.json"))
    assert m["state"] == "completed" and [r["name"] for r in m["relations"]] == ["lives_in", "words"]
    assert m["final"]["relationsDone"] == 2 and m["final"]["tuples"] == sum(r["tuples"] for r in m["relations"])
    kg = [json.loads(x) for x in run.get_bytes("kg.jsonl").decode().splitlines()]
    assert {x["relation"] for x in kg} == {"lives_in", "words"} and len(kg) == m["final"]["tuples"]
    for r in m["relations"]:
        for f in r["files"]:
            run.verify(f["path"], f["sha256"], f["size"])
    prompts = json.loads(run.get_bytes("relations/words/prompts.json"))
    assert prompts[0]["prompt"] == "<ENT0> and <ENT1> are words ." and prompts[0]["weight"] == 1.0
    for line in run.get_bytes("relations/lives_in/tuples.jsonl").decode().splitlines():
        assert set(json.loads(line)) == {"entities", "score", "weight"}

    third = _run(spec, store)
    assert third.returncode == 0 and "already harvested" in third.stdout


def test_an_encoder_without_the_mlm_head_is_bad_input(tmp_path, capsys):
    from transformers import BertModel

    m = tiny_mlm(0)
    enc_dir = tmp_path / "encoder"
    BertModel(m.model.config).save_pretrained(enc_dir)
    m.tokenizer.save_pretrained(enc_dir)
    spec = spec_file(tmp_path, {"uri": str(enc_dir)})
    assert main(["kgharvest", "--spec", str(spec), "--store", str(tmp_path / "s"), "--quiet"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "spec.model" in err and "head" in err


def test_a_missing_pretrain_corpus_is_bad_input(tmp_path, capsys):
    doc = yaml.safe_load(spec_file(tmp_path, {"architecture": "bert", "config": {"hiddenSize": 16, "numHeads": 2}}).read_text())
    doc["spec"]["pretrain"] = {"corpus": {"uri": str(tmp_path / "none.txt"), "format": "text"}, "steps": 1}
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(doc))
    assert main(["kgharvest", "--spec", str(p), "--store", str(tmp_path / "s"), "--quiet"]) == ExitCode.BAD_INPUT
    assert "spec.pretrain.corpus.uri" in capsys.readouterr().err


def test_an_indexed_job_pod_harvests_only_the_relation_of_its_index():
    from glassbox_api.kinds.kgharvest import KGHarvestSpec
    from glassbox_workloads.kgharvest.workload import my_relations
    from glassbox_workloads.runtime.context import JaxProcess, RunContext

    spec = KGHarvestSpec.model_validate({"model": {"uri": "m"}, "relations": RELATIONS,
                                         "resources": {"backend": "job", "workers": 2}})
    assert my_relations(spec, RunContext(jax=JaxProcess(job_completion_index=1))) == ["words"]
    assert my_relations(spec, RunContext()) == ["lives_in", "words"]  # not in an Indexed Job: all
    one = spec.model_copy(update={"resources": spec.resources.model_copy(update={"workers": 1})})
    assert my_relations(one, RunContext(jax=JaxProcess(job_completion_index=0))) == ["lives_in", "words"]
