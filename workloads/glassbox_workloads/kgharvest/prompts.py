"""Prompts: slots, validity, style, filling, and the optional paraphrase rounds (BertNet section 3.1,
`search_prompts.py`). Pure string work; the generator is any callable text -> text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

SLOT = re.compile(r"<ENT(\d+)>")

Generator = Callable[[str], str]
"""A paraphrase generator: the request text in, the generated continuation out."""


def slot(i: int) -> str:
    return f"<ENT{i}>"


def n_ents(prompt: str) -> int:
    """The number of distinct slots of a prompt."""
    return len(set(SLOT.findall(prompt)))


def is_valid_prompt(prompt: str) -> bool:
    """Every slot is preceded by a space or a double quote (or starts the prompt)."""
    return all(m.start() == 0 or prompt[m.start() - 1] in ' "' for m in SLOT.finditer(prompt))


def has_slots_once(prompt: str, n: int) -> bool:
    """The prompt holds each of <ENT0>..<ENT{n-1}> exactly once and no other slot."""
    found = SLOT.findall(prompt)
    return sorted(int(i) for i in found) == list(range(n))


def fix_prompt_style(prompt: str) -> str:
    """BertNet's style: no trailing ' .' or '.', first letter upper case, ending ' .'."""
    p = prompt.strip().rstrip(".").rstrip()
    if p and not p.startswith("<"):
        p = p[0].upper() + p[1:]
    return p + " ."


def clean_seed(seed: Sequence[str]) -> tuple[str, ...]:
    """Underscores in seed entities are spaces (ConceptNet style `ice_cream`)."""
    return tuple(e.replace("_", " ").strip() for e in seed)


@dataclass(frozen=True)
class Filled:
    """A prompt with its entities filled in, and where each entity starts in the sentence."""

    sentence: str
    starts: tuple[int, ...]
    """Character offset of entity i in the sentence."""
    entities: tuple[str, ...]
    """The entities as written into the sentence (capitalised where the prompt starts with them)."""


def fill(prompt: str, entities: Sequence[str]) -> Filled:
    """Fill the slots; an entity that starts the prompt is capitalize()d, as BertNet does."""
    out: list[str] = []
    starts: dict[int, int] = {}
    written: dict[int, str] = {}
    pos = 0
    for m in SLOT.finditer(prompt):
        out.append(prompt[pos:m.start()])
        i = int(m.group(1))
        ent = entities[i]
        if m.start() == 0:
            ent = ent.capitalize()
        starts[i] = sum(len(s) for s in out)
        written[i] = ent
        out.append(ent)
        pos = m.end()
    out.append(prompt[pos:])
    n = len(entities)
    return Filled("".join(out), tuple(starts[i] for i in range(n)), tuple(written[i] for i in range(n)))


def slot_word_end(prompt: str, i: int) -> int:
    """Where the prompt word holding slot i ends: at whitespace or punctuation other than `<>`
    (a suffix glued to the slot, `<ENT1>s`, belongs to the word)."""
    m = re.search(re.escape(slot(i)), prompt)
    assert m is not None
    j = m.end()
    while j < len(prompt) and not prompt[j].isspace() and (prompt[j].isalnum() or prompt[j] in "<>_"):
        j += 1
    return j


def mask_span_chars(prompt: str, entities: Sequence[str]) -> tuple[Filled, list[tuple[int, int]]]:
    """The filled sentence and, per entity, the character span that is masked and scored: the first
    whitespace word of the slot's prompt word with the slot replaced by the entity."""
    filled = fill(prompt, entities)
    spans = []
    for i in range(len(entities)):
        m = re.search(re.escape(slot(i)), prompt)
        assert m is not None
        suffix = prompt[m.end():slot_word_end(prompt, i)]
        word = (filled.entities[i] + suffix).split()[0] if (filled.entities[i] + suffix).split() else ""
        spans.append((filled.starts[i], filled.starts[i] + len(word)))
    return filled, spans


# ---- paraphrase rounds (section 3.1) ---------------------------------------------------------------
SENT_EDITS = (("", ""), ("a ", ""), ("the ", ""))
ENT_EDITS = (("", ""), ("being", "is"), ("being", "are"), ("ing", ""), ("ing", "e"))


def first_sentence(text: str) -> str:
    """The generator's first sentence, stripped of its period and lower-cased."""
    text = text.strip()
    for stop in (".", "\n", "!", "?"):
        if stop in text:
            text = text[:text.index(stop)]
    return text.strip().strip(".").strip().lower()


def templatize(sentence: str, entities: Sequence[str]) -> Optional[str]:
    """Map each entity of a paraphrase back to its slot, trying BertNet's edits until it occurs
    exactly once; None when some entity cannot be placed (the paraphrase is dropped)."""
    for s_old, s_new in SENT_EDITS:
        sent = sentence.replace(s_old, s_new) if s_old else sentence
        for i, ent in enumerate(entities):
            for e_old, e_new in ENT_EDITS:
                cand = ent.replace(e_old, e_new) if e_old else ent
                if cand and sent.count(cand) == 1:
                    sent = sent.replace(cand, slot(i))
                    break
        if has_slots_once(sent, len(entities)) and is_valid_prompt(sent):
            return sent
    return None


def paraphrase_once(generate: Generator, prompt: str, seed: Sequence[str], retries: int) -> Optional[str]:
    """One new prompt from one (prompt, seed): ask, map back, up to `retries` tries."""
    sent = fill(prompt, [e.lower() for e in seed]).sentence
    for _ in range(retries):
        para = first_sentence(generate(f"paraphrase:\n{sent}\n"))
        got = templatize(para, [e.lower() for e in seed])
        if got is not None:
            return fix_prompt_style(got)
    return None


def search_prompts(generate: Generator, init: Sequence[str], seeds: Sequence[Sequence[str]], *,
                   max_prompts: int = 10, similarity: int = 75, retries: int = 5,
                   round_new: int = 20) -> list[str]:
    """Grow the prompt set by paraphrasing until `max_prompts` are kept or a round adds none.

    Each round walks init+init+found prompts against every seed, stops collecting once `round_new`
    unique new prompts exist, and keeps new ones shortest first when their fuzzy ratio to every kept
    prompt is below `similarity`. Returns init + found, de-duplicated in order.
    """
    from rapidfuzz import fuzz

    init = [fix_prompt_style(p) for p in init]
    found: list[str] = []
    while len(init) + len(found) < max_prompts:
        new: list[str] = []
        for prompt in init + init + found:
            for seed in seeds:
                got = paraphrase_once(generate, prompt, seed, retries)
                if got and got not in init + found + new:
                    new.append(got)
            if len(new) >= round_new:
                break
        added = 0
        for cand in sorted(new, key=len):
            kept = init + found
            if max(fuzz.ratio(cand, k) for k in kept) < similarity:
                found.append(cand)
                added += 1
        if added == 0:
            break
    return list(dict.fromkeys(init + found))
