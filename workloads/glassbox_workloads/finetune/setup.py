"""From a ShardedFinetune spec to the parts of a run: model, tokenizer, data, recipe, shard count.

Shared by the workload (finetune/workload.py) and `glassbox plan` (plan_cli.py), so both agree on
shapes and on the `modelShards: auto` choice. Input that cannot work (a dataset or model that does not
exist, a model without the tensors the recipe needs) is BadInput, naming the spec field to fix.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.common import DatasetRef
from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec
from glassbox_api.manifest import read_manifest
from glassbox_api.store import ArtifactStore, NotFound, find_runs, open_store, split_uri

from ..flax_models import ModelConfig, param_shapes
from ..flax_models.hf import CONFIG, TOKENIZER
from ..recipes.common import ByteTokenizer, HFTokenizer, Recipe, resolve
from ..redco.autoshard import AutoChoice, Pool, choose_model_shards, pool_info
from ..runtime.datasets import read_texts
from ..runtime.errors import BadInput

DECODERS = ("llama", "gpt2")


@dataclass
class ModelSource:
    """Where the starting weights live: (store, prefix) of an HF-format directory, or nothing."""

    store: Optional[ArtifactStore]
    prefix: str
    description: str
    field: str = "spec.model"
    """The spec field that named it (for messages)."""


def resolve_model_source(spec: ShardedFinetuneSpec, store: Optional[ArtifactStore],
                         namespace: str = "default") -> ModelSource:
    """model.uri -> that directory; model.fromRun -> the checkpoint the source run's manifest lists."""
    m = spec.model
    if m.uri:
        return ModelSource(open_store(m.uri), "", m.uri, "spec.model.uri")
    if m.from_run is not None:
        if store is None:
            raise ValueError("model.fromRun needs the artifact store (--store) to find the source run")
        fr = m.from_run
        runs = [r for r in find_runs(store, namespace, fr.kind, fr.name) if r.exists("manifest.json")]
        if not runs:
            raise ValueError(f"no published run of {fr.kind}/{fr.name} under {store.uri(f'{namespace}/{fr.kind.lower()}')}")
        if len(runs) > 1:
            names = sorted(r.uri().rstrip("/").rsplit("/", 1)[-1] for r in runs)
            raise ValueError(f"several runs of {fr.kind}/{fr.name}: {names}; use model.uri")
        run = runs[0]
        manifest = read_manifest(run)
        if manifest is None:
            raise ValueError(f"{run.uri()} has no manifest yet")
        entry = manifest.resolve(fr.checkpoint)
        return ModelSource(run, entry.path, f"{fr.kind}/{fr.name}@step-{entry.step}", "spec.model.fromRun")
    return ModelSource(None, "", "random initialisation")


def _key(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def load_tokenizer(spec: ShardedFinetuneSpec, source: ModelSource):
    """data.tokenizer, else the tokenizer.json stored with the model, else the byte tokenizer."""
    if spec.data.tokenizer:
        uri = spec.data.tokenizer
        st, leaf = split_uri(uri)
        key = leaf if leaf.endswith(".json") else f"{leaf}/{TOKENIZER}"
        return HFTokenizer(st.get_bytes(key).decode("utf-8"))
    if source.store is not None and source.store.exists(_key(source.prefix, TOKENIZER)):
        return HFTokenizer(source.store.get_bytes(_key(source.prefix, TOKENIZER)).decode("utf-8"))
    return ByteTokenizer()


def model_config(spec: ShardedFinetuneSpec, source: ModelSource, tokenizer: Any) -> ModelConfig:
    """The Flax config: the checkpoint's config.json, or spec.model.config for random init."""
    if source.store is not None:
        try:
            return ModelConfig.from_hf(source.store.read_json(_key(source.prefix, CONFIG)))
        except NotFound as exc:
            raise BadInput(source.field, f"no {CONFIG} at {source.store.uri(source.prefix)} ({source.description})",
                           "point it at a model folder in Hugging Face layout (config.json, model.safetensors)") from exc
    arch = spec.model.architecture
    if arch not in ("llama", "gpt2", "bart"):
        raise BadInput("spec.model.architecture", f"{arch!r} has no Flax model for ShardedFinetune",
                       "use llama, gpt2 or bart")
    c = spec.model.config
    if c is None:
        raise BadInput("spec.model.config", "is required to initialise a model at random",
                       "add model.config, or start from weights with model.uri or model.fromRun")
    vocab = c.vocab_size or tokenizer.vocab_size
    if vocab < tokenizer.vocab_size:
        raise BadInput("spec.model.config.vocabSize", f"{vocab} < the tokenizer's {tokenizer.vocab_size}",
                       f"use at least {tokenizer.vocab_size}, or leave it out")
    return ModelConfig(architecture=arch, vocab_size=vocab, hidden_size=c.hidden_size,
                       intermediate_size=c.intermediate_size, num_layers=c.num_layers, num_heads=c.num_heads,
                       num_kv_heads=c.num_kv_heads if arch == "llama" else None,
                       max_position_embeddings=c.max_position_embeddings, norm_eps=c.rms_norm_eps,
                       tie_word_embeddings=c.tie_word_embeddings, pad_token_id=tokenizer.pad_id,
                       bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id)


# ---- data ----------------------------------------------------------------------------------


DATASET_FIX = ("point it at data that exists where the workload runs: a file or folder in its filesystem "
               "(a mounted volume in a pod), file://PATH or s3://BUCKET/KEY")


def load_examples(ref: DatasetRef, base_dir: Optional[Path] = None, field: str = "spec.data.train") -> list[dict]:
    """Examples of a DatasetRef: jsonl, a json array, or text files (one example per line).

    field names the DatasetRef in the spec, for the BadInput raised when the data is not there."""
    blobs = [text for _, text in read_texts(ref, field=field, fix=DATASET_FIX, base_dir=base_dir)]
    out: list[dict] = []
    for text in blobs:
        if ref.format == "jsonl":
            out += [json.loads(line) for line in text.splitlines() if line.strip()]
        elif ref.format == "json":
            data = json.loads(text)
            out += data if isinstance(data, list) else [data]
        else:
            out += [{"text": line} for line in text.splitlines() if line.strip()]
    if ref.limit:
        random.Random(0).shuffle(out)
        out = out[: ref.limit]
    return out


# ---- recipe --------------------------------------------------------------------------------


def build_recipe(spec: ShardedFinetuneSpec, model: Any, config: ModelConfig, tokenizer: Any,
                 train_examples: Optional[list] = None, inputs: Any = None) -> Recipe:
    """The recipe named in spec.recipe, bound to the model and tokenizer (and, for recipes that
    draw from it, the training set; inputs: aspects.RecipeInputs, where other runs and relative
    paths are found)."""
    r = spec.recipe
    d = spec.data
    if r.name == "aspect-summarization":
        from .aspects import RecipeInputs, aspect_recipe

        return aspect_recipe(spec, model, config, tokenizer, train_examples or [], inputs or RecipeInputs(),
                             generation_settings(spec))
    if r.name == "keyword-summarization":
        return _keyword_recipe(spec, config, tokenizer, train_examples or [])
    if r.name == "progressive":  # its first stage; finetune/stages.py trains them all
        return progressive_recipe(spec, model, config, tokenizer,
                                  progressive_vocabs(spec, config, train_examples or []), 1)
    if r.name == "custom":
        fns = {n: resolve(getattr(r, n)) if getattr(r, n) else None
               for n in ("collate_fn", "loss_fn", "pred_fn", "output_fn", "eval_metric_fn")}
        return Recipe(**fns)
    if r.name in ("causal-lm", "soft-q") and config.architecture not in DECODERS:
        raise BadInput("spec.recipe.name", f"recipe {r.name} needs a decoder (llama or gpt2), not {config.architecture}",
                       "start from a decoder model, or use recipe seq2seq for an encoder-decoder")
    from ..recipes.causal_lm import decoder_apply

    if r.name == "causal-lm":
        from ..recipes import causal_lm

        return causal_lm.make(decoder_apply(model), tokenizer, max_length=d.max_source_length + d.max_target_length,
                              max_new_tokens=d.max_target_length, max_prompt_length=d.max_source_length,
                              generation=generation_settings(spec))
    if r.name == "seq2seq":
        if config.architecture != "bart":
            raise BadInput("spec.recipe.name", f"recipe seq2seq needs an encoder-decoder (bart), not {config.architecture}",
                           "start from a bart model, or use recipe causal-lm for a decoder")
        from ..recipes import seq2seq

        return seq2seq.make(model, tokenizer, d.max_source_length, d.max_target_length, config.start_token_id,
                            generation=generation_settings(spec))
    if r.name == "soft-q":
        from ..recipes import soft_q

        q = r.soft_q
        return soft_q.make(decoder_apply(model), tokenizer, resolve(q.reward_fn), max_prompt_length=d.max_source_length,
                           max_new_tokens=d.max_target_length, tau=q.tau, mix=q.on_policy_fraction,
                           reward_min=q.reward_range.min, reward_max=q.reward_range.max, top_k=q.top_k,
                           loss_type=q.loss)
    raise BadInput("spec.recipe.name", f"recipe {r.name} is not part of this workload image yet",
                   "use causal-lm, seq2seq, soft-q, aspect-summarization, keyword-summarization, progressive or custom")


def _keyword_recipe(spec: ShardedFinetuneSpec, config: ModelConfig, tokenizer: Any, examples: list) -> Recipe:
    """keyword-summarization: a GPT-2 double-heads model over the tokenizer plus two added tokens."""
    from ..flax_models.gpt2 import GPT2DoubleHeadsModel
    from ..recipes import keyword_summarization as ks

    k = spec.recipe.keyword_summarization or _default_keyword_settings()
    if config.architecture != "gpt2":
        raise BadInput("spec.model.architecture", f"recipe keyword-summarization needs gpt2 (double heads), not "
                       f"{config.architecture}", "start from a gpt2 model")
    if config.vocab_size < tokenizer.vocab_size + 2:
        raise BadInput("spec.model.config.vocabSize", f"{config.vocab_size} leaves no room for the recipe's two added "
                       f"tokens after the tokenizer's {tokenizer.vocab_size}", f"set it to at least {tokenizer.vocab_size + 2}")
    missing = next((i for i, ex in enumerate(examples) if not isinstance(ex.get("abstract"), str)), None)
    if missing is not None:
        raise BadInput("spec.data.train", f"example {missing} has no \"abstract\" string",
                       "give every example an abstract (and optionally its keywords)")
    tagger = None
    if k.tagger == "spacy":
        try:
            tagger = ks.spacy_tagger()
        except ImportError as exc:
            raise BadInput("spec.recipe.keywordSummarization.tagger", str(exc),
                           "run hack/assets.sh, or set tagger: provided with keywords in every example") from exc
    elif any("keywords" not in ex for ex in examples):
        raise BadInput("spec.recipe.keywordSummarization.tagger", "tagger provided needs keywords in every example",
                       "add keywords to the examples, or use tagger: spacy")
    settings = ks.Settings(tuple(k.pos_tags), k.keep_ratio, k.max_keyword_tokens, k.max_length, k.distractors.shuffled,
                           k.distractors.random, k.lm_coef, k.mc_coef, k.seed)
    return ks.make(GPT2DoubleHeadsModel(config), tokenizer, [ex["abstract"] for ex in examples], settings, tagger,
                   generation_settings(spec))


def progressive_vocabs(spec: ShardedFinetuneSpec, config: ModelConfig, examples: list) -> list[list[str]]:
    """The stage vocabularies V(rate) of recipe.progressive.stages from the training texts (checked:
    a bart model, examples with a condition and a text, words in minDf documents)."""
    from ..recipes import progressive as pg

    p = spec.recipe.progressive
    if config.architecture != "bart":
        raise BadInput("spec.model.architecture", f"recipe progressive trains bart stage models, not {config.architecture}",
                       "start from a bart model")
    bad = next((i for i, ex in enumerate(examples) if not all(isinstance(ex.get(k), str) for k in ("condition", "text"))), None)
    if bad is not None:
        raise BadInput("spec.data.train", f"example {bad} lacks a \"condition\" or \"text\" string",
                       "give every example its condition (e.g. a prompt or title) and its text")
    try:
        return [pg.stage_vocab([ex["text"] for ex in examples], rate, p.vocab.min_df) for rate in p.stages]
    except ValueError as exc:  # sklearn: no word is in min_df documents
        raise BadInput("spec.recipe.progressive.vocab.minDf", f"no stage vocabulary: {exc}",
                       "lower minDf or add training texts") from exc


def progressive_recipe(spec: ShardedFinetuneSpec, model: Any, config: ModelConfig, tokenizer: Any,
                       vocabs: list[list[str]], stage: int) -> Recipe:
    """progressive stage `stage` (1-based): the seq2seq recipe on that stage's (source, target)
    pairs of the raw examples, the part after [SEP] noised (training only) from the source stage's
    vocabulary."""
    from ..recipes import progressive as pg
    from ..recipes import seq2seq

    p, d = spec.recipe.progressive, spec.data
    base = seq2seq.make(model, tokenizer, d.max_source_length, d.max_target_length, config.start_token_id,
                        generation=generation_settings(spec))
    noise_vocab = vocabs[stage - 2] if stage > 1 else []

    def pairs(batch: list, noised: bool) -> list:
        out = pg.stage_examples(batch, vocabs, stage)
        if noised and noise_vocab and p.noise.prob > 0:
            for ex, pair in zip(batch, out):  # noise fixed per example and seed (resumable)
                rng = random.Random(f"{p.seed}:{ex['condition']}:{ex['text']}")
                pair["source"] = pg.add_noise(pair["source"], noise_vocab, rng, p.noise.prob, p.noise.continue_prob,
                                              p.noise.max_run)
        return out

    return Recipe(lambda b: base.collate_fn(pairs(b, True)), base.loss_fn, base.pred_fn, base.output_fn,
                  lambda exs, preds: base.eval_metric_fn(pairs(exs, False), preds),
                  pred_collate_fn=lambda b: base.pred_collate_fn(pairs(b, False)))


def _default_keyword_settings() -> Any:
    from glassbox_api.kinds.shardedfinetune import KeywordSummarization

    return KeywordSummarization()


def generation_settings(spec: ShardedFinetuneSpec) -> Any:
    """spec.generation as the decoder's settings; maxNewTokens defaults to data.maxTargetLength."""
    from ..recipes.decoding import Generation

    g = spec.generation
    return Generation(max_new_tokens=g.max_new_tokens or spec.data.max_target_length, min_new_tokens=g.min_new_tokens,
                      num_beams=g.num_beams, length_penalty=g.length_penalty, no_repeat_ngram_size=g.no_repeat_ngram_size,
                      do_sample=g.do_sample, temperature=g.temperature, top_k=g.top_k, top_p=g.top_p,
                      num_return_sequences=g.num_return_sequences)


# ---- devices and shards --------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """How many devices the run spans, their memory, and the shard count."""

    pool: Pool
    n_devices: int
    n_model_shards: int
    auto: Optional[AutoChoice]
    reason: str


def planned_devices(spec: ShardedFinetuneSpec, pool: Pool, local_devices: Optional[int] = None) -> int:
    """Devices of the whole run: workers x accelerators per worker (a tpu-v5e-16 slice: 4 hosts x 4)."""
    r = spec.resources
    if pool.name == "cpu":
        return r.workers * (local_devices or 1)
    n = r.workers * (r.accelerators_per_worker or pool.devices_per_host)
    if pool.slice_chips and n % pool.slice_chips:
        raise ValueError(f"{r.workers} workers x {n // r.workers} chips do not fill whole {pool.name} slices "
                         f"of {pool.slice_chips} chips")
    return n


def place(spec: ShardedFinetuneSpec, shapes: Any, n_devices: int, pool: Pool, optimizer_slots: int = 2) -> Placement:
    """Resolve sharding.modelShards (an int, or 'auto' from the pool's device memory)."""
    ms = spec.sharding.model_shards
    extra = 1 if spec.recipe.name == "soft-q" else 0  # the target network is one more param copy
    memory = pool.device_memory if pool.name != "cpu" else pool.device_memory // max(1, n_devices)
    choice = choose_model_shards(shapes, n_devices, memory, optimizer_slots=optimizer_slots, param_copies=extra)
    if ms == "auto":
        return Placement(pool, n_devices, choice.n_model_shards, choice, f"auto: {choice.reason}")
    if n_devices % ms:
        raise ValueError(f"sharding.modelShards={ms} does not divide the {n_devices} devices")
    why = f"modelShards={ms} from the spec"
    if not choice.fits or ms < choice.n_model_shards:
        need = dict(choice.tried).get(ms)
        if need is not None and need > choice.budget_bytes:
            why += f" (warning: needs {need / 2**30:.2f} GiB per device for state, over the {choice.budget_bytes / 2**30:.2f} GiB budget)"
    return Placement(pool, n_devices, ms, None, why)


def shapes_for(spec: ShardedFinetuneSpec, store: Optional[ArtifactStore] = None, namespace: str = "default"):
    """(config, tokenizer, parameter ShapeDtypeStructs, source) without loading any weight."""
    source = resolve_model_source(spec, store, namespace)
    tok = load_tokenizer(spec, source)
    cfg = model_config(spec, source, tok)
    return cfg, tok, param_shapes(cfg), source


__all__ = ["Placement", "build_recipe", "load_examples", "load_tokenizer", "model_config", "place",
           "planned_devices", "pool_info", "progressive_recipe", "progressive_vocabs", "resolve_model_source",
           "shapes_for"]
