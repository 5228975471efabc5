"""Decoding as spec.decoding says (SEEDS-DETAIL 4.2): the min and max new tokens are honoured and no
trigram occurs twice in a reply, for a causal and a seq2seq model; the objective follows the
architecture unless training.objective says otherwise; the generation loss of a causal dialogue
is the masked mean over the doctor tokens (shift by one)."""

from __future__ import annotations

import pytest
import torch

from glassbox_api.kinds.dialogbot import Decoding, DialogBotSpec
from glassbox_workloads.dialogbot.data import Dialogue, Turn
from glassbox_workloads.dialogbot.model import CAUSAL, SEQ2SEQ, load_model, objective_of
from glassbox_workloads.dialogbot.steps import gen_loss, prepare

CONFIG = {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 1, "numHeads": 2, "maxPositionEmbeddings": 256}
DIALOGUES = [Dialogue("d", (Turn("patient", f"i have a fever number {i}"), Turn("doctor", "please rest and drink water"),
                            Turn("patient", "and a cough"), Turn("doctor", "get tested today"))) for i in range(6)]


def spec(arch: str, **training) -> DialogBotSpec:
    return DialogBotSpec.model_validate({"model": {"architecture": arch, "config": CONFIG},
                                         "training": {"data": {"uri": "x.jsonl"}, "maxSourceLength": 16,
                                                      "maxTargetLength": 12, **training}})


def test_objective_follows_the_architecture_unless_set():
    assert objective_of(spec("gpt2")) == CAUSAL and objective_of(spec("bart")) == SEQ2SEQ
    assert objective_of(spec("gpt2", objective="seq2seq")) == SEQ2SEQ


@pytest.mark.parametrize("arch", ["gpt2", "bart"])
@pytest.mark.parametrize("lo,hi", [(5, 9), (12, 12)])
def test_replies_honour_min_max_new_tokens_and_repeat_no_trigram(arch, lo, hi):
    dm = load_model(spec(arch), dialogues=DIALOGUES, seed=0, force_cpu=True)
    d = Decoding(num_beams=3, no_repeat_ngram_size=3, min_new_tokens=lo, max_new_tokens=hi, length_penalty=2.0)
    ctx = [dm.context_ids(t.turns[:k]) for t in DIALOGUES[:3] for k in (1, 3)]
    for new in dm.reply_ids(ctx, d):  # the new tokens (eos included; BART's decoder start excluded)
        assert lo <= len(new) <= hi, new
        grams = [tuple(new[i:i + 3]) for i in range(len(new) - 2)]
        assert len(grams) == len(set(grams)), new


def test_causal_loss_is_the_mean_over_doctor_tokens_shifted_by_one():
    s = spec("gpt2", labelSmoothing=0.0)
    dm = load_model(s, dialogues=DIALOGUES, seed=0, force_cpu=True)
    ex = prepare(dm, DIALOGUES[:2], s.training).examples
    dm.model.eval()  # no dropout: the two computations see the same function
    ids, labels = ex[0]
    assert any(v == -100 for v in labels) and any(v != -100 for v in labels)
    # the loss equals a hand computation over the doctor positions (shift by one)
    with torch.no_grad():
        x = torch.tensor([ids])
        logits = dm.model(input_ids=x).logits[0, :-1]
        y = torch.tensor(labels[1:])
        keep = y != -100
        hand = torch.nn.functional.cross_entropy(logits[keep], y[keep])
        assert float(gen_loss(dm, [ex[0]], 0.0).detach()) == pytest.approx(float(hand), rel=1e-5)
