"""Reference-based NLG metrics from maintained libraries: rouge-score, sacrebleu and NLTK.

Every function takes the hypotheses (one string per example) and the references (one list of
strings per example; a bare string counts as one reference) and returns base.Scores.

Public:
- rouge(hyps, refs, variant="rougeL", use_stemmer=True) -> Scores: rouge-score's F-measure per
  example, the max over that example's references (as Cappy labels and reports), corpus = mean.
  variant: rouge1, rouge2, rougeL, rougeLsum (sentences split with Punkt when a text has no
  newlines, since rouge-score's own splitting needs NLTK data).
- corpus_bleu(hyps, refs, n=4, tokenize="13a") -> Scores: sacrebleu's corpus BLEU-n (0-100, the
  mteval-style corpus number), per example sacrebleu's sentence BLEU with the same settings.
  tokenize="none" for text that is already tokenised.
- nltk_sentence_bleu(hyps, refs, n=4) -> Scores: the "NLTK sentence-average" BLEU variant DSTC and
  CovidDialog also computed: unsmoothed sentence_bleu with weights 1/n on whitespace tokens after
  collapse_spaces, averaged over examples (0-1; a different number from corpus BLEU).
- nist(hyps, refs, n=4) -> Scores: NLTK corpus_nist on whitespace tokens after collapse_spaces
  (mteval-v14c.pl is not packaged; NLTK's implementation follows it); per example sentence_nist.
- meteor(hyps, refs, lowercase=True) -> Scores: NLTK meteor_score with WordNet synonyms on
  whitespace tokens after collapse_spaces (lowercased, like the METEOR-1.5 jar's -norm), corpus =
  mean. WordNet comes from hack/assets.sh; without it MissingAsset says so.
- MissingAsset: RuntimeError for language data that the install step should have put in place.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any, Literal, Sequence

from .base import Scores, check_hypotheses, check_references
from .text import collapse_spaces, sent_tokenize

RougeVariant = Literal["rouge1", "rouge2", "rougeL", "rougeLsum"]


class MissingAsset(RuntimeError):
    """Language data a metric needs is not installed where the install step puts it."""


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _inputs(hyps: Sequence[Any], refs: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    h = check_hypotheses(hyps)
    return h, check_references(refs, len(h))


def _dstc_tokens(text: str, lowercase: bool = False) -> list[str]:
    text = collapse_spaces(text)
    return (text.lower() if lowercase else text).split()


def _lsum_lines(text: str) -> str:
    return text if "\n" in text else "\n".join(sent_tokenize(text))


@lru_cache(maxsize=8)
def _rouge_scorer(variant: str, use_stemmer: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([variant], use_stemmer=use_stemmer)


def rouge(hyps: Sequence[Any], refs: Sequence[Any], variant: RougeVariant = "rougeL",
          use_stemmer: bool = True) -> Scores:
    """rouge-score F per example (max over references), corpus = mean over examples."""
    if variant not in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        raise ValueError(f"unknown ROUGE variant {variant!r}")
    h, r = _inputs(hyps, refs)
    scorer = _rouge_scorer(variant, use_stemmer)
    prep = _lsum_lines if variant == "rougeLsum" else (lambda t: t)
    per = [scorer.score_multi([prep(x) for x in rs], prep(y))[variant].fmeasure for y, rs in zip(h, r)]
    return Scores([float(v) for v in per], _mean(per))


def _ref_streams(refs: list[list[str]]) -> list[list[str | None]]:
    # sacrebleu takes one stream per reference position; examples with fewer references get None.
    width = max(len(rs) for rs in refs)
    return [[rs[k] if k < len(rs) else None for rs in refs] for k in range(width)]


def corpus_bleu(hyps: Sequence[Any], refs: Sequence[Any], n: int = 4, tokenize: str = "13a") -> Scores:
    """sacrebleu corpus BLEU-n (0-100); per example sacrebleu sentence BLEU-n."""
    from sacrebleu.metrics import BLEU

    h, r = _inputs(hyps, refs)
    corpus = BLEU(max_ngram_order=n, tokenize=tokenize).corpus_score(h, _ref_streams(r)).score
    sent = BLEU(max_ngram_order=n, tokenize=tokenize, effective_order=True)
    per = [sent.sentence_score(y, rs).score for y, rs in zip(h, r)]
    return Scores([float(v) for v in per], float(corpus))


def nltk_sentence_bleu(hyps: Sequence[Any], refs: Sequence[Any], n: int = 4) -> Scores:
    """Unsmoothed NLTK sentence_bleu (weights 1/n) per example on DSTC tokens; corpus = mean."""
    from nltk.translate.bleu_score import sentence_bleu

    h, r = _inputs(hyps, refs)
    weights = tuple([1.0 / n] * n)
    with warnings.catch_warnings():
        # NLTK warns once per sentence without a matching n-gram; the value (0) is the definition.
        warnings.simplefilter("ignore")
        per = [float(sentence_bleu([_dstc_tokens(x) for x in rs], _dstc_tokens(y), weights=weights))
               for y, rs in zip(h, r)]
    return Scores(per, _mean(per))


def nist(hyps: Sequence[Any], refs: Sequence[Any], n: int = 4) -> Scores:
    """NLTK corpus NIST-n on DSTC tokens (not bounded by 1); per example sentence NIST-n."""
    from nltk.translate.nist_score import corpus_nist, sentence_nist

    h, r = _inputs(hyps, refs)
    ht = [_dstc_tokens(y) for y in h]
    rt = [[_dstc_tokens(x) for x in rs] for rs in r]
    per = [float(sentence_nist(rs, y, n=n)) for y, rs in zip(ht, rt)]
    return Scores(per, float(corpus_nist(rt, ht, n=n)))


def wordnet():
    """NLTK's WordNet reader, or MissingAsset naming the install step that provides it."""
    import nltk
    from nltk.corpus import wordnet as wn

    try:
        nltk.data.find("corpora/wordnet")
        wn.ensure_loaded()
    except LookupError as e:
        raise MissingAsset(
            "METEOR needs WordNet 3.0 and NLTK cannot find it: run `VENV=<your venv> bash hack/assets.sh` "
            "(installs Debian's wordnet-base and wordnet-sense-index into <venv>/nltk_data), "
            "or put the wordnet corpus in a folder on NLTK_DATA") from e
    return wn


def meteor(hyps: Sequence[Any], refs: Sequence[Any], lowercase: bool = True) -> Scores:
    """NLTK METEOR per example (WordNet synonyms, max over references), corpus = mean."""
    from nltk.translate.meteor_score import meteor_score

    h, r = _inputs(hyps, refs)
    wn = wordnet()
    per = [float(meteor_score([_dstc_tokens(x, lowercase) for x in rs], _dstc_tokens(y, lowercase), wordnet=wn))
           for y, rs in zip(h, r)]
    return Scores(per, _mean(per))
