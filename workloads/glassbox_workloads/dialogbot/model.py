"""The dialogue model and how it replies: a causal (gpt2, llama) or seq2seq (bart) transformers model
from spec.model (runtime.hfmodels: a config with a tokenizer trained on the consultations, a uri or
fromRun), the objective it trains with, and decoding as spec.decoding says (beam, length penalty,
min/max new tokens, no repeated n-grams)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.dialogbot import Decoding, DialogBotSpec
from glassbox_api.store import ArtifactStore

from ..runtime import hfmodels
from .data import Dialogue, Turn
from .inputs import causal_context, encode_source, history_text

SEQ2SEQ, CAUSAL = "seq2seq", "causal-dialogue"


def objective_of(spec: DialogBotSpec, config: Any = None) -> str:
    """training.objective, else by architecture (or the loaded config): encoder-decoder -> seq2seq."""
    if spec.training is not None and spec.training.objective is not None:
        return spec.training.objective
    if config is not None:
        return SEQ2SEQ if getattr(config, "is_encoder_decoder", False) else CAUSAL
    return SEQ2SEQ if spec.model.architecture == "bart" else CAUSAL


def decoding_kwargs(d: Decoding, pad_id: Optional[int], eos_id: Optional[int]) -> dict[str, Any]:
    """transformers generate() arguments of spec.decoding."""
    out: dict[str, Any] = {"do_sample": False, "num_beams": d.num_beams, "length_penalty": d.length_penalty,
                           "min_new_tokens": d.min_new_tokens, "max_new_tokens": d.max_new_tokens,
                           "early_stopping": True, "pad_token_id": pad_id, "eos_token_id": eos_id}
    if d.no_repeat_ngram_size:
        out["no_repeat_ngram_size"] = d.no_repeat_ngram_size
    return out


@dataclass
class DialogModel:
    """A model, its tokenizer and how it reads a history."""

    model: Any
    tokenizer: Any
    objective: str
    max_source_length: int
    include_description: bool = False
    device: str = "cpu"

    def context_ids(self, turns: Sequence[Turn], description: str = "") -> list[int]:
        """The ids the model replies to: the history, left truncated to max_source_length."""
        if self.objective == SEQ2SEQ:
            text = history_text(turns, description if self.include_description else None)
            return encode_source(self.tokenizer, text, self.max_source_length)
        tok = self.tokenizer
        utts = [tok(t.text, add_special_tokens=False)["input_ids"] for t in turns]
        return causal_context(utts, tok.eos_token_id, self.max_source_length)

    def reply_ids(self, contexts: list[list[int]], decoding: Decoding) -> list[list[int]]:
        """The new token ids of each reply (special tokens included), one context at a time: beams
        over a padded batch would change results with the batch's make-up."""
        import torch

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        kw = decoding_kwargs(decoding, pad, tok.eos_token_id)
        if self.objective == SEQ2SEQ:
            kw["decoder_start_token_id"] = self.model.config.decoder_start_token_id
        self.model.eval()
        out = []
        with torch.inference_mode():
            for ids in contexts:
                x = torch.tensor([ids], dtype=torch.long, device=self.device)
                seq = self.model.generate(input_ids=x, attention_mask=torch.ones_like(x), **kw)[0]
                new = seq[x.shape[1]:] if self.objective == CAUSAL else seq[1:]
                out.append([int(t) for t in new])
        return out

    def replies(self, histories: Sequence[Sequence[Turn]], decoding: Decoding,
                descriptions: Optional[Sequence[str]] = None) -> list[str]:
        ctx = [self.context_ids(h, (descriptions or [""] * len(histories))[i]) for i, h in enumerate(histories)]
        return [self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in self.reply_ids(ctx, decoding)]

    def save(self, out_dir: Path) -> Path:
        return hfmodels.save(self.model, self.tokenizer, out_dir)


def _auto_class(objective: str) -> Any:
    import transformers as tf

    return tf.AutoModelForSeq2SeqLM if objective == SEQ2SEQ else tf.AutoModelForCausalLM


def load_model(spec: DialogBotSpec, *, model: Optional[ModelSpec] = None, field: str = "spec.model",
               store: Optional[ArtifactStore] = None, namespace: str = "default", base_dir: Optional[Path] = None,
               dialogues: Iterable[Dialogue] = (), seed: int = 0, force_cpu: bool = False,
               objective: Optional[str] = None) -> DialogModel:
    """spec.model (or `model`: a published checkpoint) as a DialogModel on this process's device."""
    import torch

    m = model or spec.model
    obj = objective or objective_of(spec)
    if m.uri or m.from_run:
        source = hfmodels.resolve(m, store=store, namespace=namespace, field=field, base_dir=base_dir)
        if source.path is not None:  # resolved once (a fromRun download is not repeated by load below)
            m = ModelSpec.model_validate({"uri": str(source.path)})
            if (Path(source.path) / hfmodels.CONFIG_FILE).is_file():
                import transformers as tf

                obj = objective or objective_of(spec, tf.AutoConfig.from_pretrained(source.path))
    texts = [t for d in dialogues for t in (d.description, *(u.text for u in d.turns)) if t]
    t = spec.training
    loaded = hfmodels.load(m, _auto_class(obj), store=store, namespace=namespace, field=field, base_dir=base_dir,
                           tokenizer_texts=texts, model_max_length=100_000, seed=seed)
    device = "cuda" if torch.cuda.is_available() and not force_cpu else "cpu"
    tok = loaded.tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return DialogModel(loaded.model.to(device), tok, obj, t.max_source_length if t else 400,
                       bool(t and t.include_description), device)
