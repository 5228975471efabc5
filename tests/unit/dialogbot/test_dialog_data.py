"""SEEDS-DETAIL 4.2: the parser on a hand fixture (JSON lines and CovidDialog's raw text layout), the
seeded 80/10/10 split, the seq2seq pairs with left truncation, the causal target mask and BERT's
80/10/10 corruption."""

from __future__ import annotations

import json

import pytest
import torch

from glassbox_api.kinds.common import DatasetRef
from glassbox_workloads.dialogbot import data
from glassbox_workloads.dialogbot.data import Dialogue, Turn
from glassbox_workloads.dialogbot.inputs import (
    IGNORE, causal_context, causal_sequence, encode_source, left_truncate, mask_tokens, pairs,
)
from glassbox_workloads.runtime.errors import BadInput

RAW = """id=1
https://www.example.org/q/1
Description
Fever   and COUGH since Monday.
Dialogue
Patient:
I have a  fever.
Doctor:
Please get TESTED.
Patient:
Thanks.
Doctor:
You are welcome.

id=2
https://www.example.org/q/2
Description
Headache.
Dialogue
Patient:
My head hurts.
Patient:
Still hurts.
Doctor:
Rest.

id=3
https://www.example.org/q/3
Description
Sore throat
Dialogue
Patient: My throat is sore.
Doctor: Gargle with salt water.
"""


def test_raw_layout_three_dialogues_one_with_patient_twice_yields_two_exactly_lowercased():
    found = data.parse_raw(RAW)
    assert len(found) == 3
    kept = data.keep(found)
    assert kept == [
        Dialogue("fever and cough since monday.", (Turn("patient", "i have a fever."), Turn("doctor", "please get tested."),
                                                   Turn("patient", "thanks."), Turn("doctor", "you are welcome."))),
        Dialogue("sore throat", (Turn("patient", "my throat is sore."), Turn("doctor", "gargle with salt water."))),
    ]


def test_json_lines_parse_the_same_and_drop_the_same(tmp_path):
    rows = [{"description": "Fever and cough.", "utterances": ["Patient: I have a fever.", "Doctor: Get tested."]},
            {"description": "x", "utterances": ["Patient: a", "Patient: b", "Doctor: c"]},
            {"description": "y", "utterances": [{"speaker": "patient", "text": "Sore  THROAT"},
                                                {"speaker": "doctor", "text": "Gargle."}]}]
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = data.load(DatasetRef(uri=str(p)), "spec.training.data")
    assert [d.turns for d in got] == [(Turn("patient", "i have a fever."), Turn("doctor", "get tested.")),
                                      (Turn("patient", "sore throat"), Turn("doctor", "gargle."))]
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    assert len(data.load(DatasetRef(uri=str(raw), format="text"), "spec.training.data")) == 2


def test_a_missing_file_and_a_record_without_utterances_name_the_field(tmp_path):
    with pytest.raises(BadInput, match=r"spec.training.data.uri"):
        data.load(DatasetRef(uri=str(tmp_path / "nope.jsonl")), "spec.training.data")
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"description": "d"}) + "\n")
    with pytest.raises(BadInput, match=r"spec.training.data record 0"):
        data.load(DatasetRef(uri=str(p)), "spec.training.data")
    p.write_text(json.dumps({"utterances": ["Nurse: hello"]}) + "\n")
    with pytest.raises(BadInput, match=r"utterance 0"):
        data.load(DatasetRef(uri=str(p)), "spec.training.data")


def _dialogues(n: int) -> list[Dialogue]:
    return [Dialogue(f"d{i}", (Turn("patient", f"p{i}"), Turn("doctor", f"r{i}"))) for i in range(n)]


@pytest.mark.parametrize("n", [10, 13, 603])
def test_split_sizes_are_int_80_int_10_and_the_rest_disjoint_and_covering(n):
    ds = _dialogues(n)
    train, dev, test = data.split(ds, 11111)
    assert (len(train), len(dev), len(test)) == (int(0.8 * n), int(0.1 * n), n - int(0.8 * n) - int(0.1 * n))
    names = [d.description for d in train + dev + test]
    assert sorted(names) == sorted(d.description for d in ds) and len(set(names)) == n


def test_split_is_deterministic_for_a_seed_and_changes_with_it():
    ds = _dialogues(50)
    assert data.split(ds, 0) == data.split(ds, 0)
    assert data.split(ds, 0) != data.split(ds, 1)
    # the original's order: random.seed(seed); random.shuffle(list)
    import random

    order = list(ds)
    random.seed(11111)
    random.shuffle(order)
    assert data.split(ds, 11111)[0] == order[:40]


def test_pairs_of_p0_d1_p2_d3_are_two_with_the_history_as_source():
    d = Dialogue("desc", (Turn("patient", "p0"), Turn("doctor", "d1"), Turn("patient", "p2"), Turn("doctor", "d3")))
    ps = pairs(d)
    assert [(p.source, p.target) for p in ps] == [("patient: p0\n", "d1"), ("patient: p0\ndoctor: d1\npatient: p2\n", "d3")]
    assert pairs(d, include_description=True)[0].source == "description: desc\npatient: p0\n"


def test_left_truncation_keeps_the_last_tokens(word_tokenizer):
    assert left_truncate([1, 2, 3, 4, 5], 3) == [3, 4, 5]
    text = "patient: one two three\ndoctor: four five\npatient: six seven\n"
    ids = encode_source(word_tokenizer, text, 6)
    assert len(ids) == 6
    words = word_tokenizer.convert_ids_to_tokens(ids)
    assert words == ["<s>", "patient", ":", "six", "seven", "</s>"]


def test_causal_mask_targets_exactly_the_doctor_tokens_and_their_eos():
    eos = 9
    ids, labels = causal_sequence([[1, 2], [3, 4, 5], [6], [7]], ["patient", "doctor", "patient", "doctor"], eos, 100)
    assert ids == [1, 2, 9, 3, 4, 5, 9, 6, 9, 7, 9]
    assert labels == [IGNORE, IGNORE, IGNORE, 3, 4, 5, 9, IGNORE, IGNORE, 7, 9]
    # shifted by one: position t predicts labels[t + 1]; the first doctor token is predicted from the patient's eos
    shifted = list(zip(ids[:-1], labels[1:]))
    assert shifted[2] == (9, 3) and [y for _, y in shifted if y != IGNORE] == [3, 4, 5, 9, 7, 9]
    assert causal_sequence([[1, 2], [3, 4, 5]], ["patient", "doctor"], eos, 4) == ([1, 2, 9, 3], [IGNORE, IGNORE, IGNORE, 3])


def test_causal_context_is_the_history_left_truncated():
    assert causal_context([[1, 2], [3], [4, 5]], 9, 4) == [3, 9, 4, 5, 9][-4:]


def test_mask_tokens_chooses_about_prob_and_splits_80_10_10_never_specials():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (200, 100))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    x, labels = mask_tokens(ids, prob=0.15, mask_id=4, vocab_size=1000, generator=g, special=special)
    chosen = labels != IGNORE
    assert not chosen[:, 0].any()
    assert abs(chosen.float().mean().item() - 0.15 * 0.99) < 0.01
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(x[~chosen], ids[~chosen])
    masked = (x == 4) & chosen
    kept = (x == ids) & chosen
    assert abs(masked.sum().item() / chosen.sum().item() - 0.8) < 0.03
    assert abs(kept.sum().item() / chosen.sum().item() - 0.1) < 0.03  # (a random draw equal to the id is rare)
