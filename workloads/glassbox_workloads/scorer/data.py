"""Cappy's adaptation data: task examples in, labelled (instruction, response) pairs out.

`build_pairs` is `get_cappy_dataset` (tanyuqian/cappy, cappy_bigbench.py:15-72; SEEDS-DETAIL.md
section 1.1) step by step: positives, negatives drawn from the sorted set of all distinct references
(the example's own included, then skipped as a duplicate), LLM samples labelled with Rouge-L F of
the `rouge-score` library (stemmed, best over the references), one shuffle, then tile and truncate
to `size`. The seeded `random.Random` draws exactly what `random.seed(seed)` then the module-level
calls would.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from glassbox_api.kinds.common import DatasetRef

from ..runtime.datasets import read_texts
from ..runtime.errors import BadInput

DATASET_FIX = "point the uri at a JSON-lines file (or a folder of them) in the store or on local disk"


@dataclass(frozen=True)
class Example:
    """One task example: an instruction, its references and the LLM samples in generation order."""

    instruction: str
    references: tuple[str, ...]
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    """A training pair of the scorer: the label is 1 for a reference, 0 for a negative, Rouge-L F for a sample."""

    instruction: str
    response: str
    label: float


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(references: Sequence[str], prediction: str) -> float:
    """Rouge-L F of prediction, the best over the references (rouge-score's score_multi, stemmed)."""
    return float(_rouge().score_multi(targets=list(references), prediction=prediction)["rougeL"].fmeasure)


def _key(instruction: str, response: str) -> str:
    return f"{instruction}|||{response}"


def build_pairs(examples: Sequence[Example], size: int, seed: int = 11111) -> list[Pair]:
    """The adaptation pairs of `examples`: exactly `size` of them, a function of the seed only."""
    rng = random.Random(seed)
    flag_set: set[str] = set()
    tgt_set: set[str] = set()
    out: list[Pair] = []
    positives: list[Pair] = []
    for ex in examples:
        for ref in ex.references:
            positives.append(Pair(ex.instruction, ref, 1.0))
            flag_set.add(_key(ex.instruction, ref))
            tgt_set.add(ref)
    out += positives
    targets = sorted(tgt_set)
    for pos in positives:
        t = rng.choice(targets)
        if _key(pos.instruction, t) not in flag_set:
            out.append(Pair(pos.instruction, t, 0.0))
            flag_set.add(_key(pos.instruction, t))
    for ex in examples:
        for s in ex.samples:
            if _key(ex.instruction, s) in flag_set:
                continue  # a sample equal to a reference stays 1.0; a repeated sample is dropped
            out.append(Pair(ex.instruction, s, rouge_l(ex.references, s)))
            flag_set.add(_key(ex.instruction, s))
    if not out:
        return []
    rng.shuffle(out)
    return (out * (size // len(out) + 1))[:size]


# ---- reading task examples ----------------------------------------------------------------------


def read_records(ref: DatasetRef, field: str, base_dir: Optional[Path] = None) -> list[dict[str, Any]]:
    """The JSON records of a DatasetRef (jsonl or a json array; a folder or store prefix of them)."""
    uri = ref.uri
    blobs = [text for _, text in read_texts(ref, field=field, fix=DATASET_FIX, base_dir=base_dir)]
    out: list[dict[str, Any]] = []
    for text in blobs:
        try:
            if ref.format == "json":
                data = json.loads(text)
                out += data if isinstance(data, list) else [data]
            else:
                out += [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise BadInput(f"{field}.uri", f"{uri} is not valid {ref.format}: {exc}", DATASET_FIX) from exc
    if ref.limit:
        random.Random(0).shuffle(out)
        out = out[: ref.limit]
    return out


def _strings(value: Any) -> list[str]:
    """A string, a list of strings, or the authors' `{decoding: [{response}]}` shapes, flattened in order."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if "response" in value:
            return _strings(value["response"])
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    raise TypeError(f"expected text, a list or a mapping, got {type(value).__name__}")


def to_examples(records: Iterable[dict[str, Any]], field: str, *, instruction: str = "instruction",
                references: str = "references", samples: str = "samples") -> list[Example]:
    """Examples from records with the named fields; a record without them is BadInput naming it."""
    out: list[Example] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get(instruction), str):
            raise BadInput(field, f"example {i} has no text field {instruction!r}",
                           f"give every example an {instruction!r} string, or set instructionField")
        try:
            refs, samp = _strings(rec.get(references)), _strings(rec.get(samples))
        except TypeError as exc:
            raise BadInput(field, f"example {i}: {exc}", "references and samples are text or lists of text") from exc
        if not refs:
            raise BadInput(field, f"example {i} has no references in field {references!r}",
                           f"give every example a {references!r} list, or set referencesField")
        out.append(Example(rec[instruction], tuple(refs), tuple(samp)))
    if not out:
        raise BadInput(field, "the dataset has no examples", DATASET_FIX)
    return out
