"""Weak supervision for the D and R aligners (CTC Appendix A; train/construct.py,
models/hallucination_generator.py, data_utils.get_discriminative_token_labels).

For each sentence of an output text: walk a phrase tree children first; a node is masked with
p_mask = (#words(node) / #words(sentence)) / (height(node) + 1), 0 for stop words and nodes without
an alphanumeric character, and a masked node's whole subtree becomes one "<mask>" whose answer is the
node's text. Retry up to 5 times until the template is not all-mask, has no "<mask> <mask>" and has at
least one mask. Refill the masks (a configured infiller model, or the rule-based refiller), then label
each word of the result: a filling's words get 1 iff the filling differs from the masked original
(case-insensitive, stripped), template words get 0 (the authors' polarity: 1 = hallucinated).

benepar's constituency parse is not installable offline; the default tree is a shallow phrase tree
(a sentence node over runs of content words, each run over its words), and `tree` takes any other.

Public:
- Node(text, children); phrase_tree(sentence) -> Node.
- make_template(root, rng, tries=5) -> (template, answers) | None.
- label_tokens(template, answers, fillings) -> (text, labels): one label per whitespace word.
- recover_fillings(template, generated) -> list[str] | None: the regex recovery of infilled spans.
- RandomWordRefiller(vocabulary): fills each mask with as many random vocabulary words as the answer
  had (never the answer itself).
- ModelInfiller(model, tokenizer, top_p=0.95, max_length=256): a seq2seq infiller (BART-style
  "<mask>" spans), sampled with top-p; fillings recovered by regex, None when they cannot be.
- farthest(original, candidates) -> str: the candidate with the largest (character) Levenshtein
  distance from the original (the authors keep the most different of 10 paraphrases).
- ModelParaphraser(model, tokenizer, samples=10, top_k=120, top_p=0.95, prefix="paraphrase: "):
  a seq2seq paraphraser (T5_Paraphrase_Paws-style), called as paraphraser(sentence, rng) -> str.
- WeakExample(input_text, context, labels); hallucinate(text, refiller, rng) -> (template, answers,
  fillings) | None; build_examples(pairs, refiller, seed=0, tree=phrase_tree, clean=True,
  paraphrase=None) -> list[WeakExample]: pairs are (output text, context); each output sentence is
  paraphrased first when a paraphraser is given; outputs that fail are skipped.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence

from ..text import ctc_clean, is_stopword, sent_tokenize

MASK = "<mask>"
TRIES = 5


@dataclass
class Node:
    """A phrase: its text and its child phrases (none for a word)."""

    text: str
    children: list["Node"] = field(default_factory=list)


def _maskable(text: str) -> bool:
    return not is_stopword(text) and any(ch.isalnum() for ch in text)


def phrase_tree(sentence: str) -> Node:
    """Sentence -> runs of consecutive maskable words (a run of one is the word itself) and the
    other words as leaves."""
    words = sentence.split()
    children: list[Node] = []
    run: list[str] = []

    def close() -> None:
        if run:
            children.append(Node(" ".join(run), [Node(w) for w in run]) if len(run) > 1 else Node(run[0]))
            run.clear()

    for w in words:
        if _maskable(w):
            run.append(w)
        else:
            close()
            children.append(Node(w))
    close()
    return Node(sentence, children)


def _mask(node: Node, n_words: int, rng: random.Random) -> tuple[str, int, list[str]]:
    """(template, height, answers) of a subtree, children first."""
    template = "" if node.children else node.text
    height, answers = 0, []
    for child in node.children:
        t, h, a = _mask(child, n_words, rng)
        template, height = f"{template} {t}", max(height, h + 1)
        answers.extend(a)
    p = len(node.text.split()) / n_words / (height + 1) if _maskable(node.text) else 0.0
    if rng.random() < p:
        return MASK, height, [node.text]
    return template.strip(), height, answers


def make_template(root: Node, rng: random.Random, tries: int = TRIES) -> Optional[tuple[str, list[str]]]:
    """A template with at least one mask, not all-mask, no two masks in a row; None after `tries`."""
    n = max(1, len(root.text.split()))
    for _ in range(tries):
        template, _, answers = _mask(root, n, rng)
        if template != MASK and f"{MASK} {MASK}" not in template and answers:
            return template, answers
    return None


def label_tokens(template: str, answers: Sequence[str], fillings: Sequence[str]) -> tuple[str, list[int]]:
    """The refilled text and one label per whitespace word: 1 iff the word comes from a filling
    that differs from its answer (lowercased, stripped)."""
    frags = template.split(MASK)
    if not len(frags) == len(answers) + 1 == len(fillings) + 1:
        raise ValueError(f"{len(frags) - 1} masks, {len(answers)} answers, {len(fillings)} fillings")
    pieces: list[tuple[str, int]] = []
    for frag, answer, filling in zip(frags, answers, fillings):
        pieces.append((frag.strip(), 0))
        pieces.append((filling.strip(), int(filling.lower().strip() != answer.lower().strip())))
    pieces.append((frags[-1].strip(), 0))
    labels: list[int] = []
    for text, label in pieces:
        labels.extend([label] * len(text.split()))
    return " ".join(t for t, _ in pieces if t), labels


def recover_fillings(template: str, generated: str) -> Optional[list[str]]:
    """The spans an infiller put where the masks were, by matching the template (each mask a
    group), case-insensitively; None when the generated text does not follow the template."""
    pattern = re.escape(template).replace(re.escape(MASK), "(.*)")
    m = re.match(pattern + "$", generated, flags=re.I | re.S)
    return list(m.groups()) if m else None


class Refiller(Protocol):
    def fill(self, template: str, answers: Sequence[str], rng: random.Random) -> Optional[list[str]]: ...


class RandomWordRefiller:
    """Rule-based refilling: random vocabulary words, as many as the answer had, never the answer."""

    def __init__(self, vocabulary: Sequence[str]):
        self.vocabulary = sorted(set(vocabulary))
        if len(self.vocabulary) < 2:
            raise ValueError("the refiller needs a vocabulary of at least 2 words")

    def fill(self, template: str, answers: Sequence[str], rng: random.Random) -> Optional[list[str]]:
        out = []
        for answer in answers:
            words = []
            for w in answer.split():
                pick = rng.choice(self.vocabulary)
                while pick.lower() == w.lower():
                    pick = rng.choice(self.vocabulary)
                words.append(pick)
            out.append(" ".join(words))
        return out


class ModelInfiller:
    """Span infilling with a seq2seq model (BART: "<mask>" marks a span), top-p sampling."""

    def __init__(self, model: Any, tokenizer: Any, top_p: float = 0.95, max_length: int = 256, device: str = "cpu"):
        self.model, self.tokenizer = model.to(device).eval(), tokenizer
        self.top_p, self.max_length, self.device = top_p, max_length, device
        self.mask_token = getattr(tokenizer, "mask_token", None) or MASK

    def fill(self, template: str, answers: Sequence[str], rng: random.Random) -> Optional[list[str]]:
        import torch

        torch.manual_seed(rng.randrange(2**31))
        enc = self.tokenizer(template.replace(MASK, self.mask_token), return_tensors="pt", truncation=True,
                             max_length=self.max_length).to(self.device)
        with torch.no_grad():
            ids = self.model.generate(**enc, do_sample=True, top_p=self.top_p, top_k=0, max_length=self.max_length)
        generated = ctc_clean(self.tokenizer.decode(ids[0], skip_special_tokens=True))
        return recover_fillings(ctc_clean(template), generated)


def farthest(original: str, candidates: Sequence[str]) -> str:
    """The candidate farthest from `original` by Levenshtein distance (the first on ties)."""
    from rapidfuzz.distance import Levenshtein

    best, best_d = original, -1
    for c in candidates:
        d = Levenshtein.distance(original, c)
        if d > best_d:
            best, best_d = c, d
    return best


class ModelParaphraser:
    """Sentence paraphrases from a seq2seq model: `samples` top-k/top-p samples, the farthest kept."""

    def __init__(self, model: Any, tokenizer: Any, samples: int = 10, top_k: int = 120, top_p: float = 0.95,
                 max_length: int = 256, prefix: str = "paraphrase: ", device: str = "cpu"):
        self.model, self.tokenizer = model.to(device).eval(), tokenizer
        self.samples, self.top_k, self.top_p = samples, top_k, top_p
        self.max_length, self.prefix, self.device = max_length, prefix, device

    def __call__(self, sentence: str, rng: random.Random) -> str:
        import torch

        torch.manual_seed(rng.randrange(2**31))
        enc = self.tokenizer(self.prefix + sentence, return_tensors="pt", truncation=True,
                             max_length=self.max_length).to(self.device)
        with torch.no_grad():
            ids = self.model.generate(**enc, do_sample=True, top_k=self.top_k, top_p=self.top_p,
                                      max_length=self.max_length, num_return_sequences=self.samples)
        texts = [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return farthest(sentence, [t for t in texts if t])


@dataclass(frozen=True)
class WeakExample:
    """An input text with one label per whitespace word (1 = hallucinated), and its context."""

    input_text: str
    context: str
    labels: list[int]


def hallucinate(text: str, refiller: Refiller, rng: random.Random,
                tree: Callable[[str], Node] = phrase_tree) -> Optional[tuple[str, list[str], list[str]]]:
    """Template, answers and fillings over all sentences of `text`; None if any sentence fails."""
    templates, answers, fillings = [], [], []
    for sent in sent_tokenize(text) or [text]:
        made = make_template(tree(sent), rng)
        if made is None:
            return None
        filled = refiller.fill(made[0], made[1], rng)
        if filled is None or len(filled) != len(made[1]):
            return None
        templates.append(made[0]), answers.extend(made[1]), fillings.extend(filled)
    return " ".join(templates), answers, fillings


def build_examples(pairs: Sequence[tuple[str, str]], refiller: Refiller, seed: int = 0,
                   tree: Callable[[str], Node] = phrase_tree, clean: bool = True,
                   paraphrase: Optional[Callable[[str, random.Random], str]] = None) -> list[WeakExample]:
    """Weakly labelled examples from (output text, context) pairs; failed outputs are skipped."""
    rng = random.Random(seed)
    out = []
    for text, context in pairs:
        if paraphrase is not None:
            text = " ".join(paraphrase(s, rng) for s in sent_tokenize(text) or [text])
        if clean:
            text, context = ctc_clean(text), ctc_clean(context)
        made = hallucinate(text, refiller, rng, tree)
        if made is not None:
            hallu_text, labels = label_tokens(*made)
            out.append(WeakExample(hallu_text, context, labels))
    return out
