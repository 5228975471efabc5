"""Per-model inputs (SEEDS-DETAIL 4.1): what the model reads and where its loss is.

- seq2seq (CovidDialog's BART): one pair per doctor turn; the source is the history so far as
  `patient: u0\\ndoctor: u1\\n...` lines (with `description: ...` first only when asked), **left**
  truncated so the latest turns survive; the target is the doctor turn, right truncated.
- causal-dialogue (DialoGPT): the whole consultation as one sequence, each utterance followed by
  eos; the loss is on the tokens of doctor utterances (their eos included) only, predicted from the
  token before (shift by one).
- the auxiliary masked-token loss (SSL-Reg): BERT's 80/10/10 corruption of a share of the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .data import DOCTOR, Dialogue, Turn

IGNORE = -100
"""Label of positions without loss (torch cross_entropy's ignore_index)."""


@dataclass(frozen=True)
class Pair:
    """One seq2seq example: the history as text and the doctor's reply."""

    source: str
    target: str


def history_text(turns: Sequence[Turn], description: Optional[str] = None) -> str:
    """`patient: u0\\ndoctor: u1\\n...` (every line ends with a newline), optionally after `description: ...`."""
    head = f"description: {description}\n" if description else ""
    return head + "".join(f"{t.speaker}: {t.text}\n" for t in turns)


def pairs(d: Dialogue, include_description: bool = False) -> list[Pair]:
    """One pair per doctor turn that has a history before it."""
    desc = d.description if include_description else None
    return [Pair(history_text(d.turns[:i], desc), t.text) for i, t in enumerate(d.turns)
            if t.speaker == DOCTOR and i > 0]


def last_doctor_pair(d: Dialogue, include_description: bool = False) -> Optional[Pair]:
    """DialoGPT's test example: the last doctor turn (an odd-length dialogue drops its last turn)."""
    ps = pairs(d, include_description)
    return ps[-1] if ps else None


def left_truncate(ids: Sequence[int], max_len: int) -> list[int]:
    """The last max_len ids (the latest turns matter most)."""
    return list(ids[-max_len:]) if max_len > 0 else []


def encode_source(tokenizer: Any, text: str, max_len: int) -> list[int]:
    """The source's ids with the tokenizer's special tokens, the text truncated from the left."""
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        return list(tokenizer(text, truncation=True, max_length=max_len)["input_ids"])
    finally:
        tokenizer.truncation_side = side


def encode_target(tokenizer: Any, text: str, max_len: int) -> list[int]:
    """The target's ids with special tokens, right truncated (the eos kept at the end)."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    return ids if len(ids) <= max_len else ids[:max_len - 1] + ids[-1:]


def causal_sequence(utterances: Sequence[list[int]], speakers: Sequence[str], eos: int,
                    max_len: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one dialogue: utterance + eos each; labels are the ids on doctor
    utterances (eos included), IGNORE elsewhere; cut to max_len tokens from the right."""
    ids: list[int] = []
    labels: list[int] = []
    for u, who in zip(utterances, speakers):
        piece = list(u) + [eos]
        ids += piece
        labels += piece if who == DOCTOR else [IGNORE] * len(piece)
    return ids[:max_len], labels[:max_len]


def causal_context(utterances: Sequence[list[int]], eos: int, max_len: int) -> list[int]:
    """What a causal model reads before it replies: the history, utterance + eos each, left truncated."""
    ids = [t for u in utterances for t in (*u, eos)]
    return left_truncate(ids, max_len)


def dialogue_ids(tokenizer: Any, d: Dialogue) -> tuple[list[list[int]], list[str]]:
    return [tokenizer(t.text, add_special_tokens=False)["input_ids"] for t in d.turns], [t.speaker for t in d.turns]


def mask_tokens(ids: Any, *, prob: float, mask_id: int, vocab_size: int, generator: Any,
                special: Optional[Any] = None) -> tuple[Any, Any]:
    """BERT's corruption: each token is chosen with `prob` (never a special or padding one); of the
    chosen 80 % become mask_id, 10 % a random token, 10 % stay. Returns (corrupted ids, labels:
    the original id at chosen positions, IGNORE elsewhere)."""
    import torch

    chosen = torch.rand(ids.shape, generator=generator) < prob
    if special is not None:
        chosen &= ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, generator=generator)
    out = ids.clone()
    out[chosen & (roll < 0.8)] = mask_id
    rand = chosen & (roll >= 0.8) & (roll < 0.9)
    out[rand] = torch.randint(vocab_size, ids.shape, generator=generator)[rand]
    return out, labels


