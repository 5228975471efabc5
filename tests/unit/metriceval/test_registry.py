"""The registry from spec metric names to the metrics library: every name of the API resolves, a
name this image cannot compute or a CTC metric of another task is refused naming spec.metrics[i], and
the corpus value a chunked run puts together from per-example values is the library's own."""

from __future__ import annotations

import typing

import pytest

from glassbox_api.kinds.metriceval import CTC_TASK, SET_LEVEL_METRICS, Metric, MetricEvalSpec
from glassbox_workloads.metrics import diversity, standard
from glassbox_workloads.metriceval import registry
from glassbox_workloads.metriceval.examples import Examples
from glassbox_workloads.runtime.errors import BadInput

HYPS = ["the cat sat on the mat", "a dog ran in the park today", "rain fell over the old town all night"]
REFS = [["the cat lay on the mat"], ["a dog ran through the park", "dogs run in parks"], ["it rained all night in the old town"]]


def spec(**kw) -> MetricEvalSpec:
    base = {"task": "generation", "metrics": ["rouge-l"], "data": {"uri": "x.jsonl"}}
    return MetricEvalSpec.model_validate({**base, **kw})


def examples() -> Examples:
    return Examples(ids=["a", "b", "c"], outputs=list(HYPS), where=["line 1", "line 2", "line 3"],
                    sources=["s1", "s2", "s3"], references=[list(r) for r in REFS])


def test_every_metric_name_of_the_api_has_a_registry_entry() -> None:
    names = set(typing.get_args(Metric))
    assert names == set(registry.METRICS)
    assert {d.name for d in registry.METRICS.values() if not d.per_example} == set(SET_LEVEL_METRICS)


def test_an_unknown_metric_is_bad_input_naming_its_index() -> None:
    s = MetricEvalSpec.model_construct(**{**spec().__dict__, "metrics": ["rouge-l", "bleurt"]})
    with pytest.raises(BadInput) as err:
        registry.resolve(s)
    assert err.value.field == "spec.metrics[1]" and "bleurt" in str(err.value)


@pytest.mark.parametrize("metric", sorted(CTC_TASK))
def test_a_ctc_metric_of_another_task_is_bad_input_even_past_the_api(metric: str) -> None:
    other = "generation"
    s = MetricEvalSpec.model_construct(**{**spec().__dict__, "task": other, "metrics": ["rouge-1", metric]})
    with pytest.raises(BadInput) as err:
        registry.resolve(s)
    assert err.value.field == "spec.metrics[1]" and CTC_TASK[metric] in str(err.value)


def test_ctc_aggregation_defaults_by_task_and_the_spec_wins() -> None:
    assert registry.ctc_defaults(spec(task="dialog")) == ("sum", True)
    assert registry.ctc_defaults(spec(task="summarization")) == ("mean", False)
    assert registry.ctc_defaults(spec(task="dialog", ctc={"aggregation": "mean", "removeStopwords": False})) == ("mean", False)


@pytest.mark.parametrize("name, lib", [
    ("rouge-1", lambda h, r, s: standard.rouge(h, r, variant="rouge1")),
    ("rouge-l", lambda h, r, s: standard.rouge(h, r, variant="rougeL")),
    ("meteor", lambda h, r, s: standard.meteor(h, r)),
])
def test_mean_corpus_values_equal_the_librarys_own(name: str, lib) -> None:
    s = spec(metrics=[name])
    (d,) = registry.resolve(s)
    assert d.corpus == "mean"
    got = d.compute(examples(), registry.Env(s))
    assert registry.corpus_value(d, got.per_example) == pytest.approx(lib(HYPS, REFS, s).corpus, abs=1e-9)


def test_bleu_variants_corpus_recomputed_sentence_average_is_a_mean() -> None:
    s = spec(metrics=["bleu-4"])
    (d,) = registry.resolve(s)
    assert d.corpus == "recompute" and registry.corpus_value(d, [1.0]) is None
    assert d.compute(examples(), registry.Env(s)).corpus == pytest.approx(
        standard.corpus_bleu(HYPS, REFS, n=4, tokenize="none").corpus, abs=1e-9)
    s = spec(metrics=["bleu-2"], bleu={"variant": "sentence-average"})
    (d,) = registry.resolve(s)
    got = d.compute(examples(), registry.Env(s))
    assert d.corpus == "mean"
    assert registry.corpus_value(d, got.per_example) == pytest.approx(standard.nltk_sentence_bleu(HYPS, REFS, n=2).corpus, abs=1e-9)


def test_set_level_metrics_have_no_per_example_value() -> None:
    s = spec(metrics=["dist-2", "entropy-1"])
    for d in registry.resolve(s):
        assert not d.per_example
        got = d.compute(examples(), registry.Env(s))
        lib = getattr(diversity, d.name.split("-")[0])(HYPS, int(d.name[-1]))
        assert got.per_example is None and got.corpus == pytest.approx(lib.corpus, abs=1e-12)


def test_text_settings_lowercase_and_nltk_tokens_reach_the_word_counting_metrics() -> None:
    env = registry.Env(spec(text={"tokenizer": "nltk", "lowercase": True}))
    assert env.words(["The cat, sat."]) == ["the cat , sat ."]
    assert registry.Env(spec()).words(["The  cat,"]) == ["The cat,"]


def test_geometric_mean_for_perplexity_and_what_each_metric_needs(fake_lm) -> None:
    (d,) = registry.resolve(spec(metrics=["perplexity"], model={"uri": "m/"}))
    assert d.corpus == "geomean" and d.models == {"model"} and d.needs == {"references", "source"}
    assert registry.corpus_value(d, [2.0, 8.0]) == pytest.approx(4.0)
    (d,) = registry.resolve(spec(metrics=["perplexity"], model={"uri": "m/"}, perplexity={"given": "nothing"}))
    assert d.needs == {"references"}
    defs = registry.resolve(spec(task="dialog", metrics=["engagingness", "bleu-1"],
                                 aligner={"model": {"uri": "m/"}, "layer": 1}))
    assert registry.needs(defs) == {"knowledge", "source", "references"}


def test_a_metric_whose_library_function_is_missing_is_refused_before_anything_runs(monkeypatch) -> None:
    import sys
    import types

    monkeypatch.setitem(sys.modules, "glassbox_workloads.metrics.lm", types.SimpleNamespace())
    with pytest.raises(BadInput) as err:
        registry.resolve(spec(metrics=["rouge-l", "perplexity"], model={"uri": "m/"}))
    assert err.value.field == "spec.metrics[1]" and "not available" in str(err.value)


def test_perplexity_corpus_from_chunks_equals_the_librarys_own(tmp_path) -> None:
    """The geometric mean of per-example perplexities is lm.perplexity's corpus value (exp of the mean
    NLL), so a chunked run gives the library's number."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from glassbox_workloads.metrics import lm
    from glassbox_workloads.runtime import hfmodels

    tok = hfmodels.train_tokenizer(HYPS + [r for rs in REFS for r in rs], "gpt2", 300)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=64)).eval()
    s = spec(metrics=["perplexity"], model={"uri": "m/"})
    (d,) = registry.resolve(s)
    ex = examples()
    got = d.compute(ex, registry.Env(s, load=lambda what: (model, tok)))
    lib = lm.perplexity(model, tok, ex.sources, ex.references)
    assert got.per_example == pytest.approx(lib.per_example, abs=1e-9)
    assert registry.corpus_value(d, got.per_example) == pytest.approx(lib.corpus, rel=1e-9)
    first, rest = d.compute(ex.slice(0, 1), registry.Env(s, load=lambda w: (model, tok))), \
        d.compute(ex.slice(1, 3), registry.Env(s, load=lambda w: (model, tok)))
    assert registry.corpus_value(d, first.per_example + rest.per_example) == pytest.approx(lib.corpus, rel=1e-9)
