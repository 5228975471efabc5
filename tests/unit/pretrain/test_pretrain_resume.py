"""SEEDS.md section 1: a run interrupted and resumed from checkpoint k ends with the same weights as
an uninterrupted run (bit-for-bit on CPU with deterministic settings); and every checkpoint loads
with transformers' from_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassbox_api.manifest import read_manifest, read_run_record
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.export import load_pretrained
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from glassbox_workloads.runtime.spec import load_resource
from pretrain_tiny import resource, tiny_raw, tiny_spec


class Interrupted(Exception):
    pass


def final_weights(store: LocalStore, result) -> dict[str, torch.Tensor]:
    run = store.sub(result.run_uri.removeprefix(store.uri()).strip("/"))
    m = read_manifest(run)
    return load_file(run.root / m.latest.path / "model.safetensors")


def test_resume_is_bit_for_bit_the_uninterrupted_run(tmp_path: Path) -> None:
    spec = tiny_spec()
    straight = LocalStore(tmp_path / "straight")
    a = run_pretrain(resource(spec), straight, hooks=TrainHooks(quiet=True))
    assert a.steps == 12 and [c.step for c in a.manifest.checkpoints] == [4, 8, 12]

    broken = LocalStore(tmp_path / "broken")

    def crash(step: int, stats) -> None:
        if step == 6:  # after checkpoint 4 was published, mid-way to checkpoint 8
            raise Interrupted()

    with pytest.raises(Interrupted):
        run_pretrain(resource(spec), broken, hooks=TrainHooks(on_step=crash, quiet=True))
    run = broken.sub(resource(spec).run_prefix)
    assert [c.step for c in read_manifest(run).checkpoints] == [4]
    b = run_pretrain(resource(spec), broken, hooks=TrainHooks(quiet=True))
    assert b.resumed_from == 4

    wa, wb = final_weights(straight, a), final_weights(broken, b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    # The published record agrees too: same losses, data ranges and sample-order digests.
    ma, mb = a.manifest, b.manifest
    for ca, cb in zip(ma.checkpoints, mb.checkpoints):
        assert (ca.step, ca.tokens, ca.loss, ca.data, ca.evals) == (cb.step, cb.tokens, cb.loss, cb.data, cb.evals)
    assert mb.state == "completed"

    # A third invocation finds the run complete and does nothing.
    c = run_pretrain(resource(spec), broken, hooks=TrainHooks(quiet=True))
    assert c.already_complete and c.steps == 12


def test_checkpoints_load_with_from_pretrained_and_record_the_run(tmp_path: Path) -> None:
    spec = tiny_spec(training={"maxSteps": 4}, checkpoint={"everySteps": 2})
    store = LocalStore(tmp_path)
    res = run_pretrain(resource(spec), store, hooks=TrainHooks(quiet=True))
    run = store.sub(resource(spec).run_prefix)
    m = read_manifest(run)
    assert [c.step for c in m.checkpoints] == [2, 4]
    for c in m.checkpoints:
        model, tok = load_pretrained(run.root / c.path)
        assert model.config.model_type == "llama" and model.config.num_hidden_layers == 2
        ids = tok("def main():\n    return 0\n", return_tensors="pt").input_ids
        assert tok.decode(ids[0]) == "def main():\n    return 0\n"
        saved = load_file(run.root / c.path / "model.safetensors")
        sd = model.state_dict()
        assert all(torch.equal(sd[k], v) for k, v in saved.items())
        with torch.no_grad():
            assert torch.isfinite(model(input_ids=ids).logits).all()
        # What the checkpoint saw, in the checkpoint and in the manifest alike.
        state = json.loads((run.root / c.path / "trainer_state.json").read_text())
        assert state["cursor"]["samples"] == c.data.samples_end == c.step * 8
        assert state["order_digest"] == c.data.order_digest
        assert set(c.evals) >= {"perplexity", "memorization_token_match", "memorization_full_match"}
        assert run.exists(c.evals_path) and run.exists(c.metrics_path)
    rec = read_run_record(run)
    assert rec.data_manifest_digest == run.read_json("data/data-manifest.json")["digest"]
    assert rec.seeds == {"data": 7, "training": 0} and rec.spec["training"]["maxSteps"] == 4
    rows = [json.loads(line) for seg in m.metrics for line in run.get_bytes(seg).decode().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["lr"] == pytest.approx(1e-3)  # lr(1) = peak / warmup
    assert res.final_loss == m.latest.loss


def test_entrypoint_runs_a_resource_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import yaml

    from glassbox_workloads.__main__ import main

    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "PretrainRun", "metadata": {"name": "cli"},
           "spec": tiny_raw(training={"maxSteps": 2, "warmupSteps": 1}, checkpoint={"everySteps": 0})}
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump(doc))
    assert main(["pretrainrun", "--spec", str(f), "--store", str(tmp_path / "s"), "--run-id", "abc12345"]) == 0
    out = capsys.readouterr().out
    assert "completed 2 steps" in out and "default/pretrainrun/cli-abc12345" in out
    r = load_resource(f, "PretrainRun", run_id="abc12345")
    assert read_manifest(LocalStore(tmp_path / "s").sub(r.run_prefix)).latest.step == 2
    # A PretrainRun file handed to another kind's program is a usage error, not a run of the wrong kind.
    assert main(["dialogbot", "--spec", str(f), "--store", str(tmp_path)]) == 2
    assert "no DialogBot resource in the file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**doc, "spec": {**doc["spec"], "training": {"microBatchSize": 0}}}))
    assert main(["pretrainrun", "--spec", str(bad), "--store", str(tmp_path)]) == 2
