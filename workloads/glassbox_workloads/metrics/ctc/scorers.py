"""CTC's five metrics over aligners (ctc_score/*_scorer.py), per example and for the corpus (mean).

Notation: align(a -> b) aligns the tokens of a against the context b. y is the output (summary,
transferred sentence, response), x the source (document, input sentence), r a reference.

| metric        | per example                                   | default aggregation       |
|---------------|-----------------------------------------------|---------------------------|
| consistency   | align(y -> x)                                 | mean, stop words kept     |
| relevance     | align(y -> x) * mean_r align(r -> y)          | mean, stop words kept     |
| preservation  | 2ab/(a+b), a = align(x -> y), b = align(y -> x); 0 when a+b = 0 | mean, kept |
| groundedness  | align(y -> knowledge)                         | sum, stop words removed   |
| engagingness  | align(y -> knowledge + "\\n\\n\\n" + history)   | sum, stop words removed   |

Relevance takes two aligners (CTC's doc_to_summ for y -> x and summ_to_ref for r -> y; with E they
may be the same object). The dialog metrics use one aligner each (fact_to_response and
fact_history_to_response). Knowledge and history may be strings or lists of lines (joined by "\\n").

Public: preservation_value(a, b), relevance_value(y_x, r_y), rescale(value, baseline), consistency,
relevance, preservation, groundedness, engagingness (each -> base.Scores).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..base import Scores, check_hypotheses, check_references, check_sources
from .aligner import Aggregation, Aligner


def preservation_value(a: float, b: float) -> float:
    """Harmonic mean of the two directions, 2ab/(a+b); 0 when a + b = 0."""
    return 0.0 if a + b == 0 else 2.0 * a * b / (a + b)


def relevance_value(y_x: float, r_y: Sequence[float]) -> float:
    """align(y -> x) times the mean over references of align(r -> y)."""
    return y_x * (sum(r_y) / len(r_y))


def rescale(value: float, baseline: float) -> float:
    """BERTScore's baseline rescaling (s - b0) / (1 - b0)."""
    return (value - baseline) / (1.0 - baseline)


def _mean_scores(per: list[float]) -> Scores:
    return Scores(per, float(sum(per) / len(per)) if per else 0.0)


def _lines(value: Any) -> Any:
    return "\n".join(value) if isinstance(value, (list, tuple)) else value


def consistency(aligner: Aligner, outputs: Sequence[Any], sources: Sequence[Any], how: Aggregation = "mean",
                remove_stopwords: bool = False) -> Scores:
    """Consistency(y, x) = align(y -> x)."""
    y = check_hypotheses(outputs)
    x = check_sources(sources, len(y))
    return _mean_scores(aligner.score_many(y, x, how, remove_stopwords))


def relevance(doc_to_summ: Aligner, summ_to_ref: Aligner, outputs: Sequence[Any], sources: Sequence[Any],
              references: Sequence[Any], how: Aggregation = "mean", remove_stopwords: bool = False) -> Scores:
    """Relevance = align(y -> x) * mean_r align(r -> y)."""
    y = check_hypotheses(outputs)
    x = check_sources(sources, len(y))
    refs = check_references(references, len(y))
    y_x = doc_to_summ.score_many(y, x, how, remove_stopwords)
    flat_r = [r for rs in refs for r in rs]
    flat_y = [yi for yi, rs in zip(y, refs) for _ in rs]
    r_y = summ_to_ref.score_many(flat_r, flat_y, how, remove_stopwords)
    per, k = [], 0
    for a, rs in zip(y_x, refs):
        per.append(relevance_value(a, r_y[k:k + len(rs)]))
        k += len(rs)
    return _mean_scores(per)


def preservation(aligner: Aligner, outputs: Sequence[Any], sources: Sequence[Any], how: Aggregation = "mean",
                 remove_stopwords: bool = False, baseline: Optional[float] = None) -> Scores:
    """Preservation = 2ab/(a+b) of a = align(x -> y) and b = align(y -> x); rescaled with a
    BERTScore baseline F when one is given (E aligners)."""
    y = check_hypotheses(outputs)
    x = check_sources(sources, len(y))
    a = aligner.score_many(x, y, how, remove_stopwords)
    b = aligner.score_many(y, x, how, remove_stopwords)
    per = [preservation_value(ai, bi) for ai, bi in zip(a, b)]
    if baseline is not None:
        per = [rescale(v, baseline) for v in per]
    return _mean_scores(per)


def groundedness(aligner: Aligner, outputs: Sequence[Any], knowledge: Sequence[Any], how: Aggregation = "sum",
                 remove_stopwords: bool = True) -> Scores:
    """Groundedness = align(y -> knowledge) (sum, stop words removed by default)."""
    y = check_hypotheses(outputs)
    k = check_sources([_lines(v) for v in knowledge], len(y), "knowledge")
    return _mean_scores(aligner.score_many(y, k, how, remove_stopwords))


def engagingness(aligner: Aligner, outputs: Sequence[Any], knowledge: Sequence[Any], histories: Sequence[Any],
                 how: Aggregation = "sum", remove_stopwords: bool = True) -> Scores:
    """Engagingness = align(y -> knowledge + "\\n\\n\\n" + history) (sum, stop words removed)."""
    y = check_hypotheses(outputs)
    k = check_sources([_lines(v) for v in knowledge], len(y), "knowledge")
    h = check_sources([_lines(v) for v in histories], len(y), "source")
    contexts = ["\n\n\n".join([ki.strip(), hi.strip()]) for ki, hi in zip(k, h)]
    return _mean_scores(aligner.score_many(y, contexts, how, remove_stopwords))
