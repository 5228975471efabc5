"""The examples a MetricEval scores: read from spec.data, checked field by field, with their lines.

Every example keeps the line (jsonl) or array position (json) it came from, so bad input names
the place a person fixes: `spec.data: line 3 of summaries.jsonl: field "summary" is empty`. Which
fields an example must carry depends on the metrics (metriceval.registry says what each needs).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.common import DatasetRef
from glassbox_api.kinds.metriceval import EvalFields

from ..runtime.datasets import read_texts
from ..runtime.errors import BadInput

DATASET_FIX = ("point spec.data.uri at examples that exist where the workload runs: a file in its filesystem "
               "(a mounted volume in a pod), file://PATH or s3://BUCKET/KEY")

NEEDS_FIELD = {"output": "output", "references": "references", "source": "source", "knowledge": "knowledge"}


@dataclass(frozen=True)
class Row:
    """One example as read: its place in the file, and the object."""

    where: str
    """`line 3 of summaries.jsonl` (or `item 3 of x.json`)."""
    data: dict[str, Any]


@dataclass
class Examples:
    """The texts of every example, in input order, plus ids and human scores."""

    ids: list[str]
    outputs: list[str]
    where: list[str]
    """Where each example came from (for messages)."""
    sources: Optional[list[str]] = None
    references: Optional[list[list[str]]] = None
    knowledge: Optional[list[str]] = None
    human: dict[str, list[Optional[float]]] = field(default_factory=dict)
    """Human score per aspect (`human` for a bare number), None where an example has none."""

    def __len__(self) -> int:
        return len(self.outputs)

    def slice(self, start: int, end: int) -> "Examples":
        """Examples start..end-1 (a chunk)."""
        cut = lambda xs: None if xs is None else xs[start:end]  # noqa: E731
        return Examples(self.ids[start:end], self.outputs[start:end], self.where[start:end],
                        cut(self.sources), cut(self.references), cut(self.knowledge),
                        {k: v[start:end] for k, v in self.human.items()})


def _blobs(ref: DatasetRef, base_dir: Optional[Path]) -> list[tuple[str, str]]:
    """(file name, text) of every file the DatasetRef names."""
    return read_texts(ref, field="spec.data", fix=DATASET_FIX, base_dir=base_dir)


def read_rows(ref: DatasetRef, base_dir: Optional[Path] = None) -> list[Row]:
    """Every example object with its place; a line that is not a JSON object is BadInput."""
    if ref.format == "text":
        raise BadInput("spec.data.format", "MetricEval scores JSON examples, not plain text",
                       "use format: jsonl (one object per line) or json (one array of objects)")
    rows: list[Row] = []
    for name, text in _blobs(ref, base_dir):
        if ref.format == "jsonl":
            items = [(f"line {i} of {name}", line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
            for where, line in items:
                try:
                    rows.append(Row(where, json.loads(line)))
                except ValueError as exc:
                    raise BadInput("spec.data", f"{where} is not JSON: {exc}", "write one JSON object per line") from exc
        else:
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise BadInput("spec.data", f"{name} is not JSON: {exc}", "write one JSON array of objects") from exc
            rows += [Row(f"item {i} of {name}", d) for i, d in enumerate(data if isinstance(data, list) else [data], 1)]
    for r in rows:
        if not isinstance(r.data, dict):
            raise BadInput("spec.data", f"{r.where} is a {type(r.data).__name__}, not a JSON object",
                           "write one object per example, with the fields spec.fields names")
    if not rows:
        raise BadInput("spec.data.uri", f"dataset {ref.uri} holds no examples", DATASET_FIX)
    if ref.limit and ref.limit < len(rows):
        # The documented deterministic draw; the drawn examples keep their input order.
        keep = sorted(random.Random(0).sample(range(len(rows)), ref.limit))
        rows = [rows[i] for i in keep]
    return rows


def _text(row: Row, name: str, role: str) -> str:
    if name not in row.data:
        raise BadInput("spec.data", f"{row.where} has no field {name!r} ({role})",
                       f"add {name!r} to every example, or name the right field in spec.fields")
    value = row.data[name]
    if isinstance(value, list) and role == "knowledge":
        value = "\n".join(str(v) for v in value)
    if not isinstance(value, str):
        raise BadInput("spec.data", f"{row.where}: field {name!r} ({role}) is a {type(value).__name__}, not text",
                       f"give {name!r} a string")
    if not value.strip():
        raise BadInput("spec.data", f"{row.where}: field {name!r} ({role}) is empty",
                       f"give every example a non-empty {name!r}, or leave the example out")
    return value


def _references(row: Row, name: str) -> list[str]:
    if name not in row.data:
        raise BadInput("spec.data", f"{row.where} has no field {name!r} (references)",
                       f"add {name!r} (a list of reference texts) to every example, or set spec.fields.references")
    value = row.data[name]
    refs = [value] if isinstance(value, str) else value
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r.strip() for r in refs):
        raise BadInput("spec.data", f"{row.where}: field {name!r} (references) must be a non-empty text or a "
                       "list of non-empty texts", f"give every example at least one reference in {name!r}")
    return refs


def _human(rows: list[Row], name: str) -> dict[str, list[Optional[float]]]:
    """Human scores per aspect; a value that is neither a number nor an object of numbers is BadInput."""
    out: dict[str, list[Optional[float]]] = {}
    for i, row in enumerate(rows):
        value = row.data.get(name)
        if value is None:
            continue
        aspects = value if isinstance(value, dict) else {"human": value}
        for aspect, v in aspects.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise BadInput("spec.data", f"{row.where}: human score {name}.{aspect} is {v!r}, not a number",
                               f"make {name!r} a number, or an object of numbers per aspect")
            out.setdefault(str(aspect), [None] * len(rows))[i] = float(v)
    return out


def load(ref: DatasetRef, fields: EvalFields, needs: set[str], base_dir: Optional[Path] = None) -> Examples:
    """The examples, with the texts `needs` names ("source", "references", "knowledge"); the output
    text always. Ids come from fields.id, else `line-N`/`item-N` from the position."""
    rows = read_rows(ref, base_dir)
    ids = [str(r.data[fields.id]) if r.data.get(fields.id) is not None else r.where.split(" of ")[0].replace(" ", "-")
           for r in rows]
    ex = Examples(ids=ids, outputs=[_text(r, fields.output, "output") for r in rows], where=[r.where for r in rows])
    if "source" in needs:
        ex.sources = [_text(r, fields.source, "source") for r in rows]
    if "references" in needs:
        ex.references = [_references(r, fields.references) for r in rows]
    if "knowledge" in needs:
        ex.knowledge = [_text(r, fields.knowledge, "knowledge") for r in rows]
    ex.human = _human(rows, fields.human)
    return ex
