"""KGHarvest: BertNet-style harvesting of a knowledge graph for any relation from a language model."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from .base import Block, Rule
from .common import BaseStatus, FailurePolicy, ModelSpec, Resources, Storage

EntityName = Annotated[str, Field(min_length=1, max_length=128)]
Prompt = Annotated[str, Field(min_length=7, max_length=256)]


class Relation(Block):
    """One relation to harvest: prompts with <ENT0>, <ENT1> slots and a few seed tuples."""

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .-]*$")]
    """Relation name, e.g. capital_of."""
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=20)]
    """Initial prompts; each holds every entity slot <ENT0>, <ENT1>, ... exactly once."""
    seeds: Annotated[list[Annotated[list[EntityName], Field(min_length=2, max_length=4)]], Field(min_length=1, max_length=100)]
    """Seed entity tuples (about 5), e.g. [France, Paris]."""

    rules = (
        Rule(
            "self.prompts.all(p, p.contains('<ENT0>') && p.contains('<ENT1>'))",
            "every prompt must contain the slots <ENT0> and <ENT1>",
            lambda r: all("<ENT0>" in p and "<ENT1>" in p for p in r.prompts),
            ".prompts",
        ),
        Rule(
            "self.seeds.all(s, size(s) == size(self.seeds[0]))",
            "all seed tuples must have the same number of entities",
            lambda r: all(len(s) == len(r.seeds[0]) for s in r.seeds),
            ".seeds",
        ),
    )


class Paraphrase(Block):
    """Prompt creation: paraphrase the initial prompts and keep distinct ones."""

    generator: Optional[ModelSpec] = None
    """A generator model for paraphrases; without one, only the given prompts are used."""
    max_prompts: Annotated[int, Field(ge=1, le=100)] = 10
    """Stop when this many prompts are collected."""
    similarity_threshold: Annotated[int, Field(ge=0, le=100)] = 75
    """Drop a paraphrase whose fuzzy ratio to a kept one is at least this."""


class PromptWeights(Block):
    """Prompt weighting by seed scores."""

    top_k: Annotated[int, Field(ge=1, le=100)] = 20
    """Keep the best-scored prompts."""
    min_weight: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Zero softmax weights below this, then renormalise."""


class Search(Block):
    """Branch-and-bound search over entity tuples."""

    max_tuples: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    """Tuples kept per relation."""
    max_subwords: Annotated[int, Field(ge=1, le=8)] = 2
    """Subword tokens per entity."""
    first_entity_candidates: Annotated[int, Field(ge=1, le=100000)] = 1000
    """Candidate cap for the first entity."""
    later_entity_candidates: Annotated[int, Field(ge=1, le=100000)] = 5
    """Candidate cap for each later entity."""
    max_word_occurrences: Annotated[int, Field(ge=1, le=1000)] = 5
    """A word may appear in at most this many tuples."""
    min_entity_chars: Annotated[int, Field(ge=1, le=64)] = 3
    """Entities must be longer than this minus one (more than 2 characters by default)."""


class KGHarvestSpec(Block):
    """Desired state of a KGHarvest."""

    model: ModelSpec
    """A masked language model (BERT/RoBERTa-style)."""
    relations: Annotated[
        list[Relation],
        Field(min_length=1, max_length=256, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ]
    """Relations to harvest; names are unique."""
    paraphrase: Paraphrase = Paraphrase()
    """Prompt creation."""
    prompt_weights: PromptWeights = PromptWeights()
    """Prompt weighting."""
    search: Search = Search()
    """Tuple search."""
    resources: Resources = Resources()
    """Backend and node pool."""
    storage: Storage = Storage()
    """Where the knowledge graph is published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries on failure."""
    suspend: bool = False
    """Tear the workload down; finished relations stay published."""

    rules = (
        Rule(
            "self.resources.backend != 'ray'",
            "KGHarvest runs on backend job, jobset or local",
            lambda s: s.resources.backend != "ray",
            ".resources.backend",
        ),
    )


class HarvestProgress(Block):
    """Harvest progress."""

    relations_done: Optional[Annotated[int, Field(ge=0)]] = None
    """Relations finished."""
    relations_total: Optional[Annotated[int, Field(ge=0)]] = None
    """Relations requested."""
    tuples: Optional[Annotated[int, Field(ge=0)]] = None
    """Tuples harvested so far."""
    done: Optional[Annotated[str, Field(max_length=64)]] = None
    """Progress as a person reads it: `{relationsDone}/{relationsTotal}` (relations)."""


class KGHarvestStatus(BaseStatus):
    """Observed state of a KGHarvest."""

    progress: Optional[HarvestProgress] = None
    """Harvest progress."""
