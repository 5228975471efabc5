"""The exact branch-and-bound search over entity tuples (BertNet section 3.2,
`entity_tuple_searcher.py`), and its brute-force twin for tests and the benchmark.

A tuple's key is the minimum, over every token of every entity, of the log-prob of that token
under the weighted average of the prompts' raw logits at its mask (later tokens still masked,
earlier ones filled). Along a path the running minimum only falls, so a branch whose running
minimum is already below the worst kept tuple (or entity) can be cut without losing any result:
the pruned search returns what the enumeration of every tuple would.

Keys tie often (every tuple whose worst token is its first entity's shares that entity's key), so
the order is total: by key, then by the tuple itself, larger first, in the heap and in the result.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

import torch

from .filters import entity_rejection, token_visitable
from .mlm import MaskedLM
from .prompts import SLOT, slot
from .scoring import Tuple_


@dataclass(frozen=True)
class SearchOptions:
    max_tuples: int = 1000
    """n: tuples kept (one heap for every subword configuration)."""
    max_subwords: int = 2
    first_entity_candidates: int = 1000
    """Entity heap size of the first entity (BertNet: n)."""
    later_entity_candidates: int = 5
    """Entity heap size of each later entity (BertNet: the word-repeat cap)."""
    max_word_repeat: int = 5
    """A word may appear in at most this many kept tuples."""
    min_entity_chars: int = 3
    """An entity without its spaces has at least this many characters (BertNet: more than 2)."""


@dataclass
class _TupleHeap:
    """The top-n tuples by key, with BertNet's word-repeat cap."""

    n: int
    max_word_repeat: int
    heap: list[tuple[float, Tuple_]] = field(default_factory=list)
    words: Counter = field(default_factory=Counter)
    keys: dict[Tuple_, float] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return len(self.heap) >= self.n

    @property
    def floor(self) -> float:
        """The worst kept key once full (-inf before: nothing can be cut)."""
        return self.heap[0][0] if self.full else float("-inf")

    @staticmethod
    def _words(ents: Tuple_) -> set[str]:
        return {w for e in ents for w in e.split()}

    def push(self, key: float, ents: Tuple_) -> None:
        old = self.keys.get(ents)
        if old is not None:
            if key <= old:
                return
            self.heap.remove((old, ents))
            heapq.heapify(self.heap)
            self.words.subtract(self._words(ents))
            del self.keys[ents]
        words = self._words(ents)
        if any(self.words[w] >= self.max_word_repeat for w in words):
            return
        heapq.heappush(self.heap, (key, ents))
        self.keys[ents] = key
        self.words.update(words)
        if len(self.heap) > self.n:
            _, gone = heapq.heappop(self.heap)
            del self.keys[gone]
            self.words.subtract(self._words(gone))

    def result(self) -> list[tuple[Tuple_, float]]:
        return [(ents, key) for key, ents in sorted(self.heap, reverse=True)]


class TupleSearch:
    """One relation's search: weighted prompts (weight > 0) over one masked LM."""

    def __init__(self, mlm: MaskedLM, weighted_prompts: Mapping[str, float], opts: SearchOptions):
        self.mlm, self.opts = mlm, opts
        self.prompts = [(p, w) for p, w in weighted_prompts.items() if w > 0]
        if not self.prompts:
            raise ValueError("no prompt has a positive weight")
        self.n_ents = len(set(SLOT.findall(self.prompts[0][0])))
        self.nodes = 0
        """Search states whose next-token distribution was computed (P forward rows each)."""

    # ---- the distribution at the next mask ---------------------------------------------------------
    def _masked_text(self, prompt: str, chosen: Sequence[str], cur: Sequence[int], n_masks: Sequence[int]) -> tuple[str, int]:
        """The prompt with earlier entities filled, the current partial entity plus its remaining
        masks, later entities as masks; and the index (among the masks) of the next one to fill."""
        idx = len(chosen)
        mask = self.mlm.mask_text
        fills = {j: chosen[j] for j in range(idx)}
        fills[idx] = (self.mlm.decode(cur).strip().lower() if cur else "") + mask * (n_masks[idx] - len(cur))
        for j in range(idx + 1, self.n_ents):
            fills[j] = mask * n_masks[j]
        before = 0
        for m in SLOT.finditer(prompt):
            j = int(m.group(1))
            if j == idx:
                break
            if j > idx:
                before += n_masks[j]
        text = SLOT.sub(lambda m: fills[int(m.group(1))], prompt)
        return text, before

    def next_logprobs(self, chosen: Sequence[str], cur: Sequence[int], n_masks: Sequence[int]) -> torch.Tensor:
        """log_softmax of the weighted average of raw logits at the next mask, banned ids at -inf."""
        rows, reads = [], []
        for prompt, _ in self.prompts:
            text, k = self._masked_text(prompt, chosen, cur, n_masks)
            ids, _ = self.mlm.encode(text)
            where = [i for i, t in enumerate(ids) if t == self.mlm.mask_id]
            rows.append(ids)
            reads.append(where[k])
        self.nodes += 1
        total_w = sum(w for _, w in self.prompts)
        mixed = sum(w * lg[pos] for (_, w), lg, pos in zip(self.prompts, self.mlm.logits(rows), reads))
        mixed = mixed / total_w
        mixed[self.mlm.banned_ids] = float("-inf")
        return torch.log_softmax(mixed, dim=-1)

    def filled_prompts(self, chosen: Sequence[str]) -> list[str]:
        out = []
        for prompt, _ in self.prompts:
            for j, e in enumerate(chosen):
                prompt = prompt.replace(slot(j), e)
            out.append(prompt)
        return out

    def accept(self, ids: Sequence[int], chosen: Sequence[str]) -> Optional[str]:
        """The entity these tokens spell, or None when a filter rejects it."""
        ent = self.mlm.decode(ids).strip().lower()
        why = entity_rejection(ent, chosen, self.filled_prompts(chosen), min_chars=self.opts.min_entity_chars)
        return None if why else ent

    # ---- the pruned search ---------------------------------------------------------------------------
    def run(self) -> list[tuple[Tuple_, float]]:
        """The top tuples by key, best first (unique)."""
        heap = _TupleHeap(self.opts.max_tuples, self.opts.max_word_repeat)
        for n_masks in itertools.product(range(1, self.opts.max_subwords + 1), repeat=self.n_ents):
            self._tuple(heap, [], 0.0, n_masks)
        return heap.result()

    def _tuple(self, heap: _TupleHeap, chosen: list[str], key: float, n_masks: Sequence[int]) -> None:
        if len(chosen) == self.n_ents:
            heap.push(key, tuple(chosen))
            return
        cap = self.opts.first_entity_candidates if not chosen else self.opts.later_entity_candidates
        ents: list[tuple[float, str]] = []
        self._entity(heap, ents, cap, chosen, [], 0.0, n_masks)
        for ent_key, ent in sorted(ents, key=lambda kv: (-kv[0], kv[1])):
            k = min(key, ent_key)
            if heap.full and k < heap.floor:
                break
            self._tuple(heap, chosen + [ent], k, n_masks)

    def _entity(self, heap: _TupleHeap, ents: list[tuple[float, str]], cap: int, chosen: list[str],
                cur: list[int], running: float, n_masks: Sequence[int]) -> None:
        if len(cur) == n_masks[len(chosen)]:
            ent = self.accept(cur, chosen)
            if ent is not None and all(e != ent for _, e in ents):
                heapq.heappush(ents, (running, ent))
                if len(ents) > cap:
                    heapq.heappop(ents)
            return
        lp = self.next_logprobs(chosen, cur, n_masks)
        vals, order = torch.sort(lp, descending=True)
        for v, t in zip(vals.tolist(), order.tolist()):
            r = min(running, v) if cur else v
            if r == float("-inf"):
                break
            if (len(ents) >= cap and r < ents[0][0]) or (heap.full and r < heap.floor):
                break
            if not token_visitable(self.mlm.piece(t)):
                continue
            self._entity(heap, ents, cap, chosen, cur + [t], r, n_masks)

    # ---- the enumeration it must equal ---------------------------------------------------------------
    def brute_force(self) -> list[tuple[Tuple_, float]]:
        """Every tuple's key by enumerating every token path (no pruning, no heaps), then the top n
        by the same order; word-repeat and entity caps are not applied (set them >= n and >= vocab)."""
        keys: dict[Tuple_, float] = {}

        def walk_tuple(chosen: list[str], key: float, n_masks: Sequence[int]) -> None:
            if len(chosen) == self.n_ents:
                t = tuple(chosen)
                keys[t] = max(keys.get(t, float("-inf")), key)
                return
            found: dict[str, float] = {}
            walk_entity(chosen, [], 0.0, n_masks, lambda e, r: found.__setitem__(e, max(found.get(e, r), r)))
            for ent, r in found.items():
                walk_tuple(chosen + [ent], min(key, r), n_masks)

        def walk_entity(chosen: list[str], cur: list[int], running: float, n_masks: Sequence[int],
                        emit: Callable[[str, float], None]) -> None:
            if len(cur) == n_masks[len(chosen)]:
                ent = self.accept(cur, chosen)
                if ent is not None:
                    emit(ent, running)
                return
            lp = self.next_logprobs(chosen, cur, n_masks)
            for t, v in enumerate(lp.tolist()):
                if v != float("-inf") and token_visitable(self.mlm.piece(t)):
                    walk_entity(chosen, cur + [t], min(running, v) if cur else v, n_masks, emit)

        for n_masks in itertools.product(range(1, self.opts.max_subwords + 1), repeat=self.n_ents):
            walk_tuple([], 0.0, n_masks)
        ranked = sorted(((k, t) for t, k in keys.items()), reverse=True)  # the heap's order: key, then tuple
        return [(t, k) for k, t in ranked[:self.opts.max_tuples]]
