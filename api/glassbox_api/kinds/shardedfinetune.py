"""ShardedFinetune: Redco-style automatic tensor parallelism in JAX with three-function recipes."""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field

from .base import Block, Rule, immutable
from .common import BaseStatus, DatasetRef, FailurePolicy, FunctionRef, Lineage, ModelSpec, Name, Resources, Storage, Uri


class FinetuneData(Block):
    """Training and evaluation examples."""

    train: DatasetRef
    """Training examples (one JSON object per example)."""
    eval: Optional[DatasetRef] = None
    """Evaluation examples."""
    max_source_length: Annotated[int, Field(ge=8, le=131072)] = 512
    """Longest input (prompt / document) in tokens; longer inputs are truncated."""
    max_target_length: Annotated[int, Field(ge=1, le=131072)] = 128
    """Longest target in tokens."""
    tokenizer: Optional[Uri] = None
    """Tokenizer (tokenizer.json or its folder); defaults to the one stored with the model."""


class RewardRange(Block):
    """Linear reward shaping from [0, 100] to [min, max]."""

    min: Annotated[float, Field(ge=-1e6, le=1e6)] = -50.0
    """Reward that a raw 0 maps to."""
    max: Annotated[float, Field(ge=-1e6, le=1e6)] = 50.0
    """Reward that a raw 100 maps to."""

    rules = (Rule("self.min < self.max", "rewardRange.min must be below max", lambda r: r.min < r.max, ".min"),)


class SoftQ(Block):
    """Soft Q-learning for text generation (path consistency learning)."""

    loss: Literal["single", "multi", "both"] = "both"
    """Single-step PCL, multi-step PCL, or their average."""
    tau: Annotated[float, Field(gt=0, le=1)] = 0.001
    """Polyak averaging rate of the target network per step (1 copies exactly)."""
    on_policy_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Weight of the on-policy (model samples) loss in each batch; the rest is off-policy."""
    top_k: Annotated[int, Field(ge=1, le=100000)] = 50
    """Top-k sampling for on-policy sequences."""
    reward_fn: FunctionRef
    """Reward function `module:function`, called on (sources, generated texts) -> scores in [0, 100]."""
    reward_range: RewardRange = RewardRange()
    """Reward shaping."""


POS_TAGS = ["FW", "JJ", "NN", "NNS", "NNP", "VB", "VBD", "VBG", "VBN", "VBZ", "VBP"]


class Distractors(Block):
    """Wrong choices of the multiple-choice head, besides the true abstract."""

    shuffled: Annotated[int, Field(ge=0, le=1)] = 1
    """The true abstract with its tokens randomly permuted (0 or 1)."""
    random: Annotated[int, Field(ge=0, le=15)] = 2
    """Other abstracts of the training set, drawn at random."""

    rules = (Rule("self.shuffled + self.random >= 1", "distractors: at least one wrong choice is needed",
                  lambda d: d.shuffled + d.random >= 1, ".random"),)


class KeywordSummarization(Block):
    """Settings of the keyword-summarization recipe (GPT-2 double heads, COVID-19 literature).

    Examples are JSON objects with `abstract` (keywords are tagged from it) or `abstract` and
    `keywords` (a list or a space-separated string). The model is gpt2; its vocabSize must leave
    room for two added tokens (keyword, summarize) after the tokenizer's."""

    pos_tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=8)]], Field(min_length=1, max_length=48)] = POS_TAGS
    """Penn Treebank tags whose words are keyword candidates (the paper's set)."""
    keep_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8
    """Keywords are a seeded random int(keepRatio * L) + 1 of the L candidates, in text order."""
    max_keyword_tokens: Annotated[int, Field(ge=1, le=4096)] = 190
    """Keyword tokens kept."""
    max_length: Annotated[int, Field(ge=16, le=131072)] = 1024
    """Tokens per choice; the abstract gets maxLength - maxKeywordTokens - 11."""
    distractors: Distractors = Distractors()
    """Wrong choices: 1 shuffled + 2 random makes the paper's four choices."""
    lm_coef: Annotated[float, Field(ge=0, le=100)] = 2.0
    """Weight of the LM loss (on the true choice's abstract)."""
    mc_coef: Annotated[float, Field(ge=0, le=100)] = 1.0
    """Weight of the multiple-choice loss."""
    tagger: Literal["spacy", "provided"] = "spacy"
    """spacy: tag abstracts with spaCy's English pipeline (installed offline by hack/assets.sh);
    provided: every example carries its keywords."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the keyword subsets, distractors and choice order."""

    rules = (Rule("self.maxKeywordTokens + 12 < self.maxLength", "keywordSummarization.maxKeywordTokens leaves no "
                  "room for the abstract in maxLength", lambda k: k.max_keyword_tokens + 12 < k.max_length,
                  ".maxKeywordTokens"),)


class ProgressiveNoise(Block):
    """Training noise on the text after [SEP]: random words of the source stage's vocabulary."""

    prob: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Chance that a token starts a replaced run."""
    continue_prob: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Chance that a run goes on to the next token."""
    max_run: Annotated[int, Field(ge=1, le=64)] = 4
    """Longest run of replaced tokens."""


class ProgressiveVocab(Block):
    """How stage vocabularies are computed from the training texts."""

    min_df: Annotated[int, Field(ge=1, le=1_000_000)] = 5
    """Words in fewer documents are left out (TfidfVectorizer min_df)."""


class Progressive(Block):
    """Settings of the progressive recipe: one resource trains every stage, in order, and chains them.

    Examples are {"condition", "text"}. With stages [r1, .., rn] the run trains n + 1 bart models
    (each from spec.model, each for spec.training's epochs or maxSteps): stage 1 maps the condition
    to the V(r1) text; stage k maps `condition [SEP] stage k-1 text` to the V(rk) text; stage n + 1
    ends at the original text. Every stage publishes its checkpoints under `stages/<k>/` of the
    same run; evaluation chains the stages (condition -> stage 1 -> ... -> text) with
    spec.generation and publishes every stage's text."""

    stages: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], Field(min_length=1, max_length=4)] = [0.25]
    """Vocabulary rates of the intermediate stages, increasing: [0.25] trains two models (condition
    -> 0.25 text -> text, ProGeT-2), [0.2, 0.25] three (ProGeT-3)."""
    stage: Optional[int] = None
    """Removed (one resource per stage was the old layout): refused when set. Every stage is trained
    by the one resource that declares stages."""
    vocab: ProgressiveVocab = ProgressiveVocab()
    """Stage vocabularies."""
    noise: ProgressiveNoise = ProgressiveNoise()
    """Training noise of stages after the first."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the noise."""

    rules = (
        Rule("!has(self.stage)", "progressive.stage was removed: one ShardedFinetune now trains every stage "
             "(len(stages) + 1 models, in order) and chains them; delete stage, and merge the per-stage "
             "resources of the same stages into one", lambda p: p.stage is None, ".stage"),
        Rule("[1, 2, 3].all(i, i >= size(self.stages) || self.stages[i - 1] < self.stages[i])",
             "progressive.stages must increase", lambda p: all(a < b for a, b in zip(p.stages, p.stages[1:])),
             ".stages"),
    )

    @property
    def n_stages(self) -> int:
        """Models the run trains: one per intermediate stage, and the last one (to the text)."""
        return len(self.stages) + 1


BANNED_RELATIONS = ["Antonym", "DistinctFrom", "NotCapableOf", "NotDesires", "NotHasProperty", "RelatedTo", "DerivedFrom",
                    "EtymologicallyDerivedFrom", "EtymologicallyRelatedTo", "HasContext", "dbpedia"]
"""The relations the aspect-summarization authors exclude from ConceptNet (dbpedia/* as a family)."""


class HarvestRef(Block):
    """A KGHarvest in the same namespace: its published kg.jsonl (sha256-checked against the
    harvest's manifest) stands in for ConceptNet."""

    kind: Literal["KGHarvest"] = "KGHarvest"
    """Kind of the source resource."""
    name: Name
    """Name of the KGHarvest. Until its manifest says completed, the operator waits (phase
    Pending, reason WaitingForCheckpoint)."""
    run_uri: Optional[Uri] = None
    """Set by the operator from the harvest's status: its run folder. Leave it unset; without it
    the workload finds the run in its own artifact store."""


class AspectKnowledge(Block):
    """The knowledge graph of the weak supervision: an edge file, or a KGHarvest's tuples."""

    uri: Optional[Uri] = None
    """ConceptNet-format edges: tab-separated `head relation tail [weight]` lines (ConceptNet's
    assertions extract), or JSON lines `{head, relation, tail, weight}`; a file or folder
    (s3://, file://, or a path relative to the spec)."""
    from_run: Optional[HarvestRef] = None
    """A KGHarvest's published knowledge graph; the operator records it in status.lineage.knowledge."""

    rules = (Rule("has(self.uri) != has(self.fromRun)", "aspectSummarization.knowledge needs exactly one of uri "
                  "and fromRun", lambda k: (k.uri is None) != (k.from_run is None)),)


class AspectNer(Block):
    """Named entities of each summary: the in-text aspects."""

    source: Literal["spacy", "provided"] = "spacy"
    """spacy: spaCy's English pipeline (installed offline, pinned by hash, by hack/assets.sh; the
    authors' multilingual xx_ent_wiki_sm is on no registry); provided: every example carries its
    summary's entities as `entities` (a list of strings)."""
    labels: Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]], Field(max_length=32)] = []
    """spaCy entity labels kept (e.g. PERSON, GPE, ORG); empty keeps every entity."""


class AspectSummarization(Block):
    """Settings of the aspect-summarization recipe (a bart model, aspect-conditioned inputs).

    With construct (the default) every training example is a (document, summary) pair, as
    `{"document", "summary"}`, and expands into one example per aspect: the summary's named
    entities plus one knowledge-graph neighbour of each sampled by edge weight; the target keeps
    the summary sentences that mention the aspect or a neighbour over an allowed relation, and the
    input is `aspect : related words` then a blank line and the document. Without construct the
    examples are prebuilt `{"source", "target"}` pairs (e.g. a weaksup.jsonl of an earlier run)."""

    construct_examples: Annotated[bool, Field(alias="construct")] = True
    """Build the weak supervision from (document, summary) pairs; false reads prebuilt examples."""
    knowledge: Optional[AspectKnowledge] = None
    """The knowledge graph (required with construct)."""
    banned_relations: Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(max_length=64)] = BANNED_RELATIONS
    """Relations never used for neighbours, reasons or sampled aspects (a name, or a family such as
    `dbpedia` for dbpedia/*). The default is the authors' list."""
    ner: AspectNer = AspectNer()
    """Where the in-text entities come from."""
    encyclopedia: Optional[DatasetRef] = None
    """Pages of the aspects (JSON lines `{"title", "content"}`) for the related words; without it
    every input has an empty related-word list."""
    related_words: Annotated[int, Field(ge=0, le=100)] = 10
    """Related words per input: the document's terms by TF-IDF that the aspect's page also has."""
    tfidf_corpus: Optional[DatasetRef] = None
    """Documents the TF-IDF is fitted on (one per line, or JSON lines with `document`); default: the
    training documents."""
    max_aspects: Annotated[int, Field(ge=0, le=256)] = 0
    """At most this many aspects per document, in-text entities first (0: all of them)."""
    eval_aspects: Literal["summary", "given"] = "summary"
    """Aspects of the evaluation examples: built from each summary's text as in training, or given
    in each example (`{"aspect", "document", "target"}`)."""
    decoding: Literal["paper", "generation"] = "paper"
    """paper: the authors' beam search (4 beams, 55 to 140 new tokens capped at data.maxTargetLength,
    length penalty 2.0, no repeated trigram); generation: spec.generation as given."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the related-entity sampling."""

    rules = (Rule("!self.construct || has(self.knowledge)", "aspectSummarization.knowledge is required to construct "
                  "the weak supervision (construct: true)", lambda a: not a.construct_examples or a.knowledge is not None,
                  ".knowledge"),)


class Recipe(Block):
    """The three-function contract: built-in recipes or `module:function` references."""

    name: Literal["causal-lm", "seq2seq", "soft-q", "aspect-summarization", "progressive", "keyword-summarization", "custom"]
    """Built-in recipe, or custom to name your own functions."""
    collate_fn: Optional[FunctionRef] = None
    """collate_fn(examples) -> dict of arrays."""
    loss_fn: Optional[FunctionRef] = None
    """loss_fn(rng, state, params, batch, is_training) -> scalar."""
    pred_fn: Optional[FunctionRef] = None
    """pred_fn(rng, params, batch) -> per-example outputs."""
    output_fn: Optional[FunctionRef] = None
    """output_fn(batch_preds) -> list (optional)."""
    eval_metric_fn: Optional[FunctionRef] = None
    """eval_metric_fn(examples, preds) -> dict (optional)."""
    soft_q: Optional[SoftQ] = None
    """Settings of the soft-q recipe."""
    keyword_summarization: Optional[KeywordSummarization] = None
    """Settings of the keyword-summarization recipe (defaults when omitted)."""
    progressive: Optional[Progressive] = None
    """Settings of the progressive recipe."""
    aspect_summarization: Optional[AspectSummarization] = None
    """Settings of the aspect-summarization recipe."""

    rules = (
        Rule(
            "self.name != 'custom' || (has(self.collateFn) && has(self.lossFn) && has(self.predFn))",
            "recipe custom needs collateFn, lossFn and predFn",
            lambda r: r.name != "custom" or None not in (r.collate_fn, r.loss_fn, r.pred_fn),
        ),
        Rule(
            "(self.name == 'soft-q') == has(self.softQ)",
            "recipe.softQ is required for recipe soft-q and only valid there",
            lambda r: (r.name == "soft-q") == (r.soft_q is not None),
            ".softQ",
        ),
        Rule(
            "!has(self.keywordSummarization) || self.name == 'keyword-summarization'",
            "recipe.keywordSummarization is only valid for recipe keyword-summarization",
            lambda r: r.keyword_summarization is None or r.name == "keyword-summarization",
            ".keywordSummarization",
        ),
        Rule(
            "(self.name == 'progressive') == has(self.progressive)",
            "recipe.progressive is required for recipe progressive and only valid there",
            lambda r: (r.name == "progressive") == (r.progressive is not None),
            ".progressive",
        ),
        Rule(
            "(self.name == 'aspect-summarization') == has(self.aspectSummarization)",
            "recipe.aspectSummarization is required for recipe aspect-summarization and only valid there",
            lambda r: (r.name == "aspect-summarization") == (r.aspect_summarization is not None),
            ".aspectSummarization",
        ),
    )


class Generation(Block):
    """How predictions are decoded (Hugging Face `generate` conventions); greedy by default."""

    max_new_tokens: Optional[Annotated[int, Field(ge=1, le=131072)]] = None
    """Longest generation in new tokens (eos included); unset: data.maxTargetLength."""
    min_new_tokens: Annotated[int, Field(ge=0, le=131072)] = 0
    """End of sequence is banned before this many new tokens."""
    num_beams: Annotated[int, Field(ge=1, le=64)] = 1
    """Beam width; 1 with doSample false is greedy decoding."""
    length_penalty: Annotated[float, Field(ge=-10, le=10)] = 1.0
    """A finished beam scores sum(log p) / length ** lengthPenalty (length in new tokens incl. eos)."""
    no_repeat_ngram_size: Annotated[int, Field(ge=0, le=16)] = 0
    """Ban any n-gram of this size from repeating within the generated tokens (0: off)."""
    do_sample: bool = False
    """Sample (temperature, then topK, then topP) instead of searching."""
    temperature: Annotated[float, Field(gt=0, le=100)] = 1.0
    """Sampling temperature."""
    top_k: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    """Sample among the k most likely tokens (0: all)."""
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Nucleus sampling: the smallest set of tokens whose probability reaches topP (1: all)."""
    num_return_sequences: Annotated[int, Field(ge=1, le=64)] = 1
    """Sequences returned per example: the best beams (at most numBeams), or independent samples."""

    rules = (
        Rule("!has(self.maxNewTokens) || self.minNewTokens <= self.maxNewTokens",
             "generation.minNewTokens must not exceed maxNewTokens",
             lambda g: g.max_new_tokens is None or g.min_new_tokens <= g.max_new_tokens, ".minNewTokens"),
        Rule("!self.doSample || self.numBeams == 1", "generation.doSample needs numBeams 1 (beam search does not sample)",
             lambda g: not g.do_sample or g.num_beams == 1, ".numBeams"),
        Rule("self.doSample || self.numReturnSequences <= self.numBeams",
             "generation.numReturnSequences must not exceed numBeams unless doSample",
             lambda g: g.do_sample or g.num_return_sequences <= g.num_beams, ".numReturnSequences"),
    )


class Sharding(Block):
    """Tensor parallelism on the ('dp', 'mp') mesh."""

    model_shards: Union[Annotated[int, Field(ge=1, le=4096)], Literal["auto"]] = 1
    """Model-parallel shards (the 'mp' axis); 'auto' picks the smallest count whose parameters,
    gradients and optimizer state fit the node pool's device memory."""

    rules = (
        Rule(
            "type(self.modelShards) == string ? self.modelShards == 'auto' : self.modelShards >= 1",
            "modelShards must be a positive integer or 'auto'",
            lambda s: s.model_shards == "auto" or (isinstance(s.model_shards, int) and s.model_shards >= 1),
            ".modelShards",
        ),
    )


class FinetuneTraining(Block):
    """The training loop."""

    per_device_batch_size: Annotated[int, Field(ge=1, le=65536)] = 8
    """Examples per device per step (the global batch is this times the 'dp' size)."""
    epochs: Annotated[int, Field(ge=1, le=10000)] = 1
    """Passes over the training data."""
    max_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """Stop after this many steps (0: run all epochs)."""
    learning_rate: Annotated[float, Field(gt=0, le=10)] = 2e-5
    """Peak learning rate."""
    schedule: Literal["constant", "linear", "cosine"] = "linear"
    """Decay after warm-up."""
    warmup_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """Linear warm-up steps."""
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.0
    """AdamW weight decay."""
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=65536)] = 1
    """Micro-batches per optimizer step."""
    eval_every: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """Evaluate every N steps (0: at the end of each epoch)."""
    checkpoint_every: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """Publish a sharded checkpoint every N steps (0: at the end of each epoch)."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the initialisation, shuffling and sampling."""


class FinetuneResources(Resources):
    """Where the finetune runs: JAX on a JobSet (multi-host, TPU slices), one Job, or locally."""

    backend: Literal["jobset", "job", "local"] = "jobset"
    """jobset: multi-host JAX (one replicated job per TPU slice); job: one host; local: the
    operator's host."""


class ShardedFinetuneSpec(Block):
    """Desired state of a ShardedFinetune."""

    model: Annotated[ModelSpec, Field(json_schema_extra=immutable("model"))]
    """Starting weights (uri or fromRun a PretrainRun) or an architecture to initialise."""
    data: Annotated[FinetuneData, Field(json_schema_extra=immutable("data"))]
    """Examples."""
    recipe: Annotated[Recipe, Field(json_schema_extra=immutable("recipe"))]
    """What to optimise: the three functions."""
    sharding: Annotated[Sharding, Field(json_schema_extra=immutable("sharding"))] = Sharding()
    """How parameters are split across devices."""
    training: FinetuneTraining = FinetuneTraining()
    """Training loop settings."""
    generation: Generation = Generation()
    """How evaluation predictions are decoded (beam search, sampling, lengths)."""
    resources: FinetuneResources = FinetuneResources()
    """Backend, hosts and node pool."""
    storage: Annotated[Storage, Field(json_schema_extra=immutable("storage"))] = Storage()
    """Where checkpoints and predictions are published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries on failure."""
    suspend: bool = False
    """Tear the workload down (checkpoints stay); false resumes from the latest one."""

    rules = (
        Rule("!has(self.generation) || has(self.generation.maxNewTokens) || "
             "self.generation.minNewTokens <= self.data.maxTargetLength",
             "generation.minNewTokens must not exceed the generation length (data.maxTargetLength when "
             "generation.maxNewTokens is unset)",
             lambda s: s.generation.max_new_tokens is not None or s.generation.min_new_tokens <= s.data.max_target_length,
             ".generation.minNewTokens"),
    )


class FinetuneProgress(Block):
    """Finetuning progress."""

    step: Optional[Annotated[int, Field(ge=0)]] = None
    """Optimizer steps done."""
    total_steps: Optional[Annotated[int, Field(ge=0)]] = None
    """Planned steps."""
    loss: Optional[float] = None
    """Latest training loss."""
    model_shards: Optional[Annotated[int, Field(ge=1)]] = None
    """The resolved number of model shards."""
    eval: Annotated[dict[str, float], Field(max_length=64)] = {}
    """Latest evaluation metrics."""
    latest_checkpoint: Optional[Uri] = None
    """URI of the latest published checkpoint."""
    done: Optional[Annotated[str, Field(max_length=64)]] = None
    """Progress as a person reads it: `{step}/{totalSteps}` (optimizer steps)."""
    checkpoint: Optional[Annotated[str, Field(max_length=64)]] = None
    """The latest checkpoint's short name (`step-78`); its URI is latestCheckpoint."""
    stage: Optional[Annotated[str, Field(max_length=16)]] = None
    """Multi-stage recipes (progressive): the stage in training, `{stage}/{stages}`."""


class InputLineage(Block):
    """Another resource's published output a run reads besides its starting weights."""

    source: Optional[Annotated[str, Field(max_length=512)]] = None
    """`Kind/name` of the source resource."""
    uri: Optional[Uri] = None
    """The file read (a KGHarvest's kg.jsonl)."""
    sha256: Optional[Annotated[str, Field(max_length=64)]] = None
    """Its digest as the source's manifest lists it (the workload checks it)."""
    run_uri: Optional[Uri] = None
    """The source's run folder."""


class FinetuneLineage(Lineage):
    """Where the starting weights, and the aspect recipe's knowledge graph, came from."""

    knowledge: Optional[InputLineage] = None
    """recipe.aspectSummarization.knowledge.fromRun resolved: the KGHarvest's kg.jsonl."""


class ShardedFinetuneStatus(BaseStatus):
    """Observed state of a ShardedFinetune."""

    lineage: Optional[FinetuneLineage] = None
    """The resolved sources of the starting weights and of the knowledge graph."""

    progress: Optional[FinetuneProgress] = None
    """Finetuning progress."""
