"""Test-split metrics (CovidDialog's evaluation) through the metrics library, one implementation each:
perplexity on the references, NIST-4, corpus BLEU-2/4, METEOR, Entropy-4 and Dist-1/2 of the
generated replies. The test examples are every doctor turn (seq2seq, as BART was tested) or the
last doctor turn of each dialogue (causal-dialogue, as DialoGPT was)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from glassbox_api.kinds.dialogbot import Decoding

from ..metrics import diversity, lm, standard
from .data import Dialogue, Turn
from .inputs import Pair, pairs
from .model import SEQ2SEQ, DialogModel

EMPTY_REPLY = "<empty>"
"""Stands for a reply that decoded to no text (the metrics refuse empty hypotheses)."""


@dataclass(frozen=True)
class TestExample:
    history: tuple[Turn, ...]
    description: str
    pair: Pair


def held_out_examples(dialogues: Sequence[Dialogue], objective: str, include_description: bool) -> list[TestExample]:
    out = []
    for d in dialogues:
        ps = pairs(d, include_description)
        idx = [i for i, t in enumerate(d.turns) if t.speaker == "doctor" and i > 0]
        chosen = list(zip(idx, ps)) if objective == SEQ2SEQ else list(zip(idx, ps))[-1:]
        out += [TestExample(d.turns[:i], d.description, p) for i, p in chosen]
    return out


def causal_source(dm: DialogModel, history: Sequence[Turn]) -> str:
    """A causal model's context as text: every utterance followed by the eos token."""
    eos = dm.tokenizer.eos_token
    return "".join(f"{t.text}{eos}" for t in history)


def metrics(dm: DialogModel, examples: Sequence[TestExample], decoding: Decoding,
            max_length: int) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The metric values and one row per example (history size, reference, reply)."""
    if not examples:
        return {}, []
    replies = dm.replies([e.history for e in examples], decoding, [e.description for e in examples])
    hyps = [r or EMPTY_REPLY for r in replies]
    refs = [[e.pair.target] for e in examples]
    if dm.objective == SEQ2SEQ:
        dm.tokenizer.truncation_side = "left"  # the source keeps its latest turns, as in training
        srcs = [e.pair.source for e in examples]
    else:
        srcs = [causal_source(dm, e.history) for e in examples]
    kind = "seq2seq" if dm.objective == SEQ2SEQ else "causal"
    ppl = lm.perplexity(dm.model, dm.tokenizer, srcs, refs, kind=kind, device=dm.device, max_length=max_length)
    out = {
        "perplexity": ppl.corpus,
        "nist4": standard.nist(hyps, refs, 4).corpus,
        "bleu2": standard.corpus_bleu(hyps, refs, 2).corpus,
        "bleu4": standard.corpus_bleu(hyps, refs, 4).corpus,
        "meteor": standard.meteor(hyps, refs).corpus,
        "entropy4": diversity.entropy(hyps, 4).corpus,
        "dist1": diversity.dist(hyps, 1).corpus,
        "dist2": diversity.dist(hyps, 2).corpus,
        "emptyReplies": float(sum(1 for r in replies if not r)),
    }
    rows = [{"turns": len(e.history), "reference": e.pair.target, "reply": r, "perplexity": p}
            for e, r, p in zip(examples, replies, ppl.per_example or [])]
    return out, rows
