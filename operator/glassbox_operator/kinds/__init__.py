"""A home per kind: one module each, holding everything kind-specific (base.py says what)."""

from __future__ import annotations

from . import dialogbot, kgharvest, metriceval, pretrainrun, scorerservice, shardedfinetune
from .base import STAGE_RUN, STAGE_SERVE, STAGE_TRAIN, KindHome, Plan

HOMES: dict[str, KindHome] = {
    m.HOME.kind: m.HOME for m in (pretrainrun, shardedfinetune, scorerservice, kgharvest, metriceval, dialogbot)
}


def home(kind: str) -> KindHome:
    """The home of a kind (by its Kind name)."""
    try:
        return HOMES[kind]
    except KeyError:
        raise KeyError(f"no operator home for kind {kind!r}; known: {', '.join(HOMES)}") from None


__all__ = ["HOMES", "KindHome", "Plan", "STAGE_RUN", "STAGE_SERVE", "STAGE_TRAIN", "home"]
