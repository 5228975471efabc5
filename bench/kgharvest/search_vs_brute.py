"""Masked-LM forward rows of BertNet's pruned branch-and-bound search vs the brute-force enumeration
of every tuple, with the same top-n output (checked where the enumeration runs).

Part 1, the tiny example's sizes: the capitals MLM (pretrained exactly as examples/kgharvest-tiny.yaml
does), its prompts weighted on its seeds, maxTuples 200. With maxSubwords 1 both searches run and
their top n are compared; with maxSubwords 2 (the example's setting) the enumeration would take
millions of rows, so its row count is computed from the tree it would walk (that tree does not
depend on the logits: only on which tokens are visitable and which entities pass the filters).

Part 2, growth with the vocabulary: random-init 1-layer BERTs over V synthetic words, maxSubwords 1,
maxTuples 20, both searches run, top n compared.

    python bench/kgharvest/search_vs_brute.py [--vocab 100 400 1600]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time

import torch

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.kgharvest import Pretrain

from glassbox_workloads.kgharvest.filters import entity_rejection, token_visitable
from glassbox_workloads.kgharvest.harvest import weigh
from glassbox_workloads.kgharvest.mlm import MaskedLM
from glassbox_workloads.kgharvest.prompts import clean_seed, fix_prompt_style
from glassbox_workloads.kgharvest.search import SearchOptions, TupleSearch
from glassbox_workloads.kgharvest.weights import WeightOptions

OPEN = dict(first_entity_candidates=10**6, later_entity_candidates=10**6, max_word_repeat=10**6)
"""Candidate and word-repeat caps lifted: the enumeration has none, so only then is the same top n
the search's promise (the caps only ever cut more)."""
PROMPTS = ["<ENT1> is the capital of <ENT0>.", "The capital city of <ENT0> is <ENT1>."]
SEEDS = [["France", "Paris"], ["Japan", "Tokyo"], ["Italy", "Rome"], ["Egypt", "Cairo"], ["Peru", "Lima"]]


def capitals_mlm() -> MaskedLM:
    from transformers import AutoModelForMaskedLM

    from glassbox_workloads.kgharvest.corpus import pretrain_mlm
    from glassbox_workloads.kgharvest.facts import capitals_corpus
    from glassbox_workloads.runtime import hfmodels

    lines = capitals_corpus()
    spec = ModelSpec.model_validate({"architecture": "bert", "config": {
        "vocabSize": 1024, "hiddenSize": 64, "intermediateSize": 128, "numLayers": 2, "numHeads": 2,
        "maxPositionEmbeddings": 128}})
    loaded = hfmodels.load(spec, AutoModelForMaskedLM, tokenizer_texts=lines, tokenizer_level="word")
    pretrain_mlm(loaded.model, loaded.tokenizer, lines, Pretrain.model_validate(
        {"corpus": {"uri": "x", "format": "text"}, "steps": 600}))
    return MaskedLM(loaded.model, loaded.tokenizer)


def weighted(mlm: MaskedLM) -> dict[str, float]:
    prompts = [fix_prompt_style(p) for p in PROMPTS]
    return {w.prompt: w.weight for w in weigh(mlm, prompts, [clean_seed(s) for s in SEEDS], WeightOptions())}


def brute_rows_counted(s: TupleSearch) -> int:
    """Rows the enumeration would run: one per weighted prompt at every inner node of the token tree
    of every entity under every subword configuration (a 2-entity relation)."""
    mlm, opts = s.mlm, s.opts
    banned = set(mlm.banned_ids.tolist())
    visit = [t for t in range(mlm.vocab_size) if t not in banned and token_visitable(mlm.piece(t))]
    prompts = [p for p, _ in s.prompts]
    total = 0
    for n_masks in itertools.product(range(1, opts.max_subwords + 1), repeat=s.n_ents):
        inner0 = sum(len(visit) ** k for k in range(n_masks[0]))
        inner1 = sum(len(visit) ** k for k in range(n_masks[1]))
        ents0 = sum(1 for ids in itertools.product(visit, repeat=n_masks[0])
                    if entity_rejection(mlm.decode(ids).strip().lower(), [], prompts,
                                        min_chars=opts.min_entity_chars) is None)
        total += inner0 + ents0 * inner1
    return total * len(prompts)


def measure(mlm: MaskedLM, prompts: dict[str, float], opts: SearchOptions, run_brute: bool) -> dict:
    mlm.reset_counters()
    t0 = time.time()
    got = TupleSearch(mlm, prompts, opts).run()
    row = {"pruned": mlm.forward_rows, "pruned_s": time.time() - t0, "n": len(got)}
    s = TupleSearch(mlm, prompts, opts)
    if run_brute:
        mlm.reset_counters()
        t0 = time.time()
        want = s.brute_force()
        row.update(brute=mlm.forward_rows, brute_s=time.time() - t0,
                   same=[e for e, _ in got] == [e for e, _ in want], counted=brute_rows_counted(s))
    else:
        row.update(brute=brute_rows_counted(s), brute_s=None, same=None, counted=None)
    row["ratio"] = row["brute"] / row["pruned"]
    return row


def random_mlm(v: int) -> MaskedLM:
    from transformers import BertConfig, BertForMaskedLM

    from glassbox_workloads.runtime.hfmodels import train_tokenizer

    words = ["".join(w) for w in itertools.islice(itertools.product("bcdfghklmnprstvz", "aeiou", "bcdfghklmnprstvz", "aeiou"), v)]
    tok = train_tokenizer([" ".join(words) + " lives in the and are words capital city of is ."], "bert", v + 64, level="word")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    return MaskedLM(BertForMaskedLM(cfg), tok)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, nargs="*", default=[100, 400, 1600])
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()} {platform.processor() or ''} torch {torch.__version__} threads 1")
    mlm = capitals_mlm()
    prompts = weighted(mlm)
    print(f"capitals MLM vocab {len(mlm.tokenizer)}, prompt weights {prompts}")
    print("| setting | tuples | pruned rows | brute-force rows | ratio | same top n | pruned s | brute s |")
    print("|---|---|---|---|---|---|---|---|")
    for sub, brute in ((1, True), (2, False)):
        r = measure(mlm, prompts, SearchOptions(max_tuples=200, max_subwords=sub, **OPEN), brute)
        print(f"| tiny example, maxSubwords {sub} | {r['n']} | {r['pruned']:,} | {r['brute']:,}{'' if brute else ' (counted)'} "
              f"| {r['ratio']:.1f}x | {r['same'] if r['same'] is not None else 'n/a'} | {r['pruned_s']:.1f} | "
              f"{'%.1f' % r['brute_s'] if r['brute_s'] else '-'} |")
    print("\n| vocabulary | pruned rows | brute-force rows | ratio | same top n |")
    print("|---|---|---|---|---|")
    for v in args.vocab:
        m = random_mlm(v)
        ps = {"<ENT0> lives in the <ENT1> .": 0.6, "<ENT0> and <ENT1> are words .": 0.4}
        r = measure(m, ps, SearchOptions(max_tuples=20, max_subwords=1, **OPEN), True)
        print(f"| {len(m.tokenizer)} | {r['pruned']:,} | {r['brute']:,} | {r['ratio']:.1f}x | {r['same']} |")


if __name__ == "__main__":
    main()
