"""From the metric names of a MetricEval spec to the metrics library's functions.

The library (glassbox_workloads.metrics) holds the one implementation of every formula; this module
only says, per spec name, which function with which arguments, what the examples must carry, which
models it needs, whether it has a per-example value, and how the corpus value of a chunked run is
put together again (`corpus`):

- "mean": the library's corpus value is the mean of the per-example values (ROUGE, CTC, METEOR...);
- "recompute": it is not (corpus BLEU, NIST): computed once more over all examples at the end;
- "set": a set-level metric (Dist, Entropy, HA-BLEU, MSJ, TID, FBD): computed over all examples at
  the end, no per-example value.

tests/unit/metriceval/test_registry.py checks each "mean" entry against the library's own corpus value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from glassbox_api.kinds.metriceval import CTC_TASK, MetricEvalSpec

from ..metrics.base import Scores
from ..runtime.errors import BadInput
from .examples import Examples


@dataclass(frozen=True)
class MetricDef:
    """What one spec metric name means."""

    name: str
    compute: Callable[[Examples, "Env"], Scores]
    needs: frozenset[str] = frozenset()
    """Example texts besides the output: source, references, knowledge."""
    models: frozenset[str] = frozenset()
    """Models it loads: aligner, model (the evaluated LM), bertscore."""
    corpus: str = "mean"
    """How the corpus value comes back after chunked scoring: mean, recompute or set."""
    lib: tuple[str, str] = ("standard", "rouge")
    """(module of glassbox_workloads.metrics, function) it calls: checked before anything runs."""

    @property
    def per_example(self) -> bool:
        return self.corpus != "set"


@dataclass
class Env:
    """What a metric function may use besides the examples: the spec, and models loaded on demand."""

    spec: MetricEvalSpec
    load: Callable[[str], Any] = lambda what: None
    """load("aligner:doc_to_summ"), load("model"), load("bertscore"): a model, loaded once (models.py)."""
    cache: dict[str, Any] = field(default_factory=dict)

    def words(self, texts: Sequence[str]) -> list[str]:
        """Texts as the word-counting metrics see them: spec.text's case and tokenisation, joined by
        single spaces (the library splits them on whitespace again)."""
        from ..metrics import text as T

        how = self.spec.text.tokenizer
        out = []
        for t in texts:
            t = t.lower() if self.spec.text.lowercase else t
            out.append(" ".join(T.tokenize(t, how)))
        return out

    def word_refs(self, refs: Sequence[Sequence[str]]) -> list[list[str]]:
        return [self.words(r) for r in refs]


# ---- the standard metrics ------------------------------------------------------------------------


def _rouge(variant: str) -> Callable[[Examples, Env], Scores]:
    def fn(ex: Examples, env: Env) -> Scores:
        from ..metrics import standard

        return standard.rouge(ex.outputs, ex.references, variant=variant, use_stemmer=env.spec.rouge.stemming)
    return fn


def _bleu(n: int) -> Callable[[Examples, Env], Scores]:
    def fn(ex: Examples, env: Env) -> Scores:
        from ..metrics import standard

        hyps, refs = env.words(ex.outputs), env.word_refs(ex.references or [])
        if env.spec.bleu.variant == "sentence-average":
            return standard.nltk_sentence_bleu(hyps, refs, n=n)
        return standard.corpus_bleu(hyps, refs, n=n, tokenize="none")
    return fn


def _nist(n: int) -> Callable[[Examples, Env], Scores]:
    def fn(ex: Examples, env: Env) -> Scores:
        from ..metrics import standard

        return standard.nist(env.words(ex.outputs), env.word_refs(ex.references or []), n=n)
    return fn


def _meteor(ex: Examples, env: Env) -> Scores:
    from ..metrics import standard

    return standard.meteor(env.words(ex.outputs), env.word_refs(ex.references or []))


def _diversity(kind: str, n: int) -> Callable[[Examples, Env], Scores]:
    def fn(ex: Examples, env: Env) -> Scores:
        from ..metrics import diversity

        return getattr(diversity, kind)(env.words(ex.outputs), n)
    return fn


def _corpus(kind: str, *args: Any) -> Callable[[Examples, Env], Scores]:
    """Progressive generation's set-level metrics (metrics.corpus): outputs against all references."""
    def fn(ex: Examples, env: Env) -> Scores:
        from ..metrics import corpus

        refs = [r for rs in (ex.references or []) for r in rs]  # one pooled set of references
        if kind == "fbd":
            model, tokenizer = env.load("bertscore")
            return corpus.fbd(ex.outputs, refs, model, tokenizer, part=args[0], device=str(model.device))
        return getattr(corpus, kind)(ex.outputs, refs, *args)
    return fn


def _bertscore(ex: Examples, env: Env) -> Scores:
    from ..metrics import bertscore

    b = env.spec.bertscore
    assert b is not None
    model, tokenizer = env.load("bertscore")
    return bertscore.bertscore(ex.outputs, ex.references, model=model, tokenizer=tokenizer, layer=b.layer,
                               baseline=b.baseline if b.rescale_with_baseline else None)


def _perplexity(ex: Examples, env: Env) -> Scores:
    from ..metrics import lm

    model, tokenizer = env.load("model")
    p = env.spec.perplexity
    kind = "seq2seq" if getattr(model.config, "is_encoder_decoder", False) else "causal"
    return lm.perplexity(model, tokenizer, ex.sources if p.given == "source" else None, ex.references, kind=kind,
                         device=str(model.device), max_length=p.max_length)


# ---- CTC -----------------------------------------------------------------------------------------


def ctc_defaults(spec: MetricEvalSpec) -> tuple[str, bool]:
    """(aggregation, remove_stopwords): the spec's, else CTC's defaults by task (sum and stop words
    removed for dialog, mean with stop words kept otherwise)."""
    dialog = spec.task == "dialog"
    how = spec.ctc.aggregation or ("sum" if dialog else "mean")
    rm = spec.ctc.remove_stopwords if spec.ctc.remove_stopwords is not None else dialog
    return how, rm


def _ctc(metric: str) -> Callable[[Examples, Env], Scores]:
    def fn(ex: Examples, env: Env) -> Scores:
        from ..metrics.ctc import scorers

        how, rm = ctc_defaults(env.spec)
        kw: dict[str, Any] = dict(how=how, remove_stopwords=rm)
        if metric == "consistency":
            return scorers.consistency(env.load("aligner:doc_to_summ"), ex.outputs, ex.sources, **kw)
        if metric == "relevance":
            return scorers.relevance(env.load("aligner:doc_to_summ"), env.load("aligner:summ_to_ref"),
                                     ex.outputs, ex.sources, ex.references, **kw)
        if metric == "preservation":
            c = env.spec.ctc
            return scorers.preservation(env.load("aligner:doc_to_summ"), ex.outputs, ex.sources,
                                        baseline=c.baseline if c.rescale_with_baseline else None, **kw)
        if metric == "groundedness":
            return scorers.groundedness(env.load("aligner:fact_to_response"), ex.outputs, ex.knowledge, **kw)
        return scorers.engagingness(env.load("aligner:fact_history_to_response"), ex.outputs, ex.knowledge,
                                    ex.sources, **kw)
    return fn


_CTC_NEEDS = {
    "consistency": {"source"},
    "relevance": {"source", "references"},
    "preservation": {"source"},
    "groundedness": {"knowledge"},
    "engagingness": {"knowledge", "source"},
}


def _table() -> dict[str, MetricDef]:
    refs, ctc = frozenset({"references"}), frozenset({"aligner"})
    defs: list[MetricDef] = [MetricDef(m, _ctc(m), frozenset(n), ctc, lib=("ctc.scorers", m)) for m, n in _CTC_NEEDS.items()]
    defs += [MetricDef(f"rouge-{v}", _rouge(lib), refs) for v, lib in
             (("1", "rouge1"), ("2", "rouge2"), ("l", "rougeL"), ("lsum", "rougeLsum"))]
    defs += [MetricDef(f"bleu-{n}", _bleu(n), refs, corpus="recompute", lib=("standard", "corpus_bleu")) for n in range(1, 5)]
    defs += [MetricDef(f"nist-{n}", _nist(n), refs, corpus="recompute", lib=("standard", "nist")) for n in range(1, 6)]
    defs += [MetricDef("meteor", _meteor, refs, lib=("standard", "meteor"))]
    defs += [MetricDef(f"{k}-{n}", _diversity(k, n), corpus="set", lib=("diversity", k))
             for k in ("dist", "entropy") for n in range(1, 5)]
    defs += [MetricDef(f"ha-bleu-{n}", _corpus("ha_bleu", n), refs, corpus="set", lib=("corpus", "ha_bleu")) for n in range(2, 6)]
    defs += [MetricDef(f"msj-{n}", _corpus("msj", n), refs, corpus="set", lib=("corpus", "msj")) for n in range(2, 6)]
    defs += [MetricDef("tid", _corpus("tid"), refs, corpus="set", lib=("corpus", "tid"))]
    defs += [MetricDef(f"fbd-{p}", _corpus("fbd", p), refs, frozenset({"bertscore"}), corpus="set", lib=("corpus", "fbd"))
             for p in "smd"]
    defs += [MetricDef("bertscore", _bertscore, refs, frozenset({"bertscore"}), lib=("bertscore", "bertscore"))]
    # Perplexity's corpus value is exp(mean per-example NLL): the geometric mean of the per-example
    # perplexities, which a chunked run cannot average arithmetically.
    defs += [MetricDef("perplexity", _perplexity, frozenset({"references", "source"}), frozenset({"model"}),
                       corpus="geomean", lib=("lm", "perplexity"))]
    return {d.name: d for d in defs}


def available(d: MetricDef) -> bool:
    """The metrics library of this image has the function the metric calls."""
    import importlib

    module, fn = d.lib
    try:
        return hasattr(importlib.import_module(f"glassbox_workloads.metrics.{module}"), fn)
    except ImportError:
        return False


METRICS: dict[str, MetricDef] = _table()


def sentence_bleu_mean(name: str) -> bool:
    """bleu-n under the sentence-average variant: its corpus value is the mean of the per-example ones."""
    return re.fullmatch(r"bleu-\d", name) is not None


def resolve(spec: MetricEvalSpec) -> list[MetricDef]:
    """The spec's metrics, in spec order; a name this image cannot compute, or a CTC metric of another
    task, is BadInput naming spec.metrics[i]."""
    out = []
    for i, name in enumerate(spec.metrics):
        d = METRICS.get(name)
        if d is None:
            raise BadInput(f"spec.metrics[{i}]", f"unknown metric {name!r} for this workload image",
                           f"use one of {', '.join(sorted(METRICS))}")
        if not available(d):
            raise BadInput(f"spec.metrics[{i}]", f"{name} is not available in this workload image "
                           f"(glassbox_workloads.metrics.{d.lib[0]} has no {d.lib[1]})",
                           "use an image whose metrics library has it, or drop the metric")
        task = CTC_TASK.get(name)
        if task is not None and task != spec.task:
            raise BadInput(f"spec.metrics[{i}]", f"{name} is a {task} metric, and spec.task is {spec.task}",
                           f"set task: {task}, or drop {name}")
        if name == "perplexity" and spec.perplexity.given == "nothing":
            d = MetricDef(d.name, d.compute, frozenset({"references"}), d.models, d.corpus, d.lib)
        if sentence_bleu_mean(name) and spec.bleu.variant == "sentence-average":
            d = MetricDef(d.name, d.compute, d.needs, d.models, "mean", d.lib)
        out.append(d)
    return out


def needs(defs: Sequence[MetricDef]) -> set[str]:
    """Every example text the metrics need."""
    return set().union(*(d.needs for d in defs)) if defs else set()


def corpus_value(d: MetricDef, per_example: list[float]) -> Optional[float]:
    """The corpus value from the per-example ones, where the metric allows it (None: recompute)."""
    import math

    if d.corpus == "mean":
        return sum(per_example) / len(per_example) if per_example else 0.0
    if d.corpus == "geomean":
        return math.exp(sum(math.log(v) for v in per_example) / len(per_example)) if per_example else None
    return None
