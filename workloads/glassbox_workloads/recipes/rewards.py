"""Reward functions for the soft-q recipe, named in a spec as `module:function`.

A reward function takes (sources, outputs), two lists of strings, and returns one raw score per
output in [0, 100]; the recipe shapes it linearly onto recipe.softQ.rewardRange. Real tasks plug in
their own (an entailment or topic classifier, BLEU against references) from their image.
"""

from __future__ import annotations

from typing import Sequence


def vowel_share(sources: Sequence[str], outputs: Sequence[str]) -> list[float]:
    """100 x the share of vowels among an output's letters: a dense toy reward for demos and tests."""
    out = []
    for o in outputs:
        letters = [c for c in o.lower() if c.isalpha()]
        out.append(100.0 * sum(c in "aeiou" for c in letters) / len(letters) if letters else 0.0)
    return out


def copies_source(sources: Sequence[str], outputs: Sequence[str]) -> list[float]:
    """100 x the unigram F1 of the output against its source: rewards faithful copying."""
    out = []
    for s, o in zip(sources, outputs):
        st, ot = s.lower().split(), o.lower().split()
        common = sum(min(st.count(w), ot.count(w)) for w in set(ot))
        p, r = common / max(len(ot), 1), common / max(len(st), 1)
        out.append(0.0 if p + r == 0 else 200.0 * p * r / (p + r))
    return out
