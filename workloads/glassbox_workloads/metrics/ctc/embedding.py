"""E aligner: BERTScore-style alignment with any Hugging Face encoder (CTC bert_aligner.py).

Candidate and context are embedded separately (hidden states of `layer`, BERTScore's num_layers;
texts encoded by bert-score's sent_encode, as CTC does),
each embedding is L2-normalised, the first and last tokens (CLS/SEP, <s>/</s>) are dropped, and a
candidate token's alignment is its max cosine over the context tokens. Tokens are subwords, decoded
one by one (so stop-word removal sees "the", not an id).

Public:
- max_cosine(hyp, ctx) -> torch.Tensor: per-row max cosine of hyp [n, d] against ctx [m, d] after
  L2 normalisation (the pure core; section 3.3's toy embeddings test it).
- EmbeddingAligner(model, tokenizer, layer, batch_size=16, max_length=None, device="cpu"):
  align_many(inputs, contexts) -> list[Alignment]. `model` is an AutoModel (encoder); `layer` in
  0..num_hidden_layers (0 = the embedding layer's output).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from ...runtime.errors import BadInput
from .aligner import Aligner, Alignment


def max_cosine(hyp: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
    """For each row of hyp, the largest cosine similarity to a row of ctx."""
    h = torch.nn.functional.normalize(hyp.float(), dim=-1)
    c = torch.nn.functional.normalize(ctx.float(), dim=-1)
    return (h @ c.T).max(dim=-1).values


def model_max_length(model: Any, tokenizer: Any, cap: int = 512) -> int:
    """The longest input both the tokenizer and the position table take (RoBERTa keeps 2 rows for
    its padding offset)."""
    cfg = model.config
    positions = getattr(cfg, "max_position_embeddings", cap)
    if getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2
    return int(min(cap, positions, getattr(tokenizer, "model_max_length", cap) or cap))


class EmbeddingAligner(Aligner):
    """Max cosine similarity of contextual embeddings (E)."""

    kind = "embedding"

    def __init__(self, model: Any, tokenizer: Any, layer: int, batch_size: int = 16,
                 max_length: Optional[int] = None, device: str = "cpu", field: str = "spec.aligner.layer"):
        n_layers = int(model.config.num_hidden_layers)
        if not 0 <= layer <= n_layers:
            raise BadInput(field, f"layer {layer} does not exist: the encoder has layers 0..{n_layers}",
                           f"choose a layer from 0 to {n_layers} (BERTScore's default for the model, if known)")
        self.model, self.tokenizer, self.layer = model.to(device).eval(), tokenizer, layer
        self.batch_size, self.device = batch_size, device
        self.max_length = max_length or model_max_length(model, tokenizer)

    def _encode(self, text: str) -> list[int]:
        # bert-score's own sentence encoding (CTC's E aligner calls it): stripped, special tokens
        # added, a prefix space for GPT-2/RoBERTa BPE; cut to the position table, keeping the last
        # special token.
        from bert_score.utils import sent_encode

        ids = list(sent_encode(self.tokenizer, text))
        return ids if len(ids) <= self.max_length else ids[:self.max_length - 1] + ids[-1:]

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> list[tuple[list[int], torch.Tensor]]:
        """Token ids and layer-`layer` embeddings of each text (special tokens included)."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out: list[tuple[list[int], torch.Tensor]] = []
        for i in range(0, len(texts), self.batch_size):
            rows = [self._encode(t) for t in texts[i:i + self.batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=self.device)
            hidden = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[self.layer]
            out.extend((r, hidden[k, :len(r)].cpu()) for k, r in enumerate(rows))
        return out

    def align_many(self, inputs: Sequence[str], contexts: Sequence[str]) -> list[Alignment]:
        """Per-subword max cosine of each input against its context, CLS/SEP dropped on both sides."""
        unique = list(dict.fromkeys([*inputs, *contexts]))
        emb = dict(zip(unique, self.embed(unique)))
        result = []
        for x, c in zip(inputs, contexts):
            (x_ids, x_emb), (_, c_emb) = emb[x], emb[c]
            if len(x_ids) <= 2 or c_emb.shape[0] <= 2:
                result.append(Alignment([], []))
                continue
            scores = max_cosine(x_emb[1:-1], c_emb[1:-1]).tolist()
            tokens = [self.tokenizer.decode([i]) for i in x_ids[1:-1]]
            result.append(Alignment(tokens, scores))
        return result
