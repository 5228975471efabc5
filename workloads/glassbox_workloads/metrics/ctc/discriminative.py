"""D aligner: a token classifier that judges each word of the input against the context (CTC
discriminative_aligner.py).

The model is an encoder with a Linear(hidden, 2) head (transformers' *ForTokenClassification: BERT,
RoBERTa, ...). Texts are cleaned as CTC does (straight quotes, lowercase, collapsed spaces); the input
keeps at most 256 pieces; the pair `tokenizer(input, context, truncation="only_second", max_length=512)`
is encoded once; a word is a whitespace token of the input, and its feature is the SUM of its
pieces' final hidden states (pieces are assigned to words by character offsets, which covers BPE's
"Ġ" and WordPiece's "##" alike); the head runs on word features; P(aligned) = softmax(logits)[:, 0]
(class 1 means hallucinated, the authors' polarity).

Public:
- word_groups(words_spans, piece_offsets) -> list[list[int]]: for each word, the pieces inside it.
- sum_pieces(features, groups) -> torch.Tensor [n_words, hidden]: a word's feature is the sum of its
  pieces' features (a 1-piece word's feature is its piece's feature).
- DiscriminativeAligner(model, tokenizer, batch_size=8, device="cpu", clean=True):
  word_logits(inputs, contexts) -> list[(kept_word_indices, logits [n_kept, 2])] (grad-enabled, used
  by training); align_many(inputs, contexts) -> list[Alignment] (words, P(aligned)).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any, Sequence

import torch

from ..text import ctc_clean
from .aligner import Aligner, Alignment
from .embedding import model_max_length

MAX_INPUT_PIECES = 256  # CTC keeps the first MAX_LENGTH // 2 tokens of the input
_WORD = re.compile(r"\S+")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the whitespace words of `text`."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def word_groups(spans: Sequence[tuple[int, int]], piece_offsets: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Pieces (by position in piece_offsets) belonging to each word: the word whose span holds the
    piece's first character (a piece starting in the space before a word, like a bare "Ġ", joins the
    next word). Empty-span pieces (special tokens) belong to none."""
    starts = [s for s, _ in spans]
    groups: list[list[int]] = [[] for _ in spans]
    for j, (a, b) in enumerate(piece_offsets):
        if b <= a:
            continue
        w = bisect_right(starts, a) - 1
        if w < 0 or a >= spans[w][1]:
            w += 1  # in the whitespace before word w+1
        if 0 <= w < len(spans):
            groups[w].append(j)
    return groups


def sum_pieces(features: torch.Tensor, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """Word features [n_words, hidden]: each word's pieces summed."""
    index = torch.tensor([w for w, g in enumerate(groups) for _ in g], dtype=torch.long, device=features.device)
    pieces = torch.tensor([j for g in groups for j in g], dtype=torch.long, device=features.device)
    out = features.new_zeros((len(groups), features.shape[-1]))
    return out.index_add(0, index, features[pieces])


class DiscriminativeAligner(Aligner):
    """Token-classification alignment (D): P(word is supported by the context)."""

    kind = "discriminative"

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 8, device: str = "cpu", clean: bool = True):
        for part in ("classifier", "base_model"):
            if not hasattr(model, part):
                raise TypeError(f"a D aligner needs a token-classification model with .{part}, not {type(model).__name__}")
        self.model, self.tokenizer = model.to(device), tokenizer
        self.batch_size, self.device, self.clean = batch_size, device, clean
        self.max_length = model_max_length(model, tokenizer)

    def _truncate(self, text: str) -> str:
        # Keep whole words within the first 256 pieces (CTC decodes the first 256 ids back to text;
        # cutting at a word boundary keeps the words, and so the labels, unchanged).
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        if len(offsets) <= MAX_INPUT_PIECES:
            return text
        cut = offsets[MAX_INPUT_PIECES][0]
        head = text[:cut]
        return head.rstrip() if cut == 0 or head[-1].isspace() else head.rsplit(maxsplit=1)[0]

    def prepare(self, input_text: str, context: str) -> tuple[str, str]:
        """The cleaned (if enabled) and truncated input, and the cleaned context."""
        if self.clean:
            input_text, context = ctc_clean(input_text), ctc_clean(context)
        return self._truncate(input_text), context

    def _encode(self, inputs: Sequence[str], contexts: Sequence[str]):
        """The padded pair batch; for each row, the kept words and their pieces' positions."""
        enc = self.tokenizer(list(inputs), list(contexts), truncation="only_second", max_length=self.max_length,
                             padding=True, return_offsets_mapping=True, return_tensors="pt")
        rows = []
        for i, text in enumerate(inputs):
            pos = [j for j, s in enumerate(enc.sequence_ids(i)) if s == 0]
            groups = word_groups(word_spans(text), [tuple(enc["offset_mapping"][i][j].tolist()) for j in pos])
            kept = [w for w, g in enumerate(groups) if g]
            rows.append((kept, [[pos[j] for j in groups[w]] for w in kept]))
        enc.pop("offset_mapping")
        return enc, rows

    def word_logits(self, inputs: Sequence[str], contexts: Sequence[str]) -> list[tuple[list[int], torch.Tensor]]:
        """Logits [n_words, 2] of the words of each (already prepared) input; words without any
        piece (characters the tokenizer drops) are left out, `kept` lists the others' indices."""
        enc, rows = self._encode(inputs, contexts)
        hidden = self.model.base_model(**enc.to(self.device)).last_hidden_state
        feats = torch.cat([sum_pieces(hidden[i], groups) for i, (_, groups) in enumerate(rows)])
        dropout = getattr(self.model, "dropout", None)
        logits = self.model.classifier(dropout(feats) if dropout is not None else feats)
        out, start = [], 0
        for kept, _ in rows:
            out.append((kept, logits[start:start + len(kept)]))
            start += len(kept)
        return out

    @torch.no_grad()
    def align_many(self, inputs: Sequence[str], contexts: Sequence[str]) -> list[Alignment]:
        """Words of each cleaned input and their P(aligned) = softmax(logits)[:, 0]."""
        self.model.eval()
        result: list[Alignment] = []
        for i in range(0, len(inputs), self.batch_size):
            pairs = [self.prepare(x, c) for x, c in zip(inputs[i:i + self.batch_size], contexts[i:i + self.batch_size])]
            xs = [x for x, _ in pairs]
            for x, (kept, logits) in zip(xs, self.word_logits(xs, [c for _, c in pairs])):
                words = x.split()
                result.append(Alignment([words[k] for k in kept], torch.softmax(logits, -1)[:, 0].tolist()))
        return result
