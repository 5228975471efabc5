"""MFU of the glassbox trainer for a ~1B LLaMA (TinyLlama's shape: 22 layers, hidden 2048, GQA 32/4
heads, vocab 32000) in bf16 mixed precision on one GPU; the plain torch loop beside it. Target >= 45%.

MFU = tokens/s x (6N + 12 L H T) / peak dense bf16 FLOP/s (PaLM's formula; N without the input
embedding). The peak comes from the device name (H100/H200: 989.5 TFLOP/s) or GLASSBOX_PEAK_TFLOPS.

    python bench/pretrain/gpu_mfu.py                # on a GPU
    python bench/pretrain/gpu_mfu.py --compile      # with torch.compile
    python bench/pretrain/gpu_mfu.py --sweep        # every speed option, one row each (one command)
    python bench/pretrain/gpu_mfu.py --smoke        # 2 steps of a tiny config, CPU is fine

The trainer's options are the spec's: --compile (training.compile), --loss-chunk N
(training.lossChunkTokens), --bf16-params (training.paramDtype bf16). --sweep runs eager with the
plain-loop baseline, then each option added in turn, and prints one MFU table.
"""

from __future__ import annotations

import argparse
import time

import torch

from common import argv, header, llama_config, median, random_tokens, table
from tokens_per_second import add_trainer_options, build, options, run_glassbox, run_plain

# --sweep: (label, option overrides) in the order they are expected to pay (bench/pretrain/RESULTS.md).
SWEEP = [
    ("eager", {}),
    ("torch.compile", {"compile": True}),
    ("compile + lossChunkTokens 4096", {"compile": True, "loss_chunk": 4096}),
    ("compile + lossChunkTokens 4096 + paramDtype bf16", {"compile": True, "loss_chunk": 4096, "bf16_params": True}),
    ("the same, micro-batch 12", {"compile": True, "loss_chunk": 4096, "bf16_params": True, "micro_batch": 12}),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny config, 2 steps (checks the script runs)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--layers", type=int, default=22)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--inter", type=int, default=5632)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--sweep", action="store_true", help="every option in turn (see SWEEP), one table")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_trainer_options(p)
    args = p.parse_args()
    if args.smoke:
        args.layers, args.hidden, args.inter, args.heads, args.kv_heads, args.vocab = 2, 64, 128, 4, 2, 512
        args.seq, args.micro_batch, args.steps, args.warmup = 64, 2, 2, 1
        args.loss_chunk = min(args.loss_chunk, 32) if args.loss_chunk else 0
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    cfg = llama_config(vocab=args.vocab, hidden=args.hidden, layers=args.layers, heads=args.heads,
                       inter=args.inter, seq=args.seq)
    cfg.num_key_value_heads = args.kv_heads
    from glassbox_workloads.pretrain.train import flops_per_token, peak_flops

    probe = build(cfg) if args.smoke else None
    if probe is None:
        with torch.device("meta"):
            probe = build(cfg)
    fpt = flops_per_token(probe, args.seq)
    n_params = sum(x.numel() for x in probe.parameters())
    del probe
    peak = peak_flops(torch.device(args.device))
    mfu = lambda tps: f"{tps * fpt / peak * 100:.1f}%" if peak else "n/a (no peak for this device)"  # noqa: E731
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    title = f"LLaMA {n_params / 1e9:.2f}B, bf16, batch {args.micro_batch}x{args.seq}, {name}, {fpt / 1e9:.2f} GFLOP/token"
    if args.sweep:
        return sweep(cfg, args, mfu, title)
    tokens = random_tokens(args.micro_batch * (args.warmup + args.steps) * 2, args.seq, args.vocab)
    gb, pl = [], []
    for r in range(args.runs):
        t0 = time.time()
        gb.append(run_glassbox(cfg, tokens, args))
        _free()
        if not args.no_baseline:
            pl.append(run_plain(cfg, tokens, args))
            _free()
        print(f"run {r + 1} ({time.time() - t0:.0f} s): glassbox {gb[-1]:,.0f} tok/s"
              + (f", plain {pl[-1]:,.0f} tok/s" if pl else ""), flush=True)
    print()
    print(header(argv(), args.runs))
    rows = [("tokens/s (median)", f"{median(gb):,.0f}", f"{median(pl):,.0f}" if pl else "-",
             f"{median(gb) / median(pl):.3f}x" if pl else "-"),
            ("MFU", mfu(median(gb)), mfu(median(pl)) if pl else "-", "target >= 45%"),
            ("peak GPU memory", _peak_mem(args), "", "")]
    print(table(f"{title}, trainer {options(args)}", rows,
                header=("metric", "glassbox trainer", "plain torch loop", "ratio")))


def sweep(cfg, args, mfu, title: str) -> None:
    """One run per configuration of SWEEP (the first with the plain loop beside it), one table."""
    import copy

    rows, plain = [], None
    for label, over in SWEEP:
        a = copy.copy(args)
        a.compile, a.loss_chunk, a.bf16_params = False, 0, False
        for k, v in over.items():
            setattr(a, k, v)
        if args.smoke and a.loss_chunk:
            a.loss_chunk = 32
        tokens = random_tokens(a.micro_batch * (a.warmup + a.steps) * 2, a.seq, a.vocab)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        try:
            tps = run_glassbox(cfg, tokens, a)
            row = (label, f"{tps:,.0f}", mfu(tps), _peak_mem(a))
        except torch.OutOfMemoryError:
            row = (label, "out of memory", "-", _peak_mem(a))
        _free()
        if plain is None:
            plain = run_plain(cfg, tokens, a)
            _free()
            rows.append(("plain torch loop, eager", f"{plain:,.0f}", mfu(plain), "-"))
        rows.append(row)
        print(f"{label} ({time.time() - t0:.0f} s): {row[1]} tok/s, MFU {row[2]}", flush=True)
    print()
    print(header(argv(), 1))
    print(table(f"{title}, target MFU >= 45%", rows, header=("configuration", "tokens/s", "MFU", "peak memory")))


def _peak_mem(args) -> str:
    return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if args.device == "cuda" else "-"


def _free() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
