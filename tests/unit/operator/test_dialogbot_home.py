"""DialogBot's home: progress from the run manifest (steps of planned, the test metrics, the best
dev loss, the served checkpoint) validates against the API's status type, and the promotion
decision: a candidate no worse than the serving model in the configured direction is promoted,
a worse one is refused with both numbers in the message."""

from __future__ import annotations

import math

import pytest

from glassbox_api.manifest import CheckpointEntry, Manifest
from glassbox_operator.kinds.dialogbot import HOME, promotion

from opkit import UID, example, resource

RUN = "s3://b/runs/ns/dialogbot/covid-tiny-1234abcd"


def test_progress_names_steps_metrics_dev_loss_and_choose_the_served_checkpoint():
    res = resource(example("dialogbot-tiny.yaml"))
    m = Manifest(total_steps=10, checkpoints=[CheckpointEntry(
        step=6, tokens=24, loss=3.21, path="checkpoints/00000006",
        evals={"perplexity": 41.234567, "bleu2": 1.5, "devLoss": 3.456789})])
    p = HOME.progress(res, m, RUN)
    assert p == {"totalSteps": 10, "step": 6, "loss": 3.21, "eval": {"perplexity": 41.2346, "bleu2": 1.5},
                 "bestDevLoss": 3.4568}
    served = HOME.choose(res, "serve", {}, m, RUN, None)
    assert served is not None and served.checkpoint == f"{RUN}/checkpoints/00000006" and served.verdict is None
    res.info.status.model_validate({"progress": {**p, "servingCheckpoint": served.checkpoint, "candidateCheckpoint": RUN}})
    assert HOME.progress(res, None, RUN) is None
    assert HOME.progress(res, Manifest(total_steps=10), RUN) == {"totalSteps": 10}


@pytest.mark.parametrize("direction,old,new,promote", [
    ("lower", 40.0, 39.0, True), ("lower", 40.0, 40.0, True), ("lower", 40.0, 41.5, False),
    ("higher", 10.0, 12.0, True), ("higher", 10.0, 9.0, False),
])
def test_promotion_is_no_worse_in_the_direction(direction, old, new, promote):
    d = promotion("perplexity", direction, {"perplexity": old}, {"perplexity": new})
    assert d.promote is promote
    assert f"{new:.4g}" in d.message and f"{old:.4g}" in d.message
    assert ("refused" in d.message) is (not promote)


def test_promotion_without_a_serving_number_promotes_and_without_a_candidate_number_refuses():
    assert promotion("bleu4", "higher", None, {"bleu4": 3.0}).promote
    assert promotion("bleu4", "higher", {"perplexity": 3.0}, {"bleu4": 3.0}).promote
    refused = promotion("bleu4", "higher", {"bleu4": 3.0}, {"perplexity": 9.0})
    assert not refused.promote and "no test bleu4" in refused.message
    assert not promotion("perplexity", "lower", {"perplexity": 3.0}, {"perplexity": math.nan}).promote


def test_the_serving_stage_renders_the_model_server_not_the_training_command():
    from glassbox_operator.context import STAGE_SERVE, STAGE_TRAIN, Plan
    from glassbox_operator.render import render

    from opkit import ctx

    res = resource(example("dialogbot-gpu.yaml"), training__resources__priorityClassName=None,
                   serving__resources__priorityClassName=None)
    job = render(ctx(res, plan=Plan(stage=STAGE_TRAIN)))[-1]
    isvc = render(ctx(res, plan=Plan(stage=STAGE_SERVE), model_uri=f"{RUN}/checkpoints/00000006"))[-1]
    train_cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
    serve = isvc["spec"]["predictor"]["containers"][0]
    assert "dialogbot" in train_cmd and train_cmd[train_cmd.index("--stage") + 1] == "train"
    assert serve["name"] == "kserve-container" and "dialogbot" in serve["command"]
    assert serve["command"][serve["command"].index("--stage") + 1] == "serve"
    assert {e["name"]: e.get("value") for e in serve["env"]}["STORAGE_URI"] == f"{RUN}/checkpoints/00000006"


def test_one_run_per_training_spec_and_the_uid_for_every_other_kind():
    from glassbox_operator.kinds import HOMES, KindHome

    base = resource(example("dialogbot-tiny.yaml"))
    rid = HOME.run_id(base, UID)
    assert rid.endswith(f"-{UID}") and len(rid.split("-")[0]) == 8
    same = [resource(example("dialogbot-tiny.yaml"), decoding__numBeams=4),
            resource(example("dialogbot-tiny.yaml"), serving__replicas=3),
            resource(example("dialogbot-tiny.yaml"), training__learningRate=4e-5)]  # the default, spelt out
    assert {HOME.run_id(r, UID) for r in same} == {rid}
    other = resource(example("dialogbot-tiny.yaml"), training__epochs=2)
    assert HOME.run_id(other, UID) != rid and HOME.run_id(base, UID.replace("1234", "9999")) != rid
    untrained = resource(example("dialogbot-tiny.yaml"), training=None, model={"uri": "s3://b/m"})
    assert HOME.run_id(untrained, UID) == UID
    for kind, home in HOMES.items():
        if kind != "DialogBot":
            assert type(home).run_id is KindHome.run_id, kind  # the uid: their run folders are unchanged


def test_trained_for_an_earlier_training_spec_trains_again():
    from glassbox_api.manifest import run_prefix

    res = resource(example("dialogbot-tiny.yaml"))
    done = [{"type": "Trained", "status": "True", "reason": "TrainingSucceeded", "message": "", "lastTransitionTime": "x"}]
    mine = f"s3://b/runs/{run_prefix('ns', 'DialogBot', 'r', HOME.run_id(res, UID))}"
    assert HOME.stage_of(res, {"conditions": done, "artifacts": {"runUri": mine}}) == "serve"
    assert HOME.stage_of(res, {"conditions": done, "artifacts": {"runUri": RUN}}) == "train"
    assert HOME.stage_of(res, {"conditions": [], "artifacts": {"runUri": mine}}) == "train"


def test_the_crd_lets_training_change_and_keeps_model_immutable():
    from glassbox_api.kinds.dialogbot import DialogBotSpec

    props = DialogBotSpec.model_json_schema(by_alias=True)["properties"]
    assert "x-kubernetes-validations" not in props["training"]
    assert any("immutable" in v["message"] for v in props["model"].get("x-kubernetes-validations", []))
