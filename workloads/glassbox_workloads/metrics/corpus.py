"""Set-level metrics of progressive generation (tanyuqian/progressive-generation metrics/): they
compare the set of generated texts with the set of reference texts, so their Scores have no
per-example values (per_example None). References may be given per example (lists): they are
pooled into one set.

Public:
- ha_bleu(hyps, refs, n) -> Scores: forward BLEU = mean over hypotheses of NLTK sentence_bleu
  against ALL references (weights 1/n, SmoothingFunction().method1), backward = the same with the
  roles swapped, HA = 2fb/(f+b) (0 when both are 0); nltk.word_tokenize tokens.
- forward_backward_bleu(hyps, refs, n) -> (forward, backward).
- msj(hyps, refs, n, original_off_by_one=False) -> Scores: MS-Jaccard: lowercased word_tokenize
  tokens; for g = 1..n, Jaccard sum(min)/sum(max) of the two sets' g-gram counts each divided by
  the set's number of (Punkt) sentences; geometric mean over g. The original loop
  `range(len(tokens) - g)` skips each text's last g-gram; we count every g-gram unless
  original_off_by_one=True reproduces the original. A g with no g-grams in either set scores 0.
- tid(hyps, refs, min_df=5, scale=1000.0) -> Scores: TF-IDF distance: vocabulary from
  CountVectorizer(min_df) on the references; TfidfVectorizer(vocabulary) fit separately on each
  set; each set's mean over texts of tfidf / #sentences; the L2 distance of the two, times scale.
- frechet_distance(mu1, sigma1, mu2, sigma2) -> float: ||mu1-mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)).
- fbd(hyps, refs, model, tokenizer, part="s"|"m"|"d"|"all", batch_size=16, device="cpu") -> Scores:
  Frechet BERT Distance: [CLS] of every hidden state, per layer sqrt(Frechet distance); the sum over
  the first, middle or last third of layers 1..L (FBD-S/M/D; layers 1-8, 9-16, 17-24 for
  bert-large-cased's 24).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Any, Literal, Sequence

import numpy as np

from ..runtime.errors import BadInput
from .base import Scores, check_hypotheses
from .diversity import ngram_counts
from .text import sent_tokenize, word_tokenize


def _pool(refs: Sequence[Any]) -> list[str]:
    out = [r for item in refs for r in ([item] if isinstance(item, str) else item)]
    return check_hypotheses(out, "references")


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def forward_backward_bleu(hyps: Sequence[Any], refs: Sequence[Any], n: int) -> tuple[float, float]:
    """Forward and backward BLEU-n of the two sets (smoothed sentence BLEU, method1)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    h = [word_tokenize(t) for t in check_hypotheses(hyps)]
    r = [word_tokenize(t) for t in _pool(refs)]
    weights, smooth = [1.0 / n] * n, SmoothingFunction().method1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = _mean([sentence_bleu(r, x, weights=weights, smoothing_function=smooth) for x in h])
        b = _mean([sentence_bleu(h, x, weights=weights, smoothing_function=smooth) for x in r])
    return f, b


def ha_bleu(hyps: Sequence[Any], refs: Sequence[Any], n: int) -> Scores:
    """Harmonic mean of forward and backward BLEU-n."""
    f, b = forward_backward_bleu(hyps, refs, n)
    return Scores(None, 0.0 if f + b == 0 else 2.0 * f * b / (f + b))


def _msj_counts(texts: list[str], g: int, off_by_one: bool) -> Counter:
    toks = [word_tokenize(t.lower()) for t in texts]
    if off_by_one:
        toks = [t[:-1] for t in toks]  # range(len - g) drops each text's last g-gram
    return ngram_counts(toks, g)


def msj(hyps: Sequence[Any], refs: Sequence[Any], n: int, original_off_by_one: bool = False) -> Scores:
    """MS-Jaccard-n: geometric mean over g = 1..n of the sentence-normalised g-gram Jaccard."""
    h, r = check_hypotheses(hyps), _pool(refs)
    sents_h = sum(len(sent_tokenize(t)) for t in h) or 1
    sents_r = sum(len(sent_tokenize(t)) for t in r) or 1
    scores = []
    for g in range(1, n + 1):
        ch, cr = _msj_counts(h, g, original_off_by_one), _msj_counts(r, g, original_off_by_one)
        lo = hi = 0.0
        for gram in ch.keys() | cr.keys():
            a, b = cr.get(gram, 0) / sents_r, ch.get(gram, 0) / sents_h
            lo, hi = lo + min(a, b), hi + max(a, b)
        scores.append(lo / hi if hi > 0 else 0.0)
    gmean = 0.0 if min(scores) <= 0 else math.exp(sum(math.log(s) for s in scores) / len(scores))
    return Scores(None, gmean)


def _tfidf_mean(texts: list[str], vocab: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    feats = TfidfVectorizer(vocabulary=vocab).fit_transform(texts)
    n_sent = np.array([max(1, len(sent_tokenize(t))) for t in texts], dtype=float)
    return np.asarray(feats.multiply(1.0 / n_sent[:, None]).sum(axis=0)).ravel() / feats.shape[0]


def tid(hyps: Sequence[Any], refs: Sequence[Any], min_df: int = 5, scale: float = 1000.0) -> Scores:
    """TF-IDF distance of the two sets (x scale)."""
    from sklearn.feature_extraction.text import CountVectorizer

    h, r = check_hypotheses(hyps), _pool(refs)
    try:
        vocab = sorted(CountVectorizer(min_df=min_df).fit(r).vocabulary_)
    except ValueError as e:  # "After pruning, no terms remain"
        raise BadInput("references", f"TID's vocabulary is the words in at least {min_df} references, and there are "
                       f"none ({len(r)} references)", "give more references, or leave tid out") from e
    return Scores(None, float(np.linalg.norm(_tfidf_mean(r, vocab) - _tfidf_mean(h, vocab))) * scale)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance of two Gaussians (the stable FID formula)."""
    from scipy import linalg

    diff = np.atleast_1d(mu1) - np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    with warnings.catch_warnings():
        # A layer whose [CLS] state is the same for every text (layer 0) has a singular covariance.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def _cls_features(texts: list[str], model: Any, tokenizer: Any, batch_size: int, device: str) -> list[np.ndarray]:
    import torch

    layers: list[list[np.ndarray]] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], truncation=True, max_length=512, padding=True,
                            return_tensors="pt").to(device)
            states = model(**enc, output_hidden_states=True).hidden_states
            if not layers:
                layers = [[] for _ in states]
            for k, s in enumerate(states):
                layers[k].append(s[:, 0].float().cpu().numpy())
    return [np.concatenate(chunks) for chunks in layers]


def fbd_layers(hyps: Sequence[Any], refs: Sequence[Any], model: Any, tokenizer: Any, batch_size: int = 16,
               device: str = "cpu") -> list[float]:
    """sqrt(Frechet distance) of the [CLS] states of every layer (0 = embeddings)."""
    h, r = check_hypotheses(hyps), _pool(refs)
    model.to(device).eval()
    fh = _cls_features(h, model, tokenizer, batch_size, device)
    fr = _cls_features(r, model, tokenizer, batch_size, device)
    out = []
    for a, b in zip(fr, fh):
        d = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        out.append(math.sqrt(max(d, 0.0)))
    return out


def fbd(hyps: Sequence[Any], refs: Sequence[Any], model: Any, tokenizer: Any,
        part: Literal["s", "m", "d", "all"] = "all", batch_size: int = 16, device: str = "cpu") -> Scores:
    """FBD-S/M/D: the per-layer distances summed over the first, middle or last third of layers."""
    dist = fbd_layers(hyps, refs, model, tokenizer, batch_size, device)
    n = len(dist) - 1
    bounds = {"s": (1, n // 3), "m": (n // 3 + 1, 2 * n // 3), "d": (2 * n // 3 + 1, n), "all": (1, n)}
    lo, hi = bounds[part]
    return Scores(None, float(sum(dist[lo:hi + 1])))
