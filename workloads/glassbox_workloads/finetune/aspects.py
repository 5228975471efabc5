"""recipe.aspectSummarization from a ShardedFinetune spec: the knowledge graph, the NER, the
encyclopedia and the TF-IDF corpus resolved, then the aspect recipe built on seq2seq.

The knowledge graph is an edge file (`knowledge.uri`) or a KGHarvest run (`knowledge.fromRun`):
the harvest's kg.jsonl, found through its run manifest (the `kg` entry, which only a completed
harvest has) and checked against the sha256 listed there, like model.fromRun checkpoints. On a
cluster the operator has put the harvest's run folder into `fromRun.runUri`; `glassbox run` finds
the run in its own store. What was read is returned as lineage for run.json.

Input that cannot work raises BadInput naming the field.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.common import DatasetRef
from glassbox_api.kinds.shardedfinetune import AspectSummarization, ShardedFinetuneSpec
from glassbox_api.manifest import FileEntry, read_manifest
from glassbox_api.store import ArtifactStore, ChecksumMismatch, NotFound, open_store

from ..recipes.common import Recipe
from ..runtime.datasets import read_texts
from ..runtime.errors import BadInput
from ..runtime.hfmodels import published_run

FIELD = "spec.recipe.aspectSummarization"
KNOWLEDGE_FIX = ("point knowledge.uri at tab-separated `head relation tail [weight]` lines or JSON lines, or "
                 "knowledge.fromRun at a KGHarvest that completed")


@dataclass(frozen=True)
class RecipeInputs:
    """Where a recipe finds what its spec references besides the data: the store root (other
    runs), the namespace, and the spec's folder (relative paths)."""

    root: Optional[ArtifactStore] = None
    namespace: str = "default"
    base_dir: Optional[Path] = None


@dataclass(frozen=True)
class Knowledge:
    text: str
    lineage: dict[str, Any]
    """{source?, uri, sha256, runUri?}: what was read, for run.json."""


def load_knowledge(a: AspectSummarization, inputs: RecipeInputs) -> Knowledge:
    k = a.knowledge
    assert k is not None
    if k.uri:
        files = read_texts(DatasetRef(uri=k.uri), field=f"{FIELD}.knowledge", fix=KNOWLEDGE_FIX,
                           base_dir=inputs.base_dir, noun="knowledge graph")
        text = "".join(t if t.endswith("\n") or not t else t + "\n" for _, t in files)
        return Knowledge(text, {"uri": k.uri, "sha256": hashlib.sha256(text.encode()).hexdigest()})
    assert k.from_run is not None
    return _harvest(k.from_run.name, k.from_run.run_uri, inputs)


def _harvest(name: str, run_uri: Optional[str], inputs: RecipeInputs) -> Knowledge:
    """The kg.jsonl of KGHarvest `name`, verified against its manifest."""
    field, source = f"{FIELD}.knowledge.fromRun", f"KGHarvest/{name}"
    if run_uri:
        run = open_store(run_uri)
    else:
        if inputs.root is None:
            raise BadInput(field, "fromRun needs the artifact store where the harvest published",
                           "pass --store (glassbox run) or configure the operator's storage")
        run = published_run(inputs.root, inputs.namespace, "KGHarvest", name, field,
                            none_fix="run the KGHarvest first (glassbox run), into the same --store",
                            several_fix="use knowledge.uri to name its kg.jsonl")
    manifest = read_manifest(run)
    kg = (manifest.model_extra or {}).get("kg") if manifest is not None else None
    if manifest is None or manifest.state != "completed" or not isinstance(kg, dict):
        state = manifest.state if manifest is not None else "no manifest"
        raise BadInput(field, f"{source} at {run.uri()} has no knowledge graph yet ({state})",
                       "wait for the harvest to complete: its manifest lists kg.jsonl then")
    entry = FileEntry.model_validate(kg)
    with tempfile.TemporaryDirectory(prefix="glassbox-kg-") as tmp:
        try:
            run.get_file(entry.path, Path(tmp) / "kg.jsonl", sha256=entry.sha256)
        except (ChecksumMismatch, NotFound) as exc:
            raise BadInput(field, f"{run.uri(entry.path)} does not match {source}'s manifest: {exc}",
                           "rerun the harvest, or name an intact file with knowledge.uri") from exc
        text = (Path(tmp) / "kg.jsonl").read_text(encoding="utf-8")
    return Knowledge(text, {"source": source, "uri": run.uri(entry.path), "sha256": entry.sha256,
                            "runUri": run.uri().rstrip("/")})


def aspect_recipe(spec: ShardedFinetuneSpec, model: Any, config: Any, tokenizer: Any, examples: list,
                  inputs: RecipeInputs, generation: Any) -> Recipe:
    """The aspect-summarization recipe: seq2seq on a bart model, with the aspect expansion."""
    from ..recipes import aspect_summarization as asum
    from ..recipes import seq2seq

    a, d = spec.recipe.aspect_summarization, spec.data
    assert a is not None
    if config.architecture != "bart":
        raise BadInput("spec.model.architecture", f"recipe aspect-summarization trains a bart model, not "
                       f"{config.architecture}", "start from a bart model (bart.large.cnn in the paper)")
    gen = asum.paper_generation(d.max_target_length) if a.decoding == "paper" else generation
    base = seq2seq.make(model, tokenizer, d.max_source_length, d.max_target_length, config.start_token_id,
                        generation=gen)
    if not a.construct_examples:
        return asum.make(base, _checked(asum.prebuilt, "spec.data.train"), _checked(asum.prebuilt, "spec.data.eval"))
    builder, lineage = _builder(a, examples, inputs)
    built: dict[str, dict[str, int]] = {}
    evals = _counted(builder, builder.expand, built, "eval") if a.eval_aspects == "summary" else builder.given
    recipe = asum.make(base, _checked(_counted(builder, builder.expand, built, "train"), "spec.data.train"),
                       _checked(evals, "spec.data.eval"))
    recipe.facts.update({"knowledge": lineage, "weakSupervision": built})  # filled in by the expansion
    return recipe


def _counted(builder: Any, fn: Any, built: dict[str, dict[str, int]], split: str) -> Any:
    """fn, recording what it built for the split (documents, examples, dropped aspects)."""

    def run(examples: list) -> list:
        before = dict(builder.counts)
        out = fn(examples)
        built[split] = {k: v - before.get(k, 0) for k, v in builder.counts.items()}
        return out

    return run


def _checked(fn: Any, field: str) -> Any:
    from ..recipes.aspect_summarization import ExampleError

    def run(examples: list) -> list:
        try:
            return fn(examples)
        except ExampleError as exc:
            raise BadInput(field, str(exc), "give every example what recipe aspect-summarization reads "
                           "(see recipe.aspectSummarization in `kubectl explain shardedfinetune.spec.recipe`)") from exc

    return run


def _builder(a: AspectSummarization, examples: list, inputs: RecipeInputs) -> tuple[Any, dict[str, Any]]:
    """The weak-supervision builder of the spec, and the lineage of its knowledge graph."""
    from ..metrics.text import sent_tokenize
    from ..recipes import aspect_supervision as asp
    from ..recipes.aspect_summarization import Builder, document_summary, read_pages

    knowledge = load_knowledge(a, inputs)
    try:
        edges = asp.parse_edges(knowledge.text)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BadInput(f"{FIELD}.knowledge", f"unreadable edge: {exc}", KNOWLEDGE_FIX) from exc
    ner = None
    if a.ner.source == "spacy":
        try:
            ner = asp.spacy_ner(a.ner.labels)
        except ImportError as exc:
            raise BadInput(f"{FIELD}.ner.source", str(exc), "run hack/assets.sh, or set ner.source: provided "
                           "with entities in every example") from exc
    pages, terms = {}, (lambda doc: [])
    if a.encyclopedia is not None and a.related_words:
        pages = read_pages(_rows(a.encyclopedia, f"{FIELD}.encyclopedia", inputs))
        if a.tfidf_corpus is not None:
            corpus = [r.get("document") or r.get("text") or "" for r in _rows(a.tfidf_corpus, f"{FIELD}.tfidfCorpus", inputs)]
        else:
            corpus = [document_summary(ex, i)[0] for i, ex in enumerate(examples) if _has_document(ex)]
        try:
            terms = asp.tfidf_terms(corpus)
        except ValueError as exc:  # sklearn: an empty vocabulary
            raise BadInput(f"{FIELD}.tfidfCorpus", f"no TF-IDF vocabulary: {exc}",
                           "give documents with words beyond English stop words") from exc
    kg = asp.KnowledgeGraph(edges, a.banned_relations)
    return Builder(kg, ner, sent_tokenize, terms, pages, a.related_words, a.max_aspects, a.seed), knowledge.lineage


def _has_document(ex: dict) -> bool:
    from ..recipes.aspect_summarization import DOCUMENT_KEYS

    return any(isinstance(ex.get(k), str) for k in DOCUMENT_KEYS)


def _rows(ref: DatasetRef, field: str, inputs: RecipeInputs) -> list[dict]:
    from .setup import load_examples

    return load_examples(ref, inputs.base_dir, field)


__all__ = ["Knowledge", "RecipeInputs", "aspect_recipe", "load_knowledge"]
