"""What every metric returns, and the checks of its inputs.

Public:
- Scores(per_example: list[float] | None, corpus: float): per-example values in input order (None
  for set-level metrics such as HA-BLEU, MSJ, TID, FBD, which have no per-example value) and the
  corpus-level value.
- ExampleError(index, field, problem): BadInput naming the 0-based example index and which of its
  texts is wrong; the MetricEval program maps the index to the line of the examples file.
- check_hypotheses(hyps) -> list[str]: refuses an empty or non-string hypothesis.
- check_references(refs, n) -> list[list[str]]: one non-empty list of non-empty strings per example
  (a bare string is taken as a list of one).
- check_sources(sources, n) -> list[str]: one non-empty string per example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..runtime.errors import BadInput


@dataclass(frozen=True)
class Scores:
    """A metric's values: per example (input order) where defined, and for the corpus."""

    per_example: Optional[list[float]]
    corpus: float


class ExampleError(BadInput):
    """An example whose text a metric cannot score: empty output, missing or empty reference."""

    def __init__(self, index: int, field: str, problem: str):
        self.index = index
        super().__init__(f"example {index} ({field})", problem,
                         f"give example {index} a non-empty `{field}`")


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def check_hypotheses(hyps: Sequence[Any], field: str = "output") -> list[str]:
    """The hypotheses as strings; an empty one is an error naming its index (an empty text has no
    n-grams, and most metrics would silently give it 0 or divide by zero)."""
    for i, h in enumerate(hyps):
        if not _is_text(h):
            raise ExampleError(i, field, "the generated text is empty" if isinstance(h, str) or h is None
                               else f"the generated text is a {type(h).__name__}, not a string")
    return list(hyps)


def check_sources(sources: Optional[Sequence[Any]], n: int, field: str = "source") -> list[str]:
    """One non-empty source text per example."""
    if sources is None:
        raise ExampleError(0, field, "this metric needs the source text and none was given")
    if len(sources) != n:
        raise ExampleError(min(len(sources), n), field, f"{len(sources)} sources for {n} outputs")
    for i, s in enumerate(sources):
        if not _is_text(s):
            raise ExampleError(i, field, "the source text is missing or empty")
    return list(sources)


def check_references(refs: Optional[Sequence[Any]], n: int, field: str = "references") -> list[list[str]]:
    """One non-empty list of non-empty reference strings per example (a string is a list of one)."""
    if refs is None:
        raise ExampleError(0, field, "this metric needs references and none were given")
    if len(refs) != n:
        raise ExampleError(min(len(refs), n), field, f"{len(refs)} reference lists for {n} outputs")
    out: list[list[str]] = []
    for i, r in enumerate(refs):
        rs = [r] if isinstance(r, str) else r
        if not isinstance(rs, (list, tuple)) or not rs or not all(_is_text(x) for x in rs):
            raise ExampleError(i, field, "the references are missing or one of them is empty")
        out.append(list(rs))
    return out
