"""progressive (SEEDS-DETAIL 6.2): nested stage vocabularies equal to an sklearn reference, stage
texts as subsequences, the training noise, the chained input string."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("sklearn")

from glassbox_workloads.recipes import progressive as pg  # noqa: E402

PLAN = ["volcano", "glacier", "harbor", "meteor", "canyon", "lantern", "orchard", "tundra", "falcon", "prairie",
        "walrus", "quarry", "beacon", "lagoon", "thistle", "citadel", "marmot", "geyser", "fjord", "bramble"]


def _texts(n: int = 80, seed: int = 0) -> list[str]:
    """Templates (16 frequent non-stop words each) filled with 5 rare plan words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = rng.sample(PLAN, 5)
        out.append(f"Yesterday morning reporters described the {w[0]} near the {w[1]} and the {w[2]}.\n"
                   f"Officials later said the {w[3]} looked like a {w[4]} during weather reports, people noted "
                   "quietly today.")
    return out


def _reference(texts: list[str], rate: float, min_df: int) -> list[str]:
    """The vocabulary computed directly from sklearn's matrix, written independently."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(min_df=min_df, stop_words="english")
    x = vec.fit_transform(texts).toarray()
    names = list(vec.get_feature_names_out())
    mean = {w: x[:, j][x[:, j] > 0].mean() for j, w in enumerate(names)}
    ranked = sorted(names, key=lambda w: (-mean[w], w))
    analyze = vec.build_analyzer()
    tokens = [t for text in texts for t in analyze(text)]
    vocab = []
    for w in ranked:
        vocab.append(w)
        if sum(t in set(vocab) for t in tokens) / len(tokens) > rate:
            break
    return vocab


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_stage_vocabulary_equals_the_sklearn_reference(rate):
    texts = _texts()
    assert pg.stage_vocab(texts, rate, min_df=5) == _reference(texts, rate, 5)


def test_vocabularies_are_nested_and_cover_more_than_the_rate():
    texts = _texts()
    analyze = pg.analyzer()
    tokens = [t for text in texts for t in analyze(text)]
    v1, v2 = pg.stage_vocab(texts, 0.2), pg.stage_vocab(texts, 0.25)
    assert v2[: len(v1)] == v1
    assert sum(t in set(v1) for t in tokens) / len(tokens) > 0.2
    everything = pg.stage_vocab(texts, 1.0)  # exhausted: every word with min_df, coverage may stay <= 1
    assert len(everything) == len(set(everything)) and set(v2) <= set(everything)


def test_planted_plan_words_make_the_first_quarter_vocabulary():
    v = pg.stage_vocab(_texts(), 0.25)
    assert sum(w in v for w in PLAN) >= 0.9 * len(PLAN) and len(set(v) - set(PLAN)) <= 1


def test_stage_texts_are_subsequences_of_the_next_stage_and_in_vocabulary():
    texts = _texts()
    v1, v2 = pg.stage_vocab(texts, 0.2), pg.stage_vocab(texts, 0.5)
    for text in texts[:10]:
        s1, s2 = pg.stage_text(text, v1), pg.stage_text(text, v2)
        assert s1.count("\n") == s2.count("\n") == text.count("\n")
        for p1, p2 in zip(s1.split("\n"), s2.split("\n")):
            it = iter(p2.split())
            assert all(tok in it for tok in p1.split())  # subsequence
            assert set(p1.split()) <= set(v1)
    assert pg.stage_text("The VOLCANO, the glacier!\nnothing here", {"volcano", "glacier"}) == "volcano glacier\n"


def test_noise_keeps_counts_and_condition_uses_the_vocabulary_and_is_seeded():
    vocab = ["zz1", "zz2", "zz3"]
    text = pg.stage_input("a story about ships", "alpha beta gamma delta\nepsilon zeta eta theta iota kappa")
    assert pg.add_noise(text, vocab, random.Random(0), prob=0.0) == text
    noised = pg.add_noise(text, vocab, random.Random(1), prob=0.5)
    assert noised == pg.add_noise(text, vocab, random.Random(1), prob=0.5)
    cond, body = noised.split(pg.SEP)
    assert cond == "a story about ships"
    orig = text.split(pg.SEP)[1]
    for a, b in zip(orig.split("\n"), body.split("\n")):
        assert len(a.split()) == len(b.split())
        assert all(y == x or y in vocab for x, y in zip(a.split(), b.split()))


def test_noise_rate_is_about_point_19():
    words = [f"w{i}" for i in range(5000)]
    noised = pg.add_noise(" ".join(words), ["zz"], random.Random(3)).split()
    rate = np.mean([a != b for a, b in zip(words, noised)])
    assert 0.13 < rate < 0.2  # 0.1 (1 + .5 + .25 + .125) = 0.1875, less overlapping runs


def test_stage_inputs_chain_condition_sep_previous_stage():
    assert pg.stage_input("cond", "prev text") == "cond [SEP] prev text"
    texts = _texts()
    vocabs = [pg.stage_vocab(texts, 0.25)]
    ex = [{"condition": "a tale", "text": texts[0]}]
    s1, s2 = pg.stage_examples(ex, vocabs, 1)[0], pg.stage_examples(ex, vocabs, 2)[0]
    assert s1 == {"source": "a tale", "target": pg.stage_text(texts[0], vocabs[0])}
    assert s2 == {"source": "a tale [SEP] " + s1["target"], "target": texts[0]}
