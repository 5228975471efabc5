"""Perplexity of a language model on the references given the source (CovidDialog's perplexity).

Per example: the token-mean negative log-likelihood of its reference (the mean over its references
when it has several), tokens of the reference plus the end-of-sequence token, conditioned on the
source: a causal LM reads `source ids + reference ids` and is scored on the reference part only; a
seq2seq LM encodes the source and is scored on the reference as decoder labels.

Corpus perplexity = exp(mean over examples of the per-example token-mean NLL): each example counts
once whatever its length (not a token-weighted mean); per example the value is exp(its NLL).

Public:
- reference_nll(model, tokenizer, sources, references, kind="causal"|"seq2seq", batch_size=8,
  device="cpu", max_length=None) -> list[float]: per example token-mean NLL (natural log).
- perplexity(...same...) -> Scores.
Sources may be None for a causal LM (unconditional perplexity of the references).
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional, Sequence

import torch

from .base import Scores, check_references, check_sources

Kind = Literal["causal", "seq2seq"]


def _ids(tokenizer: Any, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _eos(tokenizer: Any) -> list[int]:
    return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []


def _pad_id(tokenizer: Any) -> int:
    for t in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if t is not None:
            return int(t)
    return 0


def _padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r, dtype=torch.long), 1
    return ids, mask


def _token_mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Mean NLL per row over positions whose label is not -100."""
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
    keep = (labels != -100).float()
    return (nll.mul(keep).sum(1) / keep.sum(1).clamp(min=1)).tolist()


def _causal_batch(model: Any, tokenizer: Any, pairs: list[tuple[Optional[str], str]], device: str,
                  max_length: int) -> list[float]:
    rows, labels = [], []
    for src, ref in pairs:
        r = _ids(tokenizer, ref, False) + _eos(tokenizer)
        s = _ids(tokenizer, src, True) if src is not None else []
        if not s and tokenizer.bos_token_id is not None:
            s = [tokenizer.bos_token_id]
        if len(s) + len(r) > max_length:  # keep the reference; cut the source from the left
            r = r[:max_length - 1]
            s = s[len(s) - (max_length - len(r)):] if max_length - len(r) < len(s) else s
        rows.append(s + r)
        labels.append([-100] * len(s) + r)
    ids, mask = _padded(rows, _pad_id(tokenizer))
    lab, _ = _padded(labels, -100)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    # Position t predicts token t+1; the first token of a text without a BOS is not predicted.
    return _token_mean_nll(logits[:, :-1], lab[:, 1:].to(device))


def _seq2seq_batch(model: Any, tokenizer: Any, pairs: list[tuple[Optional[str], str]], device: str,
                   max_length: int) -> list[float]:
    src = tokenizer([s for s, _ in pairs], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    tgt = [_ids(tokenizer, r, True)[:max_length] for _, r in pairs]
    lab, _ = _padded(tgt, -100)
    logits = model(input_ids=src["input_ids"].to(device), attention_mask=src["attention_mask"].to(device),
                   labels=lab.to(device)).logits
    return _token_mean_nll(logits, lab.to(device))


@torch.no_grad()
def reference_nll(model: Any, tokenizer: Any, sources: Optional[Sequence[Any]], references: Sequence[Any],
                  kind: Kind = "causal", batch_size: int = 8, device: str = "cpu",
                  max_length: Optional[int] = None) -> list[float]:
    """Per example token-mean NLL of the references given the source."""
    if kind not in ("causal", "seq2seq"):
        raise ValueError(f"kind must be causal or seq2seq, not {kind!r}")
    n = len(references)
    refs = check_references(references, n)
    if sources is None and kind == "seq2seq":
        raise ValueError("a seq2seq model's perplexity needs the sources")
    srcs: list[Optional[str]] = check_sources(sources, n) if sources is not None else [None] * n
    limit = int(max_length or min(getattr(tokenizer, "model_max_length", 1024) or 1024, 1024))
    flat = [(s, r) for s, rs in zip(srcs, refs) for r in rs]
    batch_fn = _causal_batch if kind == "causal" else _seq2seq_batch
    model.to(device).eval()
    nll: list[float] = []
    for i in range(0, len(flat), batch_size):
        nll.extend(batch_fn(model, tokenizer, flat[i:i + batch_size], device, limit))
    out, k = [], 0
    for rs in refs:
        out.append(sum(nll[k:k + len(rs)]) / len(rs))
        k += len(rs)
    return out


def perplexity(model: Any, tokenizer: Any, sources: Optional[Sequence[Any]], references: Sequence[Any],
               kind: Kind = "causal", batch_size: int = 8, device: str = "cpu",
               max_length: Optional[int] = None) -> Scores:
    """exp(mean over examples of the token-mean NLL); per example exp(its NLL)."""
    nll = reference_nll(model, tokenizer, sources, references, kind, batch_size, device, max_length)
    return Scores([math.exp(v) for v in nll], math.exp(sum(nll) / len(nll)) if nll else math.nan)
