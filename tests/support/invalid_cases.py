"""A table of invalid resources, each refused both locally (pydantic) and by the real apiserver.

Each case starts from a small valid document of one kind, changes one thing, and names the field
that the refusal must mention. `update` cases are valid on create and refused as a change.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

API = "glassbox.dev/v1alpha1"

BASE: dict[str, dict[str, Any]] = {
    "PretrainRun": {
        "model": {"architecture": "llama", "config": {"hiddenSize": 64, "intermediateSize": 128, "numLayers": 2, "numHeads": 4}},
        "data": {"sources": [{"name": "code", "uri": "stdlib://"}], "seqLength": 64, "chunks": 4, "holdOut": 8},
        "training": {"microBatchSize": 4, "maxSteps": 20, "warmupSteps": 5},
    },
    "ShardedFinetune": {
        "model": {"uri": "s3://models/tiny-llama/"},
        "data": {"train": {"uri": "s3://data/train.jsonl"}},
        "recipe": {"name": "causal-lm"},
        "sharding": {"modelShards": 2},
    },
    "ScorerService": {"model": {"uri": "s3://models/cappy/"}, "replicas": 2},
    "KGHarvest": {
        "model": {"uri": "s3://models/roberta/"},
        "relations": [{"name": "capital_of", "prompts": ["<ENT1> is the capital of <ENT0>."], "seeds": [["France", "Paris"], ["Japan", "Tokyo"]]}],
    },
    "MetricEval": {
        "task": "summarization",
        "metrics": ["consistency", "rouge-l"],
        "data": {"uri": "s3://evals/summaries.jsonl"},
        "aligner": {"type": "embedding", "model": {"uri": "s3://models/minilm/"}, "layer": 6},
    },
    "DialogBot": {"model": {"uri": "s3://models/dialogpt/"}, "serving": {"replicas": 1}},
}


def valid(kind: str, name: str = "x") -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": copy.deepcopy(BASE[kind])}


def _walk(doc: dict[str, Any], path: str) -> tuple[Any, str | int]:
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = doc
    for p in parts[:-1]:
        node = node[p]
    return node, parts[-1]


def set_(path: str, value: Any) -> Callable[[dict], None]:
    def apply(doc: dict) -> None:
        node, key = _walk(doc, path)
        node[key] = value

    return apply


def del_(path: str) -> Callable[[dict], None]:
    def apply(doc: dict) -> None:
        node, key = _walk(doc, path)
        del node[key]

    return apply


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    change: Callable[[dict], None]
    field: str  # the refusal must name this field
    update: bool = False  # valid to create; refused as an update of an existing resource
    local: bool = True  # also refused by local validation (transition rules cannot be)
    extra: tuple[Callable[[dict], None], ...] = field(default=())

    def document(self, name: str | None = None) -> dict[str, Any]:
        doc = valid(self.kind, name or self.id)
        if not self.update:
            self.change(doc)
            for c in self.extra:
                c(doc)
        return doc

    def updated(self, doc: dict[str, Any]) -> dict[str, Any]:
        new = copy.deepcopy(doc)
        self.change(new)
        return new


CASES: list[Case] = [
    # wrong types
    Case("ptr-batch-string", "PretrainRun", set_("spec.training.microBatchSize", "8"), "spec.training.microBatchSize"),
    Case("ptr-suspend-string", "PretrainRun", set_("spec.suspend", "yes"), "spec.suspend"),
    Case("ptr-sources-not-list", "PretrainRun", set_("spec.data.sources", {"name": "code"}), "spec.data.sources"),
    Case("scorer-replicas-float", "ScorerService", set_("spec.replicas", 1.5), "spec.replicas"),
    Case("kgh-seeds-not-lists", "KGHarvest", set_("spec.relations.0.seeds", ["France", "Paris"]), "spec.relations[0].seeds[0]"),
    # negatives and ranges
    Case("ptr-negative-steps", "PretrainRun", set_("spec.training.maxSteps", -1), "spec.training.maxSteps"),
    Case("ptr-zero-batch", "PretrainRun", set_("spec.training.microBatchSize", 0), "spec.training.microBatchSize"),
    Case("ptr-negative-lr", "PretrainRun", set_("spec.training.optimizer", {"lr": -0.1}), "spec.training.optimizer.lr"),
    Case("ptr-beta-one", "PretrainRun", set_("spec.training.optimizer", {"beta2": 1.0}), "spec.training.optimizer.beta2"),
    Case("ptr-seq-too-short", "PretrainRun", set_("spec.data.seqLength", 4), "spec.data.seqLength"),
    Case("ptr-zero-chunks", "PretrainRun", set_("spec.data.chunks", 0), "spec.data.chunks"),
    Case("ptr-negative-holdout", "PretrainRun", set_("spec.data.holdOut", -5), "spec.data.holdOut"),
    Case("ptr-zero-workers", "PretrainRun", set_("spec.resources", {"backend": "ray", "workers": 0}), "spec.resources.workers"),
    Case("ptr-negative-weight", "PretrainRun", set_("spec.data.sources.0.weight", -1.0), "spec.data.sources[0].weight"),
    Case("scorer-negative-replicas", "ScorerService", set_("spec.replicas", -1), "spec.replicas"),
    Case("kgh-zero-tuples", "KGHarvest", set_("spec.search", {"maxTuples": 0}), "spec.search.maxTuples"),
    Case("sft-zero-shards", "ShardedFinetune", set_("spec.sharding.modelShards", 0), "spec.sharding.modelShards"),
    Case("sft-tau-above-one", "ShardedFinetune", set_("spec.recipe", {"name": "soft-q", "softQ": {"tau": 2.0, "rewardFn": "rewards:bleu"}}), "spec.recipe.softQ.tau"),
    # unknown enum values
    Case("ptr-strategy", "PretrainRun", set_("spec.training.strategy", "zero"), "spec.training.strategy"),
    Case("ptr-backend", "PretrainRun", set_("spec.resources", {"backend": "slurm"}), "spec.resources.backend"),
    Case("ptr-architecture", "PretrainRun", set_("spec.model.architecture", "mamba"), "spec.model.architecture"),
    Case("ptr-precision", "PretrainRun", set_("spec.training.precision", "fp8"), "spec.training.precision"),
    Case("sft-recipe", "ShardedFinetune", set_("spec.recipe.name", "dpo"), "spec.recipe.name"),
    Case("sft-backend-ray", "ShardedFinetune", set_("spec.resources", {"backend": "ray", "workers": 2}), "spec.resources.backend"),
    Case("meval-metric", "MetricEval", set_("spec.metrics", ["bleurt"]), "spec.metrics[0]"),
    Case("meval-ha-bleu-without-n", "MetricEval", set_("spec.metrics", ["ha-bleu"]), "spec.metrics[0]"),
    Case("meval-bleu-variant", "MetricEval", set_("spec.bleu", {"variant": "mteval"}), "spec.bleu.variant"),
    Case("meval-task", "MetricEval", set_("spec.task", "translation"), "spec.task"),
    Case("dbot-language", "DialogBot", set_("spec.language", "fr"), "spec.language"),
    Case("scorer-transform", "ScorerService", set_("spec.scoreTransform", "tanh"), "spec.scoreTransform"),
    Case("ptr-fromrun-kind", "PretrainRun", set_("spec.model", {"fromRun": {"kind": "Deployment", "name": "a"}}), "spec.model.fromRun.kind"),
    # unknown fields
    Case("ptr-unknown-training-field", "PretrainRun", set_("spec.training.learningRate", 0.1), "spec.training.learningRate"),
    Case("ptr-unknown-spec-field", "PretrainRun", set_("spec.epochs", 3), "spec.epochs"),
    Case("scorer-inline-credentials", "ScorerService", set_("spec.storage", {"accessKey": "AKIA", "secretKey": "x"}), "spec.storage.accessKey"),
    Case("dbot-unknown-serving-field", "DialogBot", set_("spec.serving.port", 8080), "spec.serving.port"),
    # patterns and formats
    Case("ptr-bad-pool-name", "PretrainRun", set_("spec.resources", {"accelerator": "H100 GPUs"}), "spec.resources.accelerator"),
    Case("ptr-bad-quantity", "PretrainRun", set_("spec.resources", {"memory": "lots"}), "spec.resources.memory"),
    Case("sft-bad-function-ref", "ShardedFinetune", set_("spec.recipe", {"name": "custom", "collateFn": "not a ref", "lossFn": "m:f", "predFn": "m:f"}), "spec.recipe.collateFn"),
    Case("ptr-bad-checkpoint-ref", "PretrainRun", set_("spec.model", {"fromRun": {"kind": "PretrainRun", "name": "a", "checkpoint": "newest"}}), "spec.model.fromRun.checkpoint"),
    Case("ptr-bad-bucket", "PretrainRun", set_("spec.storage", {"bucket": "My_Bucket"}), "spec.storage.bucket"),
    Case("ptr-endpoint-userinfo", "PretrainRun", set_("spec.storage", {"endpoint": "https://user:pw@s3.example.com"}), "spec.storage.endpoint"),
    # missing required fields
    Case("ptr-missing-data", "PretrainRun", del_("spec.data"), "spec.data"),
    Case("ptr-empty-sources", "PretrainRun", set_("spec.data.sources", []), "spec.data.sources"),
    Case("meval-missing-task", "MetricEval", del_("spec.task"), "spec.task"),
    # cross-field rules (CEL)
    Case("ptr-minlr-above-lr", "PretrainRun", set_("spec.training.optimizer", {"lr": 1e-4, "minLr": 1e-3}), "spec.training.optimizer.minLr"),
    Case("ptr-zero-stage-without-deepspeed", "PretrainRun", set_("spec.training.zeroStage", 3), "spec.training.zeroStage"),
    Case("ptr-warmup-beyond-steps", "PretrainRun", set_("spec.training.warmupSteps", 50), "spec.training.warmupSteps"),
    Case("ptr-loss-chunks-under-zero3", "PretrainRun", set_("spec.training", {"strategy": "deepspeed", "zeroStage": 3, "lossChunkTokens": 1024}), "spec.training.lossChunkTokens"),
    Case("ptr-bf16-params-fp32-compute", "PretrainRun", set_("spec.training", {"precision": "fp32", "paramDtype": "bf16"}), "spec.training.paramDtype"),
    Case("ptr-bf16-params-under-fsdp", "PretrainRun", set_("spec.training", {"strategy": "fsdp", "paramDtype": "bf16"}), "spec.training.paramDtype"),
    Case("ptr-heads-not-dividing", "PretrainRun", set_("spec.model.config.numHeads", 3), "spec.model.config.hiddenSize"),
    Case("ptr-kv-heads", "PretrainRun", set_("spec.model.config.numKvHeads", 3), "spec.model.config.numKvHeads"),
    Case("ptr-uri-and-fromrun", "PretrainRun", set_("spec.model", {"uri": "s3://a/b", "fromRun": {"kind": "PretrainRun", "name": "a"}}), "spec.model"),
    Case("ptr-no-model-source", "PretrainRun", set_("spec.model", {}), "spec.model"),
    Case("ptr-job-with-workers", "PretrainRun", set_("spec.resources", {"backend": "job", "workers": 4}), "spec.resources.workers"),
    Case("ptr-chips-without-pool", "PretrainRun", set_("spec.resources", {"acceleratorsPerWorker": 8}), "spec.resources.acceleratorsPerWorker"),
    Case("ptr-perplexity-without-holdout", "PretrainRun", set_("spec.data.holdOut", 0), "spec.analysis.perplexity"),
    Case("ptr-tokenizer-both", "PretrainRun", set_("spec.data.tokenizer", {"uri": "s3://t/tokenizer.json", "train": {"vocabSize": 1000}}), "spec.data.tokenizer"),
    Case("sft-custom-without-functions", "ShardedFinetune", set_("spec.recipe", {"name": "custom", "lossFn": "m:f"}), "spec.recipe"),
    Case("sft-softq-without-settings", "ShardedFinetune", set_("spec.recipe", {"name": "soft-q"}), "spec.recipe.softQ"),
    Case("sft-shards-word", "ShardedFinetune", set_("spec.sharding.modelShards", "many"), "spec.sharding.modelShards"),
    Case("sft-sample-with-beams", "ShardedFinetune", set_("spec.generation", {"doSample": True, "numBeams": 4}), "spec.generation.numBeams"),
    Case("sft-more-sequences-than-beams", "ShardedFinetune", set_("spec.generation", {"numBeams": 2, "numReturnSequences": 3}), "spec.generation.numReturnSequences"),
    Case("sft-min-above-max-new", "ShardedFinetune", set_("spec.generation", {"minNewTokens": 9, "maxNewTokens": 8}), "spec.generation.minNewTokens"),
    Case("sft-min-above-target-length", "ShardedFinetune", set_("spec.generation", {"minNewTokens": 200}), "spec.generation.minNewTokens"),
    Case("sft-top-p-zero", "ShardedFinetune", set_("spec.generation", {"doSample": True, "topP": 0.0}), "spec.generation.topP"),
    Case("sft-keywords-on-seq2seq", "ShardedFinetune", set_("spec.recipe", {"name": "seq2seq", "keywordSummarization": {}}), "spec.recipe.keywordSummarization"),
    Case("sft-keywords-no-distractor", "ShardedFinetune", set_("spec.recipe", {"name": "keyword-summarization", "keywordSummarization": {"distractors": {"shuffled": 0, "random": 0}}}), "spec.recipe.keywordSummarization.distractors.random"),
    Case("sft-progressive-without-settings", "ShardedFinetune", set_("spec.recipe", {"name": "progressive"}), "spec.recipe.progressive"),
    Case("sft-progressive-stage-selector-removed", "ShardedFinetune", set_("spec.recipe", {"name": "progressive", "progressive": {"stages": [0.25], "stage": 2}}), "spec.recipe.progressive.stage"),
    Case("sft-progressive-stages-decrease", "ShardedFinetune", set_("spec.recipe", {"name": "progressive", "progressive": {"stages": [0.25, 0.2]}}), "spec.recipe.progressive.stages"),
    Case("sft-keywords-fill-length", "ShardedFinetune", set_("spec.recipe", {"name": "keyword-summarization", "keywordSummarization": {"maxKeywordTokens": 100, "maxLength": 64}}), "spec.recipe.keywordSummarization.maxKeywordTokens"),
    Case("sft-aspects-without-settings", "ShardedFinetune", set_("spec.recipe", {"name": "aspect-summarization"}), "spec.recipe.aspectSummarization"),
    Case("sft-aspects-on-seq2seq", "ShardedFinetune", set_("spec.recipe", {"name": "seq2seq", "aspectSummarization": {"construct": False}}), "spec.recipe.aspectSummarization"),
    Case("sft-aspects-construct-without-knowledge", "ShardedFinetune", set_("spec.recipe", {"name": "aspect-summarization", "aspectSummarization": {}}), "spec.recipe.aspectSummarization.knowledge"),
    Case("sft-aspects-knowledge-both", "ShardedFinetune", set_("spec.recipe", {"name": "aspect-summarization", "aspectSummarization": {"knowledge": {"uri": "s3://kg/edges.tsv", "fromRun": {"name": "caps"}}}}), "spec.recipe.aspectSummarization.knowledge"),
    Case("sft-aspects-knowledge-from-pretrainrun", "ShardedFinetune", set_("spec.recipe", {"name": "aspect-summarization", "aspectSummarization": {"knowledge": {"fromRun": {"kind": "PretrainRun", "name": "caps"}}}}), "spec.recipe.aspectSummarization.knowledge.fromRun.kind"),
    Case("sft-aspects-related-words-over", "ShardedFinetune", set_("spec.recipe", {"name": "aspect-summarization", "aspectSummarization": {"construct": False, "relatedWords": 101}}), "spec.recipe.aspectSummarization.relatedWords"),
    Case("sft-aspects-ner-unknown", "ShardedFinetune", set_("spec.recipe", {"name": "aspect-summarization", "aspectSummarization": {"construct": False, "ner": {"source": "flair"}}}), "spec.recipe.aspectSummarization.ner.source"),
    Case("kgh-prompt-without-slot", "KGHarvest", set_("spec.relations.0.prompts", ["<ENT0> is great."]), "spec.relations[0].prompts"),
    Case("kgh-slot-twice", "KGHarvest", set_("spec.relations.0.prompts", ["<ENT1> is <ENT1> of <ENT0>."]), "spec.relations[0].prompts"),
    Case("kgh-slot-beyond-arity", "KGHarvest", set_("spec.relations.0.prompts", ["<ENT1> is in <ENT2> of <ENT0>."]), "spec.relations[0].prompts"),
    Case("kgh-slot-glued", "KGHarvest", set_("spec.relations.0.prompts", ["<ENT1> is the capital of x<ENT0>."]), "spec.relations[0].prompts"),
    Case("kgh-pretrain-with-uri", "KGHarvest", set_("spec.pretrain", {"corpus": {"uri": "c.txt", "format": "text"}}), "spec.pretrain"),
    Case("kgh-seed-sizes", "KGHarvest", set_("spec.relations.0.seeds", [["France", "Paris"], ["Japan", "Tokyo", "Honshu"]]), "spec.relations[0].seeds"),
    Case("meval-ctc-without-aligner", "MetricEval", del_("spec.aligner"), "spec.aligner"),
    Case("meval-preservation-wrong-task", "MetricEval", set_("spec.metrics", ["preservation"]), "spec.metrics"),
    Case("meval-embedding-without-layer", "MetricEval", del_("spec.aligner.layer"), "spec.aligner.layer"),
    Case("meval-train-embedding", "MetricEval", set_("spec.aligner.train", {"examples": 100}), "spec.aligner.train"),
    Case("meval-bertscore-without-settings", "MetricEval", set_("spec.metrics", ["bertscore"]), "spec.bertscore"),
    Case("meval-perplexity-without-model", "MetricEval", set_("spec.metrics", ["perplexity"]), "spec.model"),
    Case("meval-each-without-curve-metric", "MetricEval", set_("spec.model", {"fromRun": {"kind": "PretrainRun", "name": "a", "checkpoint": "each"}}), "spec.metrics"),
    Case("ptr-fromrun-each", "PretrainRun", set_("spec.model", {"fromRun": {"kind": "PretrainRun", "name": "a", "checkpoint": "each"}}), "spec.model.fromRun.checkpoint"),
    Case("dbot-no-weights", "DialogBot", set_("spec.model", {"architecture": "gpt2"}), "spec.model"),
    Case("scorer-no-candidates", "ScorerService", set_("spec.generator", {"model": {"uri": "s3://m/g/"}, "strategies": []}), "spec.generator.strategies"),
    # immutable fields (transition rules: the apiserver refuses the change of an existing resource)
    Case("ptr-change-model", "PretrainRun", set_("spec.model.config.numLayers", 8), "spec.model", update=True, local=False),
    Case("ptr-change-data", "PretrainRun", set_("spec.data.seqLength", 128), "spec.data", update=True, local=False),
    Case("ptr-change-training", "PretrainRun", set_("spec.training.microBatchSize", 16), "spec.training", update=True, local=False),
    Case("ptr-change-storage", "PretrainRun", set_("spec.storage", {"bucket": "other-bucket"}), "spec.storage", update=True, local=False),
    Case("sft-change-sharding", "ShardedFinetune", set_("spec.sharding.modelShards", 4), "spec.sharding", update=True, local=False),
    Case("sft-change-recipe", "ShardedFinetune", set_("spec.recipe.name", "seq2seq"), "spec.recipe", update=True, local=False),
    Case("dbot-change-model", "DialogBot", set_("spec.model.uri", "s3://models/other/"), "spec.model", update=True, local=False),
    Case("meval-change-data", "MetricEval", set_("spec.data.uri", "s3://evals/other.jsonl"), "spec.data", update=True, local=False),
]

# Changes that must be accepted on a running resource (not everything is frozen).
ALLOWED_UPDATES: list[Case] = [
    Case("ptr-scale-workers", "PretrainRun", set_("spec.resources", {"backend": "ray", "workers": 2}), "spec.resources", update=True),
    Case("ptr-suspend", "PretrainRun", set_("spec.suspend", True), "spec.suspend", update=True),
    Case("scorer-scale", "ScorerService", set_("spec.replicas", 5), "spec.replicas", update=True),
]
