"""The workload entrypoint ends with the pod contract's exit codes (glassbox_api.podcontract.ExitCode):
the operator retries 1 and reports 2, 3 and 4 at once, so each failure must land on the right one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from glassbox_api.podcontract import ExitCode, is_permanent
from glassbox_workloads.__main__ import main

ROOT = Path(__file__).resolve().parents[1].parent
DATA = ROOT / "examples" / "data"

TINY_PRETRAIN = {
    "model": {"architecture": "llama", "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 2,
                                                  "numHeads": 4, "numKvHeads": 2, "maxPositionEmbeddings": 64}},
    "data": {"sources": [{"name": "json", "uri": "stdlib://json"}], "seqLength": 32, "chunks": 2, "holdOut": 4,
             "tokenizer": {"train": {"vocabSize": 300}}},
    "training": {"microBatchSize": 4, "maxSteps": 2, "warmupSteps": 1, "precision": "fp32"},
    "resources": {"backend": "local"},
}


def write(tmp_path: Path, kind: str, spec: dict, name: str = "r") -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump({"apiVersion": "glassbox.dev/v1alpha1", "kind": kind, "metadata": {"name": name},
                                 "spec": spec}))
    return f


def test_a_pretrainrun_whose_data_does_not_exist_fails_for_good(tmp_path, capsys):
    missing = tmp_path / "no-such-corpus"
    spec = {**TINY_PRETRAIN, "data": {**TINY_PRETRAIN["data"],
                                      "sources": [{"name": "corpus", "uri": str(missing)}]}}
    rc = main(["pretrainrun", "--spec", str(write(tmp_path, "PretrainRun", spec)), "--store", str(tmp_path / "s"),
               "--quiet"])
    assert rc == ExitCode.BAD_INPUT and is_permanent(rc)
    err = capsys.readouterr().err
    # One line naming the resource, the field, what is wrong and how to fix it.
    assert "PretrainRun r cannot run: spec.data.sources[0].uri" in err
    assert str(missing) in err and "does not exist" in err and "fix: point it at data that exists" in err


def test_an_empty_data_source_is_bad_input_too(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    spec = {**TINY_PRETRAIN, "data": {**TINY_PRETRAIN["data"], "sources": [{"name": "e", "uri": str(empty)}]}}
    rc = main(["pretrainrun", "--spec", str(write(tmp_path, "PretrainRun", spec)), "--store", str(tmp_path / "s"),
               "--quiet"])
    assert rc == ExitCode.BAD_INPUT
    assert "spec.data.sources[0].uri" in capsys.readouterr().err


def test_an_invalid_spec_is_2(tmp_path, capsys):
    spec = {**TINY_PRETRAIN, "training": {**TINY_PRETRAIN["training"], "microBatchSize": 0}}
    rc = main(["pretrainrun", "--spec", str(write(tmp_path, "PretrainRun", spec)), "--store", str(tmp_path)])
    assert rc == ExitCode.INVALID_SPEC
    assert "spec.training.microBatchSize" in capsys.readouterr().err


def test_no_store_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASSBOX_STORE", raising=False)
    assert main(["pretrainrun", "--spec", str(write(tmp_path, "PretrainRun", TINY_PRETRAIN))]) == ExitCode.INVALID_SPEC


@pytest.mark.parametrize("kind", ["nosuchkind"])
def test_a_kind_this_image_cannot_run_is_3(tmp_path, kind, capsys):
    assert main([kind, "--spec", str(tmp_path / "x.yaml"), "--store", str(tmp_path)]) == ExitCode.NOT_RUNNABLE
    assert "error:" in capsys.readouterr().err


def test_a_store_that_cannot_be_written_is_transient(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = main(["pretrainrun", "--spec", str(write(tmp_path, "PretrainRun", TINY_PRETRAIN)),
               "--store", str(blocker / "store"), "--quiet"])
    assert rc == ExitCode.FAILED and not is_permanent(rc)
    assert "PretrainRun r failed:" in capsys.readouterr().err


def test_the_kill_fault_hook_exits_like_a_killed_pod_after_publishing(tmp_path):
    """GLASSBOX_KILL_AT_STEP (runtime/faults.py): exit 137 right after the step, its checkpoint committed."""
    import os
    import subprocess
    import sys

    from glassbox_api.manifest import read_manifest
    from glassbox_api.store import LocalStore

    spec = {**TINY_PRETRAIN, "checkpoint": {"everySteps": 1}, "analysis": {"perplexity": False}}
    f = write(tmp_path, "PretrainRun", spec)
    proc = subprocess.run([sys.executable, "-m", "glassbox_workloads", "pretrainrun", "--spec", str(f),
                           "--store", str(tmp_path / "s"), "--run-id", "kill0001", "--quiet"],
                          env={**os.environ, "GLASSBOX_KILL_AT_STEP": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 137, proc.stderr[-2000:]
    m = read_manifest(LocalStore(tmp_path / "s").sub("default/pretrainrun/r-kill0001"))
    assert [c.step for c in m.checkpoints] == [1] and m.state == "running"


def test_the_store_and_run_id_come_from_the_environment(tmp_path, monkeypatch):
    from glassbox_workloads.__main__ import context

    monkeypatch.setenv("GLASSBOX_STORE", str(tmp_path))
    monkeypatch.setenv("GLASSBOX_RUN_ID", "0123abcd")
    monkeypatch.setenv("GLASSBOX_KILL_AT_STEP", "3")
    ctx = context(["PretrainRun", "--spec", "f.yaml"])
    assert (ctx.kind, ctx.store, ctx.run_id, ctx.quiet, ctx.faults.kill_at_step) == (
        "pretrainrun", str(tmp_path), "0123abcd", False, 3)
    ctx = context(["pretrainrun", "--spec", "f.yaml", "--store", "s3://b/p", "--run-id", "x", "--quiet"])
    assert (ctx.store, ctx.run_id, ctx.quiet) == ("s3://b/p", "x", True)


def test_a_malformed_environment_value_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSBOX_NUM_PROCESSES", "two")
    assert main(["pretrainrun", "--spec", "f.yaml", "--store", str(tmp_path)]) == ExitCode.INVALID_SPEC
    assert "GLASSBOX_NUM_PROCESSES" in capsys.readouterr().err


# ---- ShardedFinetune ----------------------------------------------------------------------------
TINY_FINETUNE = {
    "model": {"architecture": "llama", "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 1,
                                                  "numHeads": 2, "numKvHeads": 1, "maxPositionEmbeddings": 64}},
    "data": {"train": {"uri": str(DATA / "instructions-train.jsonl")}, "maxSourceLength": 16, "maxTargetLength": 8},
    "recipe": {"name": "causal-lm"},
    "sharding": {"modelShards": 1},
    "training": {"perDeviceBatchSize": 2, "maxSteps": 1},
    "resources": {"backend": "local"},
}


def test_a_finetune_whose_dataset_does_not_exist_fails_for_good(tmp_path, capsys):
    pytest.importorskip("jax")
    spec = {**TINY_FINETUNE, "data": {**TINY_FINETUNE["data"], "train": {"uri": str(tmp_path / "nope.jsonl")}}}
    rc = main(["shardedfinetune", "--spec", str(write(tmp_path, "ShardedFinetune", spec)),
               "--store", str(tmp_path / "s"), "--quiet"])
    assert rc == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "ShardedFinetune r cannot run: spec.data.train.uri" in err and "does not exist" in err


def test_a_finetune_from_a_model_without_its_lm_head_fails_for_good(tmp_path, capsys):
    jax = pytest.importorskip("jax")
    from glassbox_api.store import open_store
    from glassbox_workloads.flax_models import init_params, tiny_config
    from glassbox_workloads.flax_models import safetensors_io as st
    from glassbox_workloads.flax_models.hf import SAFETENSORS, save_pretrained

    cfg = tiny_config("llama", vocab_size=300, tie_word_embeddings=False)
    save_pretrained(open_store(tmp_path), "headless", cfg, init_params(cfg, jax.random.key(0)))
    store = open_store(tmp_path)
    tensors = st.load(store.get_bytes(f"headless/{SAFETENSORS}"))
    assert "lm_head.weight" in tensors
    store.put_bytes(f"headless/{SAFETENSORS}", st.dump({k: v for k, v in tensors.items() if k != "lm_head.weight"}))
    spec = {**TINY_FINETUNE, "model": {"uri": str(tmp_path / "headless")}}
    rc = main(["shardedfinetune", "--spec", str(write(tmp_path, "ShardedFinetune", spec)),
               "--store", str(tmp_path / "s"), "--quiet"])
    assert rc == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "ShardedFinetune r cannot run: spec.model.uri" in err and "lm_head" in err


def test_exit_codes_in_the_entrypoint_docstring_match_the_contract():
    import glassbox_workloads.__main__ as entry

    for code in ExitCode:
        assert f"{int(code)} " in entry.__doc__
    assert json.dumps(sorted(int(c) for c in ExitCode)) == "[0, 1, 2, 3, 4]"
