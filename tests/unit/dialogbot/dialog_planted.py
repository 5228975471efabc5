"""Synthetic consultations with a planted rule: every doctor reply names the symptom of the patient
turn just before it. Each consultation has three patient turns with three different symptoms, so
a history holds other symptoms than the latest one, and histories are longer than the tests'
maxSourceLength."""

from __future__ import annotations

import json
import random
from pathlib import Path

SYMPTOMS = ("fever", "cough", "headache", "rash", "nausea", "dizziness", "backache", "earache")
OPENERS = ("i have had {s} for {n} days", "since {d} my {s} is getting worse", "now i also have {s} at night",
           "my {s} started on {d}")
DAYS = ("monday", "tuesday", "friday", "sunday")


def consultation(rng: random.Random) -> dict:
    syms = rng.sample(SYMPTOMS, 3)
    utts = []
    for s in syms:
        opener = rng.choice(OPENERS).format(s=s, n=rng.randint(2, 9), d=rng.choice(DAYS))
        utts.append(f"Patient: {opener} and i am worried about it .")
        utts.append(f"Doctor: for your {s} please rest and drink water .")
    return {"description": "synthetic", "utterances": utts}


def write(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.write_text("".join(json.dumps(consultation(rng)) + "\n" for _ in range(n)))
    return path


def named(reply: str) -> set[str]:
    return {s for s in SYMPTOMS if s in reply.split()}
