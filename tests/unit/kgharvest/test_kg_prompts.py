"""Prompt validity, style, and the paraphrase rounds with a scripted generator."""

from __future__ import annotations

import itertools

from glassbox_workloads.kgharvest.prompts import (
    fix_prompt_style, has_slots_once, is_valid_prompt, search_prompts, templatize,
)


def test_is_valid_prompt_needs_a_space_or_quote_before_each_slot():
    assert is_valid_prompt("<ENT0> lives in the <ENT1> .")
    assert is_valid_prompt('He said "<ENT0>" to <ENT1> .')
    assert not is_valid_prompt("The <ENT0>'s home is x<ENT1> .")


def test_slots_exactly_once():
    assert has_slots_once("<ENT0> and <ENT1> and <ENT2>", 3)
    assert not has_slots_once("<ENT0> and <ENT0>", 2)
    assert not has_slots_once("<ENT0> and <ENT1>", 3)


def test_fix_prompt_style():
    assert fix_prompt_style("the capital city of <ENT0> is <ENT1>.") == "The capital city of <ENT0> is <ENT1> ."
    assert fix_prompt_style("<ENT1> is the capital of <ENT0> .") == "<ENT1> is the capital of <ENT0> ."


def test_templatize_tries_the_edits_until_each_entity_occurs_once():
    assert templatize("the lion is living in a savanna", ["lion", "savanna"]) == "the <ENT0> is living in a <ENT1>"
    assert templatize("the lion eats in savanna", ["lion eating", "savanna"]) == "the <ENT0>s in <ENT1>"  # ing -> ''
    assert templatize("swimming happens in the pool", ["swimming", "pool"]) == "<ENT0> happens in the <ENT1>"
    assert templatize("lion and lion in savanna", ["lion", "savanna"]) is None


def test_search_prompts_adds_distinct_paraphrases_and_stops_when_a_round_adds_none():
    replies = itertools.cycle(["the natural habitat of {0} is the {1}.", "{0} lives in the {1}.", "bad output"])
    asked: list[str] = []

    def generate(text: str) -> str:
        asked.append(text)
        sent = text.split("\n")[1]
        a, b = sent.split(" lives in the ")[0].lower(), sent.split(" lives in the ")[-1].rstrip(" .")
        return next(replies).format(a, b)

    got = search_prompts(generate, ["<ENT0> lives in the <ENT1>."], [("lion", "savanna"), ("otter", "river")],
                         max_prompts=10)
    assert got[0] == "<ENT0> lives in the <ENT1> ."
    assert "The natural habitat of <ENT0> is the <ENT1> ." in got
    assert len(got) == len(set(got))
    assert all(a.startswith("paraphrase:\n") for a in asked)


def test_without_a_generator_nothing_is_asked():
    # The workload uses the given prompts as they are when no generator is configured.
    assert search_prompts(lambda t: "", ["<ENT0> lives in the <ENT1>."], [("lion", "savanna")]) == [
        "<ENT0> lives in the <ENT1> ."]
