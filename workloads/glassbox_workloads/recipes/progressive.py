"""progressive (ProGen, `progressive-generation`): text generated in stages of growing vocabularies.

Stage k's text keeps, per paragraph, the scikit-learn analyzer tokens (lowercased, English stop
words removed, `\\b\\w\\w+\\b`) that are in V(rho_k): the most important words by mean TF-IDF over
the documents that contain them, added until they cover more than rho_k of all analyzer tokens.
Each stage model maps `cond [SEP] stage_{k-1}` to stage_k (the last stage is the original text);
during training the part after [SEP] is noised with words of the source stage's vocabulary.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Callable, Sequence

import numpy as np

SEP = " [SEP] "


def _vectorizer(min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(min_df=min_df, stop_words="english")


def analyzer() -> Callable[[str], list[str]]:
    """The tokens a stage text is made of (the vectorizer's analyzer, no vocabulary needed)."""
    return _vectorizer(1).build_analyzer()


def stage_vocab(texts: Sequence[str], rate: float, min_df: int = 5) -> list[str]:
    """V(rate): words by descending mean nonzero TF-IDF (ties by word), until coverage > rate.

    The word that crosses the threshold is included; if the words run out first, all are kept."""
    vec = _vectorizer(min_df)
    x = vec.fit_transform(texts).tocsc()
    names = vec.get_feature_names_out()
    counts = np.diff(x.indptr)
    importance = np.asarray(x.sum(axis=0)).ravel() / np.maximum(counts, 1)
    order = np.argsort(-importance, kind="stable")  # features are alphabetical: ties by word
    analyze = vec.build_analyzer()
    freq = Counter(tok for t in texts for tok in analyze(t))
    total = max(sum(freq.values()), 1)
    vocab, covered = [], 0
    for i in order:
        vocab.append(str(names[i]))
        covered += freq[names[i]]
        if covered / total > rate:
            break
    return vocab


def stage_text(text: str, vocab: set[str] | Sequence[str], analyze: Callable[[str], list[str]] | None = None) -> str:
    """Per paragraph (split on newlines), the analyzer tokens in vocab, in order; joined by newlines."""
    keep = vocab if isinstance(vocab, set) else set(vocab)
    analyze = analyze or analyzer()
    return "\n".join(" ".join(t for t in analyze(par) if t in keep) for par in text.split("\n"))


def stage_input(cond: str, prev: str) -> str:
    """The input of a later stage: the condition, the separator, the previous stage's text."""
    return f"{cond}{SEP}{prev}"


def add_noise(text: str, vocab: Sequence[str], rng: random.Random, prob: float = 0.1, continue_prob: float = 0.5,
              max_run: int = 4) -> str:
    """Training noise on the part after [SEP] (models/bart.py:_add_noise): per paragraph, each token
    is replaced by a uniform vocab word with prob; each replacement continues to the next token with
    continue_prob, at most max_run in a row. Token counts are unchanged; the condition is kept.

    Tokens come from NLTK's Treebank word tokenizer per paragraph (no punkt data: stage texts are
    already single lowercase tokens)."""
    from nltk.tokenize import NLTKWordTokenizer

    cond, sep, body = text.partition(SEP)
    if not sep:
        cond, body = "", text
    tokenize = NLTKWordTokenizer().tokenize
    out = []
    for par in body.split("\n"):
        toks = tokenize(par)
        for i in range(len(toks)):
            if rng.random() >= prob:
                continue
            toks[i] = rng.choice(vocab)
            for j in range(i + 1, min(i + max_run, len(toks))):
                if rng.random() >= continue_prob:
                    break
                toks[j] = rng.choice(vocab)
        out.append(" ".join(toks))
    noised = "\n".join(out)
    return stage_input(cond, noised) if sep else noised


def stage_examples(examples: Sequence[dict], vocabs: Sequence[Sequence[str]], stage: int) -> list[dict]:
    """(source, target) pairs of stage `stage` (1-based) for examples {"condition", "text"}.

    Stage 1 maps the condition to the first stage text; stage k > 1 maps cond [SEP] stage_{k-1} to
    stage_k; the stage after the last vocabulary is the original text."""
    analyze = analyzer()
    sets = [set(v) for v in vocabs]

    def level(text: str, k: int) -> str:
        return text if k > len(sets) else stage_text(text, sets[k - 1], analyze)

    out = []
    for ex in examples:
        cond, text = ex["condition"], ex["text"]
        source = cond if stage == 1 else stage_input(cond, level(text, stage - 1))
        out.append({"source": source, "target": level(text, stage)})
    return out


def stage_descriptions(rates: Sequence[float]) -> list[str]:
    """What each stage model maps, for people: `condition -> 0.25 text`, `condition [SEP] 0.25 text -> text`."""
    out = []
    for k in range(len(rates) + 1):
        src = "condition" if k == 0 else f"condition [SEP] {rates[k - 1]} text"
        out.append(f"{src} -> {'text' if k == len(rates) else f'{rates[k]} text'}")
    return out


Generate = Callable[[list[str], int], list[str]]
"""A stage model's decoder: (sources, attempt) -> one text per source; attempt > 0 resamples."""

_LETTER = re.compile(r"[^\W\d_]")


def has_letter(text: str) -> bool:
    """The paper's acceptance test of a sampled stage text: it contains a letter."""
    return bool(_LETTER.search(text))


def generate_with_letters(generate: Generate, sources: list[str], retries: int) -> list[str]:
    """generate(sources), then resample (attempt 1, 2, ...) the outputs without a letter, at most
    `retries` times (the paper resamples until the output contains one)."""
    out = list(generate(sources, 0))
    for attempt in range(1, retries + 1):
        bad = [i for i, o in enumerate(out) if not has_letter(o)]
        if not bad:
            break
        for i, o in zip(bad, generate([sources[i] for i in bad], attempt)):
            out[i] = o
    return out


def chain(conditions: Sequence[str], stages: Sequence[Generate], retries: int = 0) -> list[list[str]]:
    """Every stage's text per example: stage 1 from the condition, stage k from
    `cond [SEP] stage k-1 text` (the texts it generated, not gold ones)."""
    texts: list[list[str]] = []
    for k, generate in enumerate(stages):
        sources = list(conditions) if k == 0 else [stage_input(c, p) for c, p in zip(conditions, texts[-1])]
        texts.append(generate_with_letters(generate, sources, retries))
    return [list(t) for t in zip(*texts)] if texts else [[] for _ in conditions]


__all__ = ["SEP", "Generate", "add_noise", "analyzer", "chain", "generate_with_letters", "has_letter", "stage_descriptions", "stage_examples",
           "stage_input", "stage_text", "stage_vocab"]
