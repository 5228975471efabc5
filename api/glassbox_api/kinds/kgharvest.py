"""KGHarvest: BertNet-style harvesting of a knowledge graph for any relation from a language model."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

import re

from .base import Block, Rule
from .common import BaseStatus, DatasetRef, FailurePolicy, ModelSpec, Resources, Storage

EntityName = Annotated[str, Field(min_length=1, max_length=128)]
Prompt = Annotated[str, Field(min_length=7, max_length=256)]

MAX_ARITY = 4
"""Seed tuples hold 2 to 4 entities."""


def _slot_once(p: str, i: int) -> bool:
    return p.count(f"<ENT{i}>") == 1


def _slots_match(prompt: str, n: int) -> bool:
    """<ENT0>..<ENT{n-1}> each exactly once, no other slot."""
    return all(_slot_once(prompt, i) if i < n else f"<ENT{i}>" not in prompt for i in range(MAX_ARITY)) and \
        not re.search(r"<ENT[4-9]", prompt)


def _slots_cel() -> str:
    once = "(p.indexOf('<ENT{i}>') >= 0 && p.indexOf('<ENT{i}>') == p.lastIndexOf('<ENT{i}>'))"
    parts = [f"(size(self.seeds[0]) > {i} ? {once.format(i=i)} : !p.contains('<ENT{i}>'))" for i in range(MAX_ARITY)]
    return "self.prompts.all(p, " + " && ".join(parts) + " && !p.matches('<ENT[4-9]'))"


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
            _slots_cel(),
            "every prompt must hold each slot <ENT0>..<ENT{n-1}> exactly once, n being the seeds' arity",
            lambda r: all(_slots_match(p, len(r.seeds[0])) for p in r.prompts),
            ".prompts",
        ),
        Rule(
            "self.prompts.all(p, !p.matches('[^ \"]<ENT'))",
            'every slot must follow a space or a double quote (or start the prompt), as in "<ENT0> lives in the <ENT1>."',
            lambda r: all(not re.search(r'[^ "]<ENT', p) for p in r.prompts),
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
    """A generator model for paraphrases (a seq2seq or causal LM, asked "paraphrase:\\n<sentence>\\n");
    without one, only the given prompts are used."""
    use_init_prompts_only: bool = False
    """Harvest with the given prompts only, even when a generator is set (BertNet's use_init_prompts)."""
    max_prompts: Annotated[int, Field(ge=1, le=100)] = 10
    """Stop when this many prompts are collected."""
    similarity_threshold: Annotated[int, Field(ge=0, le=100)] = 75
    """Drop a paraphrase whose fuzzy ratio to a kept one is at least this."""
    max_retries: Annotated[int, Field(ge=1, le=50)] = 5
    """Generator calls per (prompt, seed) until a paraphrase holds every entity exactly once."""
    max_new_tokens: Annotated[int, Field(ge=1, le=256)] = 30
    """Tokens generated per paraphrase."""
    temperature: Annotated[float, Field(gt=0, le=10)] = 1.0
    """Sampling temperature of the generator."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Sampling seed: the same spec and generator give the same prompts."""


class PromptWeights(Block):
    """Prompt weighting by seed scores."""

    top_k: Annotated[int, Field(ge=1, le=100)] = 20
    """Keep the best-scored prompts."""
    min_weight: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Zero softmax weights below this, then renormalise."""
    temperature: Annotated[float, Field(gt=0, le=100)] = 2.0
    """Softmax temperature over (seed score - c * corruption score); BertNet runs with 2.0."""
    corruption_coefficient: Annotated[float, Field(ge=0, le=10)] = 0.5
    """c: how much a prompt is penalised for scoring corrupted seeds well."""


class Search(Block):
    """Branch-and-bound search over entity tuples."""

    max_tuples: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    """Tuples kept per relation."""
    max_subwords: Annotated[int, Field(ge=1, le=8)] = 2
    """Subword tokens per entity."""
    first_entity_candidates: Optional[Annotated[int, Field(ge=1, le=1_000_000)]] = None
    """Candidate cap for the first entity; defaults to maxTuples, as BertNet ties them."""
    later_entity_candidates: Optional[Annotated[int, Field(ge=1, le=100000)]] = None
    """Candidate cap for each later entity; defaults to maxWordOccurrences, as BertNet ties them."""
    max_word_occurrences: Annotated[int, Field(ge=1, le=1000)] = 5
    """A word may appear in at most this many tuples."""
    min_entity_chars: Annotated[int, Field(ge=1, le=64)] = 3
    """Fewest characters of an entity, spaces not counted (BertNet keeps entities of more than 2)."""

    @property
    def first_candidates(self) -> int:
        return self.first_entity_candidates or self.max_tuples

    @property
    def later_candidates(self) -> int:
        return self.later_entity_candidates or self.max_word_occurrences


class Pretrain(Block):
    """Teach a masked LM initialised from model.config the facts of a text corpus before harvesting
    (a model from a random config knows nothing); the trained model is published as the run's
    checkpoint and a restarted run loads it instead of training again."""

    corpus: DatasetRef
    """Plain text, one or more sentences per line (format text)."""
    steps: Annotated[int, Field(ge=1, le=1_000_000)] = 300
    """Optimizer steps."""
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    """Lines per step."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 3e-3
    """AdamW learning rate (linear decay to 0)."""
    mask_probability: Annotated[float, Field(gt=0, lt=1)] = 0.15
    """Share of tokens masked per line (at least one per line)."""
    sequence_length: Annotated[int, Field(ge=8, le=4096)] = 32
    """Tokens per line, longer lines cut."""
    tokenizer: Literal["word", "bpe"] = "word"
    """word: one token per word (a word is one mask position); bpe: WordPiece/BPE subwords."""
    vocab_size: Optional[Annotated[int, Field(ge=16, le=1_048_576)]] = None
    """Tokenizer vocabulary; defaults to model.config.vocabSize."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Initialisation and data order."""


class HarvestResources(Resources):
    """Resources of a harvest. On backend job, workers > 1 makes an Indexed Job: one relation per
    index, `workers` pods at a time (relations are independent)."""

    rules = tuple(r for r in Resources.rules if "backend != 'job'" not in r.cel)


class KGHarvestSpec(Block):
    """Desired state of a KGHarvest."""

    model: ModelSpec
    """A masked language model (BERT/RoBERTa-style) with its MLM head: uri, fromRun, or architecture
    and config together with `pretrain`."""
    pretrain: Optional[Pretrain] = None
    """Train the model from its config on a corpus first (only for a model from a config)."""
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
    resources: HarvestResources = HarvestResources()
    """Backend and node pool; workers > 1 on backend job harvests one relation per pod (Indexed Job)."""
    storage: Storage = Storage()
    """Where the knowledge graph is published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries on failure."""
    suspend: bool = False
    """Tear the workload down; finished relations stay published."""

    rules = (
        Rule(
            "!has(self.pretrain) || (!has(self.model.uri) && !has(self.model.fromRun))",
            "pretrain trains a model from model.config: drop model.uri and model.fromRun, or drop pretrain",
            lambda s: s.pretrain is None or (s.model.uri is None and s.model.from_run is None),
            ".pretrain",
        ),
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
    current_relation: Optional[Annotated[str, Field(max_length=128)]] = None
    """The relation being harvested now."""
    stage: Optional[Literal["pretrain", "prompts", "weights", "search", "rescore"]] = None
    """What the current relation is doing."""
    knowledge_graph: Optional[Annotated[str, Field(max_length=2048)]] = None
    """URI of kg.jsonl (every relation's tuples) once the harvest is complete."""
    done: Optional[Annotated[str, Field(max_length=64)]] = None
    """Progress as a person reads it: `{relationsDone}/{relationsTotal}` (relations)."""


class KGHarvestStatus(BaseStatus):
    """Observed state of a KGHarvest."""

    progress: Optional[HarvestProgress] = None
    """Harvest progress."""
