"""The D aligner's weak supervision: masking, refilling and labelling (CTC Appendix A)."""

from __future__ import annotations

import random

import pytest

from glassbox_workloads.metrics.ctc.weak import (MASK, Node, RandomWordRefiller, build_examples, hallucinate,
                                                  make_template, phrase_tree, recover_fillings)
from glassbox_workloads.metrics.text import is_stopword

SENT = "the quick brown fox jumped over the lazy dog near the river bank ."


def test_phrase_tree_groups_runs_of_content_words_and_keeps_stop_words_as_leaves():
    tree = phrase_tree("the quick brown fox and the dog .")
    assert [c.text for c in tree.children] == ["the", "quick brown fox", "and", "the", "dog", "."]
    assert [c.text for c in tree.children[1].children] == ["quick", "brown", "fox"]


def test_templates_follow_the_authors_rules():
    rng = random.Random(0)
    for _ in range(200):
        made = make_template(phrase_tree(SENT), rng)
        if made is None:
            continue
        template, answers = made
        assert template != MASK and f"{MASK} {MASK}" not in template
        assert template.count(MASK) == len(answers) >= 1
        assert not any(is_stopword(a) or not any(ch.isalnum() for ch in a) for a in answers)
        # Filling the answers back gives the sentence.
        filled = template
        for a in answers:
            filled = filled.replace(MASK, a, 1)
        assert filled == SENT


def test_a_sentence_of_stop_words_cannot_be_masked():
    assert make_template(phrase_tree("the and of ."), random.Random(0)) is None


def test_masking_the_only_phrase_or_two_adjacent_words_is_rejected():
    # Root (p 2/2/3) over one phrase (p 2/2/2) over 2 words (p 1/2 each): a masked phrase or root is
    # an all-mask template and both words masked is "<mask> <mask>"; only single words survive.
    root = Node("red fox", [Node("red fox", [Node("red"), Node("fox")])])
    counts = {"red fox": 0, "red": 0, "fox": 0}
    rng = random.Random(1)
    for _ in range(3000):
        made = make_template(root, rng, tries=1)
        if made:
            for a in made[1]:
                counts[a] += 1
    assert counts["red fox"] == 0  # masking the only phrase masks everything: rejected
    assert counts["red"] > 0 and counts["fox"] > 0


def test_rule_based_refiller_uses_vocabulary_words_never_the_answer_and_keeps_word_counts():
    ref = RandomWordRefiller(["cat", "dog", "mat", "sun"])
    rng = random.Random(0)
    for _ in range(100):
        fills = ref.fill("x", ["cat", "big mat"], rng)
        assert fills[0] != "cat" and len(fills[1].split()) == 2 and fills[1].split()[1] != "mat"
    with pytest.raises(ValueError):
        RandomWordRefiller(["only"])


def test_recover_fillings_matches_the_template_with_regex_specials_escaped():
    assert recover_fillings("the <mask> sat (on) the <mask> .", "The big dog sat (on) the Mat .") == ["big dog", "Mat"]
    assert recover_fillings("a <mask> b", "a x c") is None


def test_build_examples_labels_every_word_and_marks_only_changed_fillings():
    ref = RandomWordRefiller(["apple", "pear", "plum", "kiwi"])
    pairs = [("The quick brown fox jumped over the lazy dog. It ran to the river bank.", "Context Doc")] * 20
    out = build_examples(pairs, ref, seed=3)
    assert out
    for ex in out:
        words = ex.input_text.split()
        assert len(words) == len(ex.labels) and ex.context == "context doc"
        assert any(ex.labels)
        for w, y in zip(words, ex.labels):
            assert y == (w in {"apple", "pear", "plum", "kiwi"})


def test_hallucinate_fails_when_the_refiller_cannot_fill():
    class Refuses:
        def fill(self, template, answers, rng):
            return None

    assert hallucinate(SENT, Refuses(), random.Random(0)) is None


def test_model_infiller_recovers_the_spans_a_seq2seq_model_generated():
    import torch

    from glassbox_workloads.metrics.ctc.weak import ModelInfiller
    from glassbox_workloads.runtime.hfmodels import train_tokenizer

    tok = train_tokenizer(["the big dog sat on the red mat", "a cat"] * 4, "bart", 200)

    class Generates(torch.nn.Module):
        """Stands in for BART: returns a fixed text, and records what it was asked to infill."""

        def __init__(self, text):
            super().__init__()
            self.text, self.seen = text, None

        def generate(self, input_ids, **kw):
            self.seen = tok.decode(input_ids[0], skip_special_tokens=False)
            assert kw["do_sample"] and kw["top_p"] == 0.95
            return torch.tensor([tok(self.text)["input_ids"]])

    model = Generates("The big dog sat on the red mat")
    got = ModelInfiller(model, tok).fill("the <mask> sat on the <mask>", ["cat", "mat"], random.Random(0))
    assert got == ["big dog", "red mat"] and tok.mask_token in model.seen
    off_template = ModelInfiller(Generates("a cat"), tok).fill("the <mask> sat on the <mask>", ["cat", "mat"],
                                                               random.Random(0))
    assert off_template is None


def test_the_farthest_paraphrase_by_levenshtein_distance_is_kept():
    from glassbox_workloads.metrics.ctc.weak import farthest

    assert farthest("the cat sat", ["the cat sat.", "a feline was sitting", "the cat sits"]) == "a feline was sitting"
    assert farthest("x", []) == "x"


def test_build_examples_paraphrases_each_sentence_before_masking():
    seen = []

    def para(sentence, rng):
        seen.append(sentence)
        return sentence.replace("fox", "wolf")

    ref = RandomWordRefiller(["apple", "pear"])
    out = build_examples([("The fox ran home. The fox slept.", "ctx")], ref, seed=0, paraphrase=para)
    assert seen == ["The fox ran home.", "The fox slept."]
    assert all("fox" not in e.input_text for e in out)


def test_model_paraphraser_samples_and_keeps_the_farthest():
    import torch

    from glassbox_workloads.metrics.ctc.weak import ModelParaphraser
    from glassbox_workloads.runtime.hfmodels import train_tokenizer

    tok = train_tokenizer(["the cat sat on the mat", "a feline was sitting there"] * 4, "bart", 200)

    class Samples(torch.nn.Module):
        def generate(self, input_ids, **kw):
            assert kw["num_return_sequences"] == 3 and kw["top_k"] == 120 and kw["do_sample"]
            rows = [tok(t)["input_ids"] for t in ("the cat sat on the mat", "a feline was sitting there", "the cat")]
            width = max(map(len, rows))
            return torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])

    para = ModelParaphraser(Samples(), tok, samples=3)
    assert para("the cat sat on the mat", random.Random(0)) == "a feline was sitting there"
