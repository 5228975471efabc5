"""The training step by role: examples -> padded batches, the generation loss (label-smoothed, on
targets only), the auxiliary masked-token loss (SSL-Reg) and the dev loss.

An example is (input ids, label ids) for a causal dialogue (labels IGNORE off the doctor tokens)
or (source ids, target ids) for seq2seq.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from glassbox_api.kinds.dialogbot import AuxiliaryMaskedLoss, DialogTraining

from .data import Dialogue
from .inputs import IGNORE, causal_sequence, dialogue_ids, encode_source, encode_target, mask_tokens, pairs
from .model import SEQ2SEQ, DialogModel

Example = tuple[list[int], list[int]]


@dataclass(frozen=True)
class Prepared:
    """Training examples and the texts the masked-token loss reads, index-aligned."""

    examples: list[Example]
    mlm_texts: list[str]


def prepare(dm: DialogModel, dialogues: Sequence[Dialogue], t: DialogTraining) -> Prepared:
    """The examples of the objective; the MLM text per example (src+tgt, src or tgt)."""
    tok = dm.tokenizer
    ex: list[Example] = []
    texts: list[str] = []
    which = t.auxiliary_masked_loss.text if t.auxiliary_masked_loss else "src+tgt"
    for d in dialogues:
        if dm.objective == SEQ2SEQ:
            for p in pairs(d, t.include_description):
                ex.append((encode_source(tok, p.source, t.max_source_length),
                           encode_target(tok, p.target, t.max_target_length)))
                texts.append({"src": p.source, "tgt": p.target}.get(which, f"{p.source} {p.target}"))
        else:
            utts, who = dialogue_ids(tok, d)
            ids, labels = causal_sequence(utts, who, tok.eos_token_id, t.max_source_length + t.max_target_length)
            if any(x != IGNORE for x in labels[1:]):
                ex.append((ids, labels))
                texts.append(" ".join(u.text for u in d.turns if which == "src+tgt"
                                      or (u.speaker == "doctor") == (which == "tgt")))
    return Prepared(ex, texts)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return order


def _pad(rows: Sequence[Sequence[int]], value: int) -> Any:
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
    return out


def smoothed_ce(logits: Any, labels: Any, smoothing: float) -> Any:
    """Token-mean cross-entropy over labelled positions, label-smoothed by `smoothing`."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=IGNORE, label_smoothing=smoothing)


def gen_loss(dm: DialogModel, batch: Sequence[Example], smoothing: float) -> Any:
    """The generation loss of a batch: seq2seq on the targets; causal on the doctor tokens, position
    t predicting token t+1."""
    tok = dm.tokenizer
    pad = tok.pad_token_id
    a = _pad([x for x, _ in batch], pad).to(dm.device)
    mask = _pad([[1] * len(x) for x, _ in batch], 0).to(dm.device)
    b = _pad([y for _, y in batch], IGNORE).to(dm.device)
    if dm.objective == SEQ2SEQ:
        logits = dm.model(input_ids=a, attention_mask=mask, labels=b).logits
        return smoothed_ce(logits, b, smoothing)
    logits = dm.model(input_ids=a, attention_mask=mask).logits
    return smoothed_ce(logits[:, :-1], b[:, 1:], smoothing)


def mlm_loss(dm: DialogModel, texts: Sequence[str], aux: AuxiliaryMaskedLoss, max_len: int, generator: Any) -> Any:
    """The masked-token loss through the shared stack: BART's encoder (or decoder, no cross-attention)
    read by the tied LM head; a causal model predicts each chosen token at its own position."""
    import torch

    tok = dm.tokenizer
    enc = tok(list(texts), truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    ids, attn = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor([tok.get_special_tokens_mask(r, already_has_special_tokens=True) for r in ids.tolist()],
                           dtype=torch.bool) | (attn == 0)
    mask_id = tok.mask_token_id if tok.mask_token_id is not None else tok.unk_token_id
    x, labels = mask_tokens(ids, prob=aux.mask_prob, mask_id=mask_id, vocab_size=len(tok), generator=generator,
                            special=special)
    x, attn, labels = x.to(dm.device), attn.to(dm.device), labels.to(dm.device)
    m = dm.model
    if dm.objective == SEQ2SEQ:
        stack = m.get_encoder() if aux.shared == "encoder" else m.get_decoder()
        hidden = stack(input_ids=x, attention_mask=attn).last_hidden_state
        logits = m.lm_head(hidden) + getattr(m, "final_logits_bias", 0)
    else:
        logits = m(input_ids=x, attention_mask=attn).logits
    if not bool((labels != IGNORE).any()):
        return logits.sum() * 0.0
    return smoothed_ce(logits, labels, 0.0)


def dev_loss(dm: DialogModel, examples: Sequence[Example], batch_size: int) -> Optional[float]:
    """Mean token NLL (no smoothing) of the dev examples, weighted by their labelled tokens."""
    import torch

    if not examples:
        return None
    total, count = 0.0, 0
    dm.model.eval()
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = examples[i:i + batch_size]
            n = sum(sum(1 for v in (y[1:] if dm.objective != SEQ2SEQ else y) if v != IGNORE) for _, y in batch)
            total += float(gen_loss(dm, batch, 0.0)) * n
            count += n
    dm.model.train()
    return total / count if count else None


def optimizer(model: Any, t: DialogTraining, total: int) -> tuple[Any, Any]:
    """AdamW (eps 1e-8; no decay on biases and LayerNorm weights), linear warm-up then linear decay to 0."""
    import torch

    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (plain if name.endswith("bias") or "norm" in name.lower() or "ln_" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                             {"params": plain, "weight_decay": 0.0}], lr=t.learning_rate, eps=1e-8)
    warm = int(t.warmup_ratio * total)

    def lr(step: int) -> float:
        if warm and step < warm:
            return step / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr)
