"""Aligners from a spec's model block, through runtime.hfmodels (uri incl. package://, fromRun, or a
config for random initialisation).

Public:
- load_aligner(kind, model, *, store=None, namespace="default", field="spec.aligner.model", layer=None,
  trained=True, tokenizer_texts=None, device="cpu", seed=0, **config_overrides) -> Aligner
  kind "embedding": AutoModel (any encoder) and `layer` (required: a local model has no BERTScore
  default layer); "discriminative": AutoModelForTokenClassification with 2 labels; "regression":
  AutoModelForSequenceClassification with 1 label. With trained=True (scoring) the head must come
  from the checkpoint: an encoder without token-classification (or regression) weights, or a
  random initialisation, is BadInput naming `field`. trained=False (before training) allows both.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from glassbox_api.kinds.common import ModelSpec

from ...runtime import hfmodels
from ...runtime.errors import BadInput
from .aligner import Aligner
from .discriminative import DiscriminativeAligner
from .embedding import EmbeddingAligner
from .regression import RegressionAligner

HEADS = {"discriminative": ("AutoModelForTokenClassification", 2), "regression": ("AutoModelForSequenceClassification", 1)}


def _layer_field(field: str) -> str:
    return field.rsplit(".", 1)[0] + ".layer" if field.endswith(".model") else field + ".layer"


def load_aligner(kind: str, model: ModelSpec, *, store: Any = None, namespace: str = "default",
                 field: str = "spec.aligner.model", layer: Optional[int] = None, trained: bool = True,
                 tokenizer_texts: Optional[Iterable[str]] = None, device: str = "cpu", seed: int = 0,
                 **config_overrides: Any) -> Aligner:
    """The aligner of `kind` with the model the spec names; config_overrides go to the model's
    config (e.g. num_hidden_layers=3 keeps the first 3 layers of a pretrained encoder)."""
    import transformers

    if kind == "embedding":
        if layer is None:
            raise BadInput(_layer_field(field), "the embedding (E) aligner needs the layer whose hidden states it "
                           "compares", "set the layer (BERTScore's num_layers for the model, e.g. 17 for roberta-large)")
        loaded = hfmodels.load(model, transformers.AutoModel, store=store, namespace=namespace, field=field,
                               tokenizer_texts=tokenizer_texts, seed=seed, **config_overrides)
        return EmbeddingAligner(loaded.model, loaded.tokenizer, layer, device=device, field=_layer_field(field))
    if kind not in HEADS:
        raise BadInput(field.rsplit(".", 1)[0] + ".type", f"unknown aligner type {kind!r}",
                       "use embedding, discriminative or regression")
    auto_name, num_labels = HEADS[kind]
    loaded = hfmodels.load(model, getattr(transformers, auto_name), store=store, namespace=namespace, field=field,
                           tokenizer_texts=tokenizer_texts, seed=seed, require=("classifier",) if trained else (),
                           num_labels=num_labels, **config_overrides)
    if trained and loaded.source.path is None:
        raise BadInput(field, f"a {kind} aligner scores only with trained weights, and this model is a random "
                       "initialisation", "point the model at a trained aligner checkpoint (uri or fromRun)")
    cls = DiscriminativeAligner if kind == "discriminative" else RegressionAligner
    return cls(loaded.model, loaded.tokenizer, device=device)
