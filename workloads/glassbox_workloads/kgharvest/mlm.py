"""The masked LM behind one small interface: token ids and offsets, batched logits, the banned ids,
and a counter of forward rows (what bench/kgharvest compares)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import torch

from .filters import stopwords


@dataclass
class MaskedLM:
    """An HF masked LM and its fast tokenizer, in eval mode, on one device."""

    model: Any
    tokenizer: Any
    device: str = "cpu"
    batch_size: int = 64
    forward_rows: int = 0
    """Sequences run through the model so far."""
    forward_calls: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.model.eval()
        self.model.to(self.device)
        if self.tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token")

    @property
    def mask_id(self) -> int:
        return int(self.tokenizer.mask_token_id)

    @property
    def mask_text(self) -> str:
        return str(self.tokenizer.mask_token)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids with the special tokens, and each token's character span."""
        enc = self.tokenizer(text, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids)))

    def piece(self, token_id: int) -> str:
        """One token as decoded (cached: the search asks for the same tokens again and again)."""
        got = self._cache.get(token_id)
        if got is None:
            got = self._cache[token_id] = self.decode([token_id])
        return got

    @cached_property
    def banned_ids(self) -> torch.Tensor:
        """Every special token and every token that decodes to a stop word."""
        stops = stopwords()
        ids = set(int(i) for i in self.tokenizer.all_special_ids)
        ids |= {i for i in range(self.vocab_size) if self.piece(i).lower().strip() in stops}
        return torch.tensor(sorted(ids), dtype=torch.long)

    @torch.no_grad()
    def logits(self, rows: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Logits [len(row), vocab] per row, computed in padded batches."""
        out: list[torch.Tensor] = []
        pad = self.tokenizer.pad_token_id or 0
        for b in range(0, len(rows), self.batch_size):
            chunk = rows[b:b + self.batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, r in enumerate(chunk):
                ids[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
                attn[i, :len(r)] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=attn.to(self.device)).logits.float().cpu()
            self.forward_rows += len(chunk)
            self.forward_calls += 1
            out += [logits[i, :len(r)] for i, r in enumerate(chunk)]
        return out

    def reset_counters(self) -> None:
        self.forward_rows = 0
        self.forward_calls = 0
