"""The score of a tuple under a prompt: the formula, the masked rows and the scored spans
(SEEDS-DETAIL 2.2)."""

from __future__ import annotations

import math

import pytest
import torch

from glassbox_workloads.kgharvest.prompts import fill, mask_span_chars
from glassbox_workloads.kgharvest.scoring import (
    masked_rows, mask_positions, prompt_scores, rescore, score_formula, title_variants, token_logprobs,
)


def test_score_formula_on_the_hand_values():
    assert score_formula([-1, -2, -3], 2) == pytest.approx(-8 / 3, abs=1e-9)


@pytest.mark.parametrize("lps", [[-0.1], [-5, -0.2], [-2.0, -2.0], [-1, -9, -4], [-0.5, -7, -0.1, -3]])
def test_score_lies_between_the_worst_token_and_zero_with_one_token_per_entity(lps):
    s = score_formula(lps, len(lps))
    assert min(lps) - 1e-12 <= s <= 0
    assert min(lps) <= sum(lps) / len(lps)


def test_several_tokens_per_entity_can_score_below_the_worst_token():
    # SEEDS-DETAIL 2.2 states min <= score in general; with K > n_ents the Σlp/n_ents term can fall
    # below min (4 tokens of -1 over 2 entities: (-1 - 2 - 1)/3). The formula is BertNet's; the bound is not.
    s = score_formula([-1, -1, -1, -1], 2)
    assert s == pytest.approx(-4 / 3) and s < -1


def test_masked_rows_mask_every_later_position_and_read_their_own():
    ids = [101, 7, 8, 9, 10, 11, 102]
    positions = [2, 3, 5]
    rows = masked_rows(ids, positions, mask_id=4)
    assert len(rows) == len(positions)
    for k, row in enumerate(rows):
        masked = [i for i, t in enumerate(row) if t == 4]
        assert masked == positions[k:]
        assert all(row[p] == ids[p] for p in positions[:k])


def test_only_the_first_word_of_an_entity_is_scored_with_a_glued_suffix():
    prompt = "<ENT0> lives near the <ENT1>s ."
    filled, spans = mask_span_chars(prompt, ["polar bear", "river"])
    assert filled.sentence == "Polar bear lives near the rivers ."
    assert [filled.sentence[a:b] for a, b in spans] == ["Polar", "rivers"]


def test_an_entity_that_starts_the_prompt_is_capitalised():
    assert fill("<ENT1> is the capital of <ENT0> .", ["france", "paris"]).sentence == "Paris is the capital of france ."


def test_the_span_stops_at_punctuation():
    prompt = 'He said "<ENT0>", then <ENT1>.'
    filled, spans = mask_span_chars(prompt, ["lion", "tiger"])
    assert [filled.sentence[a:b] for a, b in spans] == ["lion", "tiger"]


def test_mask_positions_follow_entity_index_order(mlm):
    ids, positions = mask_positions(mlm, "<ENT1> is the capital of <ENT0> .", ["france", "paris"])
    assert [mlm.piece(ids[p]) for p in positions] == ["france", "paris"]


def test_token_logprobs_read_each_row_at_its_position(mlm):
    prompt, ents = "<ENT0> lives in the <ENT1> .", ("lion", "savanna")
    (lps,) = token_logprobs(mlm, prompt, [ents])
    ids, positions = mask_positions(mlm, prompt, ents)
    rows = masked_rows(ids, positions, mlm.mask_id)
    with torch.no_grad():
        logits = mlm.model(input_ids=torch.tensor(rows)).logits
    want = [float(torch.log_softmax(logits[k, p], -1)[ids[p]]) for k, p in enumerate(positions)]
    assert lps == pytest.approx(want, abs=1e-5)
    assert prompt_scores(mlm, prompt, [ents])[0] == pytest.approx(score_formula(want, 2), abs=1e-5)


def test_title_variants_are_all_2_to_the_n():
    assert set(title_variants(("new york", "usa"))) == {("new york", "usa"), ("New York", "usa"),
                                                        ("new york", "Usa"), ("New York", "Usa")}


def test_rescore_keeps_the_best_variant_sorted_with_weights_summing_to_one(mlm):
    prompts = {"<ENT0> lives in the <ENT1> .": 0.7, "<ENT0> and <ENT1> are words .": 0.3}
    tuples = [("lion", "savanna"), ("otter", "river"), ("camel", "desert")]
    out = rescore(mlm, prompts, tuples)
    assert len(out) == len({e for e, _, _ in out}) == 3
    scores = [s for _, s, _ in out]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(sum(w for _, _, w in out), 1.0, abs_tol=1e-9)
    from glassbox_workloads.kgharvest.scoring import weighted_scores

    for ents, s, _ in out:
        base = tuple(e.lower() for e in ents)
        variants = title_variants(base)
        assert s == pytest.approx(max(weighted_scores(mlm, prompts, variants)), abs=1e-6)
