"""The seq2seq objective with the auxiliary masked loss (SSL-Reg) through the training stage: a tiny
BART from a config trains (the masked-token loss through the shared encoder, and through the
decoder), keeps the best dev-loss checkpoint and publishes it with the test metrics; the published
checkpoint loads back as a seq2seq DialogModel. The metric values of the evals are the library's
(Dist-1/2 and Entropy on the replies the run wrote)."""

from __future__ import annotations

import json

import pytest
import yaml

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.__main__ import main
from glassbox_workloads.metrics import diversity

from dialog_planted import write


@pytest.mark.slow
@pytest.mark.parametrize("shared", ["encoder", "decoder"])
def test_bart_with_masked_loss_trains_and_publishes_the_best_dev_checkpoint(tmp_path, shared):
    write(tmp_path / "c.jsonl", 20)
    spec = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "DialogBot", "metadata": {"name": "s2s", "uid": "u-" + shared},
            "spec": {"model": {"architecture": "bart", "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 1,
                                                                  "numHeads": 2, "maxPositionEmbeddings": 128}},
                     "training": {"data": {"uri": "c.jsonl"}, "epochs": 2, "batchSize": 8, "learningRate": 1e-3,
                                  "maxSourceLength": 32, "maxTargetLength": 16,
                                  "auxiliaryMaskedLoss": {"weight": 0.1, "maskProb": 0.15, "shared": shared}},
                     "decoding": {"numBeams": 2, "minNewTokens": 2, "maxNewTokens": 6}}}
    (tmp_path / "bot.yaml").write_text(yaml.safe_dump(spec))
    store = tmp_path / "store"
    assert main(["dialogbot", "--spec", str(tmp_path / "bot.yaml"), "--store", str(store), "--stage", "train", "--quiet"]) == 0
    run = LocalStore(store).sub(next(store.rglob("manifest.json")).parent.relative_to(store).as_posix())
    m = read_manifest(run)
    assert m.final["objective"] == "seq2seq" and m.total_steps == 2 * 6  # 16 train dialogues x 3 doctor turns = 48 pairs, 8 a step
    assert m.latest.step in (6, 12) and m.latest.evals["devLoss"] > 0
    rows = [json.loads(x) for x in run.get_bytes(f"evals/{m.latest.step:08d}/test.jsonl").decode().splitlines()]
    assert len(rows) == 2 * 3  # seq2seq: every doctor turn of the 2 test consultations
    replies = [r["reply"] or "<empty>" for r in rows]
    assert m.latest.evals["dist1"] == pytest.approx(diversity.dist(replies, 1).corpus)
    assert m.latest.evals["entropy4"] == pytest.approx(diversity.entropy(replies, 4).corpus)
    assert m.latest.evals["perplexity"] >= 1.0
