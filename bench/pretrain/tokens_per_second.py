"""Tokens/s of the glassbox trainer (Trainer.train_step: data plan, strategy, clipping, lr schedule,
per-step loss sync) vs a plain torch loop, same model, same batches, same optimizer. Target >= 0.95x.

Runs alternate (glassbox, plain, glassbox, ...) so background load hits both alike; each run times
`--steps` steps after `--warmup` untimed ones, and the table reports the median run.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from common import argv, header, llama_config, median, random_tokens, synthetic_manifest, table


def spec_like(micro: int, accum: int, steps: int, loss_chunk: int = 0, bf16_params: bool = False):
    opt = SimpleNamespace(lr=3e-4, min_lr=3e-5, beta1=0.9, beta2=0.95, weight_decay=0.1, eps=1e-8)
    training = SimpleNamespace(micro_batch_size=micro, gradient_accumulation_steps=accum, optimizer=opt,
                               grad_clip=1.0, warmup_steps=10, precision="bf16", max_steps=steps, strategy="ddp",
                               loss_chunk_tokens=loss_chunk, param_dtype="bf16" if bf16_params else "fp32")
    return SimpleNamespace(training=training, data=SimpleNamespace(seq_length=None))


def build(cfg, seed=0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)


def run_glassbox(cfg, tokens, args) -> float:
    from glassbox_workloads.pretrain.config import TrainConfig
    from glassbox_workloads.pretrain.data import DataPlan, PreparedData
    from glassbox_workloads.pretrain.strategy import DistInfo, make_strategy
    from glassbox_workloads.pretrain.train import Trainer

    dev = torch.device(args.device)
    spec = spec_like(args.micro_batch, 1, args.warmup + args.steps, getattr(args, "loss_chunk", 0),
                     getattr(args, "bf16_params", False))
    spec.data.seq_length = args.seq
    tcfg = TrainConfig(spec)
    data = PreparedData(None, tokens, torch.zeros(len(tokens), dtype=torch.int16), synthetic_manifest(len(tokens), args.seq))
    plan = DataPlan(data.manifest, tcfg.global_batch, args.warmup + args.steps)
    dist = DistInfo(device=dev)
    strategy = make_strategy("ddp", build(cfg).to(dev).train(), spec.training, dist, micro_batch=args.micro_batch, grad_accum=1)
    if getattr(args, "compile", False):
        strategy.compile()
    trainer = Trainer(tcfg, strategy, data, plan, dist)
    for s in range(args.warmup):
        trainer.train_step(s)
    _sync(dev)
    t0 = time.perf_counter()
    for s in range(args.warmup, args.warmup + args.steps):
        trainer.train_step(s)
    _sync(dev)
    return args.steps * args.micro_batch * args.seq / (time.perf_counter() - t0)


def run_plain(cfg, tokens, args) -> float:
    """The loop anyone would write: same batches in the same order, AdamW, clipping, loss.item()."""
    from glassbox_workloads.pretrain.data import DataPlan

    dev = torch.device(args.device)
    model = build(cfg).to(dev).train()
    kw = {"fused": True} if dev.type == "cuda" else {"foreach": True}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, **kw)
    if getattr(args, "compile", False):
        model = torch.compile(model)
    plan = DataPlan(synthetic_manifest(len(tokens), args.seq), args.micro_batch, args.warmup + args.steps)
    batches = [tokens[plan.global_batch_at(s)].long() for s in range(args.warmup + args.steps)]
    bf16 = dev.type == "cuda"

    def step(x):
        x = x.to(dev, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=x[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for x in batches[: args.warmup]:
        step(x)
    _sync(dev)
    t0 = time.perf_counter()
    for x in batches[args.warmup:]:
        step(x)
    _sync(dev)
    return args.steps * args.micro_batch * args.seq / (time.perf_counter() - t0)


def add_trainer_options(p: argparse.ArgumentParser) -> None:
    """The trainer's speed options (spec.training fields); the plain loop never uses them."""
    p.add_argument("--compile", action="store_true", help="training.compile (both loops)")
    p.add_argument("--loss-chunk", type=int, default=0, help="training.lossChunkTokens (glassbox only)")
    p.add_argument("--bf16-params", action="store_true",
                   help="training.paramDtype bf16 (glassbox only; bf16 is on only on a GPU)")


def options(args) -> str:
    on = [n for n, v in (("torch.compile", args.compile), (f"lossChunkTokens {args.loss_chunk}", args.loss_chunk),
                         ("paramDtype bf16", args.bf16_params)) if v]
    return ", ".join(on) or "defaults"


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_trainer_options(p)
    args = p.parse_args()
    cfg = llama_config(hidden=args.hidden, layers=args.layers, seq=args.seq, inter=int(args.hidden * 8 / 3 // 8 * 8))
    tokens = random_tokens(args.micro_batch * (args.warmup + args.steps) * 2, args.seq, cfg.vocab_size)
    gb, pl = [], []
    for r in range(args.runs):
        gb.append(run_glassbox(cfg, tokens, args))
        pl.append(run_plain(cfg, tokens, args))
        print(f"run {r + 1}: glassbox {gb[-1]:,.0f} tok/s  plain {pl[-1]:,.0f} tok/s", flush=True)
    params = sum(p.numel() for p in build(cfg).parameters())
    print()
    print(header(argv(), args.runs))
    print(table(f"tokens/s, LLaMA {params / 1e6:.1f}M params, batch {args.micro_batch}x{args.seq}, {args.device}, "
                f"trainer {options(args)}", [
        ("tokens/s (median)", f"{median(gb):,.0f}", f"{median(pl):,.0f}", f"{median(gb) / median(pl):.3f}x"),
        ("tokens/s (best)", f"{max(gb):,.0f}", f"{max(pl):,.0f}", f"{max(gb) / max(pl):.3f}x"),
    ], header=("metric", "glassbox trainer", "plain torch loop", "ratio")))


if __name__ == "__main__":
    main()
