"""The optional pretraining of a masked LM from its config on a text corpus (spec.pretrain).

A model from a random config knows nothing, so a harvest from it finds nothing; a user with no
masked LM at hand (none is on any registry) gets one that knows the corpus's facts in a few CPU
minutes. Every selected position is replaced by [MASK], since the harvest only ever reads masks.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Callable, Optional

from glassbox_api.kinds.common import DatasetRef
from glassbox_api.kinds.kgharvest import Pretrain

from ..runtime.datasets import read_texts
from ..runtime.errors import BadInput

CORPUS_FIX = "point pretrain.corpus.uri at a text file (one or more sentences per line), a folder of them, or s3://..."


def read_corpus(ref: DatasetRef, base_dir: Optional[Path] = None, field: str = "spec.pretrain.corpus") -> list[str]:
    """The corpus's non-empty lines, in file order."""
    uri = ref.uri
    blobs = [text for _, text in read_texts(ref, field=field, fix=CORPUS_FIX, base_dir=base_dir, noun="corpus")]
    lines = [line.strip() for text in blobs for line in text.splitlines() if line.strip()]
    if ref.format != "text":
        raise BadInput(f"{field}.format", f"is {ref.format!r}; a pretraining corpus is plain text", "set format: text")
    if not lines:
        raise BadInput(f"{field}.uri", f"corpus {uri} has no text", CORPUS_FIX)
    return lines[: ref.limit] if ref.limit else lines


def mask_batch(batch: list[list[int]], mask_id: int, pad_id: int, p: float, rng: random.Random, special: set[int]):
    """Input ids, attention mask and labels (-100 where nothing is predicted) of one batch."""
    import torch

    width = max(len(r) for r in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    attn = torch.zeros((len(batch), width), dtype=torch.long)
    for i, row in enumerate(batch):
        cands = [j for j, t in enumerate(row) if t not in special]
        k = max(1, round(p * len(cands))) if cands else 0
        chosen = rng.sample(cands, k)
        ids[i, :len(row)] = torch.tensor(row)
        attn[i, :len(row)] = 1
        for j in chosen:
            labels[i, j] = row[j]
            ids[i, j] = mask_id
    return ids, attn, labels


def pretrain_mlm(model: Any, tokenizer: Any, lines: list[str], cfg: Pretrain,
                 on_step: Optional[Callable[[int, float], None]] = None) -> float:
    """Train `model` (a *ForMaskedLM) on the corpus lines; returns the mean loss of the last 10% of steps."""
    import torch

    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    rows = [tokenizer(line, truncation=True, max_length=cfg.sequence_length)["input_ids"] for line in lines]
    special = set(int(i) for i in tokenizer.all_special_ids)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / cfg.steps))
    model.train()
    tail: list[float] = []
    order: list[int] = []
    for step in range(1, cfg.steps + 1):
        if len(order) < cfg.batch_size:
            more = list(range(len(rows)))
            rng.shuffle(more)
            order += more
        batch = [rows[i] for i in order[:cfg.batch_size]]
        del order[:cfg.batch_size]
        ids, attn, labels = mask_batch(batch, tokenizer.mask_token_id, tokenizer.pad_token_id or 0,
                                       cfg.mask_probability, rng, special)
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step > cfg.steps - max(1, math.ceil(cfg.steps / 10)):
            tail.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, float(loss.detach()))
    model.eval()
    return sum(tail) / len(tail)
