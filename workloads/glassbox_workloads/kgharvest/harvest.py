"""One relation, end to end: prompts, their weights, the search, the rescoring (BertNet's
`main.py` loop body). Pure of any store: the workload publishes what this returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from glassbox_api.kinds.kgharvest import KGHarvestSpec, Relation

from .mlm import MaskedLM
from .prompts import Generator, clean_seed, fix_prompt_style, search_prompts
from .scoring import Tuple_, prompt_scores, rescore
from .search import SearchOptions, TupleSearch
from .weights import WeightOptions, corruptions, prompt_weights

Stage = Callable[[str], None]
"""Told the stage a relation enters: prompts, weights, search, rescore."""


@dataclass
class WeightedPrompt:
    prompt: str
    weight: float
    seed_score: float
    """Mean score of the seeds under the prompt."""
    corruption_score: float
    """Mean score of the corrupted seeds."""

    def to_json(self) -> dict:
        return {"prompt": self.prompt, "weight": self.weight, "seedScore": self.seed_score,
                "corruptionScore": self.corruption_score}


@dataclass
class Harvest:
    """What one relation produced."""

    relation: str
    prompts: list[WeightedPrompt]
    tuples: list[tuple[Tuple_, float, float]]
    """(entities, score, weight), best first."""
    forward_rows: int = 0
    search_nodes: int = 0
    extra: dict = field(default_factory=dict)


def search_options(spec: KGHarvestSpec) -> SearchOptions:
    s = spec.search
    return SearchOptions(max_tuples=s.max_tuples, max_subwords=s.max_subwords,
                         first_entity_candidates=s.first_candidates, later_entity_candidates=s.later_candidates,
                         max_word_repeat=s.max_word_occurrences, min_entity_chars=s.min_entity_chars)


def weight_options(spec: KGHarvestSpec) -> WeightOptions:
    w = spec.prompt_weights
    return WeightOptions(temperature=w.temperature, corruption_coefficient=w.corruption_coefficient,
                         top_k=w.top_k, min_weight=w.min_weight)


def make_prompts(rel: Relation, spec: KGHarvestSpec, generate: Optional[Generator]) -> list[str]:
    """The relation's prompts: the given ones in BertNet's style, grown by paraphrases when a
    generator is set (and useInitPromptsOnly is off)."""
    seeds = [clean_seed(s) for s in rel.seeds]
    p = spec.paraphrase
    if generate is None or p.use_init_prompts_only:
        return list(dict.fromkeys(fix_prompt_style(x) for x in rel.prompts))
    return search_prompts(generate, rel.prompts, seeds, max_prompts=p.max_prompts,
                          similarity=p.similarity_threshold, retries=p.max_retries)


def weigh(mlm: MaskedLM, prompts: list[str], seeds: list[Tuple_], opts: WeightOptions) -> list[WeightedPrompt]:
    """Each prompt's weight from its seed and corruption scores."""
    bad = corruptions(seeds)
    pos, neg = [], []
    for p in prompts:
        pos.append(sum(prompt_scores(mlm, p, seeds)) / len(seeds))
        neg.append(sum(prompt_scores(mlm, p, bad)) / len(bad) if bad else 0.0)
    ws = prompt_weights(pos, neg, opts)
    return [WeightedPrompt(p, w, a, b) for p, w, a, b in zip(prompts, ws, pos, neg)]


def harvest_relation(mlm: MaskedLM, rel: Relation, spec: KGHarvestSpec, *, generate: Optional[Generator] = None,
                     stage: Stage = lambda s: None) -> Harvest:
    """Prompts, weights, search, rescoring for one relation."""
    rows0 = mlm.forward_rows
    seeds = [clean_seed(s) for s in rel.seeds]
    stage("prompts")
    prompts = make_prompts(rel, spec, generate)
    stage("weights")
    weighted = weigh(mlm, prompts, seeds, weight_options(spec))
    stage("search")
    search = TupleSearch(mlm, {w.prompt: w.weight for w in weighted}, search_options(spec))
    found = search.run()
    stage("rescore")
    tuples = rescore(mlm, {w.prompt: w.weight for w in weighted if w.weight > 0}, [t for t, _ in found])
    return Harvest(rel.name, sorted(weighted, key=lambda w: -w.weight), tuples,
                   forward_rows=mlm.forward_rows - rows0, search_nodes=search.nodes)
