"""The planted-structure task of SEEDS-DETAIL.md section 1.2: an echo task and a fake generator whose
beam candidate is right 30 % of the time while its samples hold the right word often."""

from __future__ import annotations

import random
from dataclasses import dataclass

from glassbox_workloads.scorer.data import Example
from glassbox_workloads.scorer.generator import Candidate

WORDS = ("apple", "river", "stone", "cloud", "tiger", "piano", "maple", "ocean", "candle", "rocket",
         "violet", "silver", "garden", "pencil", "desert", "winter", "button", "forest", "mirror", "harbor")
STRATEGIES = ("beam4",) + ("sampling",) * 4 + ("temp0.9",) * 4 + ("topk40",) * 4 + ("topp0.95",) * 4


def prompt(word: str) -> str:
    return f"say {word}"


def word_of(instruction: str) -> str:
    return instruction.rsplit(" ", 1)[-1]


@dataclass
class FakeGenerator:
    """Beam: the right word with probability 0.3, else a random other word. Each of the 16 samples:
    the right word with probability p_sample, else a random word (so the right word is among a
    prompt's samples almost always, and the beam alone scores about 0.3)."""

    seed: int = 0
    p_beam: float = 0.3
    p_sample: float = 0.3
    calls: int = 0

    def generate(self, prompts):
        out = []
        self.calls += 1
        for i, p in enumerate(prompts):
            rng = random.Random(f"{self.seed}|{self.calls}|{i}|{p}")
            w = word_of(p)
            others = [x for x in WORDS if x != w]
            cands = []
            for k, strategy in enumerate(STRATEGIES):
                right = rng.random() < (self.p_beam if k == 0 else self.p_sample)
                cands.append(Candidate(w if right else rng.choice(others), strategy))
            out.append(cands)
        return out


def task(n: int, seed: int = 1) -> list[Example]:
    """n prompts `say W`, W uniform over the 20 words: prompts repeat, and each is its own example."""
    rng = random.Random(seed)
    return [Example(prompt(w), (w,)) for w in (rng.choice(WORDS) for _ in range(n))]


def with_samples(examples: list[Example], gen: FakeGenerator) -> list[Example]:
    made = gen.generate([e.instruction for e in examples])
    return [Example(e.instruction, e.references, tuple(c.text for c in cs)) for e, cs in zip(examples, made)]
