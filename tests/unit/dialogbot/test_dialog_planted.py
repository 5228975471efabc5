"""Planted structure, end to end (SEEDS-DETAIL 4.2): a tiny GPT-2 trained from a config by the real
training stage (`python -m glassbox_workloads dialogbot --stage train`) on synthetic consultations
where the reply must name the symptom of the latest patient turn; histories are longer than
maxSourceLength and earlier turns name other symptoms. The published model's test replies (the
evals the run wrote) name the right symptom far above chance (1/8); the same model reading the
history truncated from the right (the earliest turns) falls to about chance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.manifest import read_manifest
from glassbox_api.resource import parse_resource
from glassbox_api.store import LocalStore
from glassbox_workloads.__main__ import main
from glassbox_workloads.dialogbot import data as dialog_data
from glassbox_workloads.dialogbot.evaluate import held_out_examples
from glassbox_workloads.dialogbot.model import load_model

from dialog_planted import SYMPTOMS, named, write

SPEC = {
    "apiVersion": "glassbox.dev/v1alpha1", "kind": "DialogBot", "metadata": {"name": "planted", "uid": "u-planted-1"},
    "spec": {
        "model": {"architecture": "gpt2", "config": {"hiddenSize": 64, "intermediateSize": 256, "numLayers": 2,
                                                     "numHeads": 2, "maxPositionEmbeddings": 128}},
        "training": {"data": {"uri": "consultations.jsonl"}, "epochs": 12, "batchSize": 8, "learningRate": 3e-3,
                     "labelSmoothing": 0.0, "maxSourceLength": 24, "maxTargetLength": 72, "splitSeed": 1,
                     "resources": {"backend": "local"}},
        "decoding": {"numBeams": 1, "noRepeatNgramSize": 0, "minNewTokens": 1, "maxNewTokens": 12},
        "serving": {"resources": {"backend": "local"}},
    },
}


@pytest.mark.slow
def test_trained_bot_names_the_latest_symptom_and_right_truncation_is_near_chance(tmp_path):
    import torch

    torch.manual_seed(0)
    write(tmp_path / "consultations.jsonl", 200)
    spec_file = tmp_path / "bot.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    store = tmp_path / "store"
    assert main(["dialogbot", "--spec", str(spec_file), "--store", str(store), "--stage", "train", "--quiet"]) == 0

    run = LocalStore(store).sub(next(store.rglob("manifest.json")).parent.relative_to(store).as_posix())
    m = read_manifest(run)
    assert m.state == "completed" and m.latest is not None and "devLoss" in m.latest.evals
    rows = [json.loads(line) for line in run.get_bytes(f"evals/{m.latest.step:08d}/test.jsonl").decode().splitlines()]
    assert len(rows) == 20  # causal-dialogue: the last doctor turn of each of the 20 test consultations
    right = sum(1 for r in rows if named(r["reference"]) <= named(r["reply"]) and len(named(r["reply"])) == 1)
    print(f"planted: {right}/{len(rows)} test replies name the latest symptom (chance 1/{len(SYMPTOMS)})")
    assert right / len(rows) >= 0.9, rows[:5]

    # The same model, reading the history cut from the right (the first turns): about chance.
    resource = parse_resource(SPEC)
    weights = tmp_path / "weights"
    for f in m.latest.files:
        run.get_file(f"{m.latest.path}/{f.path}", weights / f.path, sha256=f.sha256)
    dm = load_model(resource.spec, model=ModelSpec.model_validate({"uri": str(weights)}), force_cpu=True)
    test = dialog_data.split(dialog_data.load(resource.spec.training.data, "data", tmp_path), 1)[2]
    examples = held_out_examples(test, dm.objective, False)
    tok = dm.tokenizer
    contexts = []
    for e in examples:
        ids = [t for turn in e.history for t in (*tok(turn.text, add_special_tokens=False)["input_ids"], tok.eos_token_id)]
        contexts.append(ids[:24])
    replies = [tok.decode(r, skip_special_tokens=True) for r in dm.reply_ids(contexts, resource.spec.decoding)]
    wrong_end = sum(1 for e, r in zip(examples, replies) if named(e.pair.target) <= named(r) and len(named(r)) == 1)
    print(f"planted, right-truncated history: {wrong_end}/{len(examples)}")
    assert wrong_end / len(examples) <= 0.4, (wrong_end, len(SYMPTOMS))
