"""Consultations (CovidDialog's `download_dialogs.py`): parsing, filtering and the seeded split.

A consultation is a description and alternating patient/doctor utterances. They come from JSON
lines (`{"description", "utterances": ["Patient: ...", "Doctor: ..."]}`, or utterances as
`{"speaker", "text"}` objects) or from CovidDialog's raw text layout (`id=...`, the URL,
`Description`, the text, `Dialogue`, then `Patient:` / `Doctor:` markers each followed by the
utterance). Every text is cleaned as the original's `cleantext.clean(lowercase, extra_spaces)`:
lowercased, whitespace runs collapsed. A dialogue with two consecutive turns by one speaker is
dropped (the original does the same: such a dialogue has no clean patient -> doctor alternation).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from glassbox_api.kinds.common import DatasetRef

from ..metrics.text import collapse_spaces
from ..runtime.datasets import read_texts
from ..runtime.errors import BadInput

PATIENT, DOCTOR = "patient", "doctor"
_MARKER = re.compile(r"(?im)^\s*(patient|doctor)\s*:")
DATA_FIX = ("give consultations as JSON lines ({\"description\", \"utterances\": [\"Patient: ...\", \"Doctor: ...\"]}) "
            "or CovidDialog's text layout (id=, Description, Dialogue, Patient:/Doctor: turns) with format: text")


@dataclass(frozen=True)
class Turn:
    speaker: str
    """patient or doctor."""
    text: str


@dataclass(frozen=True)
class Dialogue:
    description: str
    turns: tuple[Turn, ...]


def clean(text: str) -> str:
    """cleantext.clean(lowercase=True, extra_spaces=True)."""
    return collapse_spaces(text.lower())


def alternates(turns: Sequence[Turn]) -> bool:
    """No speaker has two turns in a row."""
    return all(a.speaker != b.speaker for a, b in zip(turns, turns[1:]))


def _turns_of(text: str) -> list[Turn]:
    """Turns from `Patient:` / `Doctor:` markers at the start of lines (the marker's own line or inline)."""
    marks = list(_MARKER.finditer(text))
    out = []
    for m, nxt in zip(marks, marks[1:] + [None]):
        body = text[m.end():nxt.start() if nxt else len(text)]
        out.append(Turn(m.group(1).lower(), clean(body)))
    return out


def parse_raw(text: str) -> list[Dialogue]:
    """Every consultation of CovidDialog's raw text layout, kept or not (filter with keep())."""
    out = []
    for block in text.split("id=")[1:]:
        start = block.find("Description")
        end = block.find("\nDialogue")
        if start < 0 or end < 0:
            continue
        desc = clean(block[start + len("Description"):end])
        out.append(Dialogue(desc, tuple(_turns_of(block[end + len("\nDialogue"):]))))
    return out


def _record_turn(u: Any, where: str) -> Turn:
    if isinstance(u, dict):
        speaker, body = str(u.get("speaker", "")).lower(), u.get("text")
    elif isinstance(u, str):
        m = _MARKER.match(u)
        speaker, body = (m.group(1).lower(), u[m.end():]) if m else ("", u)
    else:
        speaker, body = "", None
    if speaker not in (PATIENT, DOCTOR) or not isinstance(body, str):
        raise BadInput(where, f"is not a patient or doctor utterance: {str(u)[:60]!r}", DATA_FIX)
    return Turn(speaker, clean(body))


def from_records(records: Sequence[dict[str, Any]], field: str) -> list[Dialogue]:
    """Dialogues of JSON records (kept or not)."""
    out = []
    for i, r in enumerate(records):
        us = r.get("utterances") if isinstance(r, dict) else None
        if not isinstance(us, list):
            raise BadInput(f"{field} record {i}", "has no `utterances` list", DATA_FIX)
        turns = tuple(_record_turn(u, f"{field} record {i} utterance {j}") for j, u in enumerate(us))
        out.append(Dialogue(clean(str(r.get("description") or "")), turns))
    return out


def keep(dialogues: Sequence[Dialogue]) -> list[Dialogue]:
    """The dialogues the original keeps: at least one turn each, and strictly alternating."""
    return [d for d in dialogues if d.turns and all(t.text for t in d.turns) and alternates(d.turns)]


def split(dialogues: Sequence[Dialogue], seed: int) -> tuple[list[Dialogue], list[Dialogue], list[Dialogue]]:
    """random.seed(seed); shuffle; train = first int(0.8n), dev = next int(0.1n), test = the rest."""
    order = list(dialogues)
    random.Random(seed).shuffle(order)
    n = len(order)
    a, b = int(0.8 * n), int(0.8 * n) + int(0.1 * n)
    return order[:a], order[a:b], order[b:]


def _text_blobs(ref: DatasetRef, field: str, base_dir: Optional[Path]) -> list[str]:
    return [text for _, text in read_texts(ref, field=field, fix=DATA_FIX, base_dir=base_dir)]


def load(ref: DatasetRef, field: str, base_dir: Optional[Path] = None) -> list[Dialogue]:
    """The kept dialogues of a DatasetRef (jsonl/json records, or CovidDialog text with format: text)."""
    if ref.format == "text":
        found = [d for blob in _text_blobs(ref, field, base_dir) for d in parse_raw(blob)]
    else:
        from ..scorer.data import read_records

        found = from_records(read_records(ref, field, base_dir), field)
    kept = keep(found)
    if ref.limit:
        kept = kept[:ref.limit]
    if len(kept) < 1:
        raise BadInput(f"{field}.uri", f"{ref.uri} holds no usable consultation ({len(found)} read, none alternating "
                       "patient and doctor turns)", DATA_FIX)
    return kept
