"""Per-checkpoint analysis: held-out perplexity and Analysis360-style memorization.

Memorization: the prompt is the first `prompt_tokens` tokens of a training sample; the model
greedily generates `generate_tokens` more; token_match is the mean fraction of generated tokens
equal to the sample's true continuation, full_match the fraction of samples matched entirely.

Both split their samples over the ranks (strided) and sum with all_reduce, with every rank running
the same number of forward passes (padding batches weigh zero), so sharded models (FSDP) work too.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _share(indices: Sequence[int], rank: int, world: int, batch: int) -> tuple[list[list[int]], int]:
    mine = list(indices[rank::world])
    n_batches = max(math.ceil(len(indices[r::world]) / batch) for r in range(world)) if indices else 0
    return [mine[i * batch:(i + 1) * batch] for i in range(n_batches)], n_batches


def _all_sum(t: torch.Tensor) -> torch.Tensor:
    d = _dist()
    if d is not None:
        d.all_reduce(t, op=d.ReduceOp.SUM)
    return t


@torch.no_grad()
def perplexity(model, tokens: torch.Tensor, indices: Sequence[int], *, batch_size: int = 8,
               device: torch.device | str = "cpu", rank: int = 0, world: int = 1,
               autocast: Callable | None = None) -> dict[str, float]:
    """exp(mean next-token NLL) over the given samples (rows of tokens, seq_length+1 each)."""
    batches, _ = _share(indices, rank, world, batch_size)
    nll = torch.zeros((), dtype=torch.float64)
    count = torch.zeros((), dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        for b in batches:
            rows = b or [indices[0]]  # a padding batch keeps forward counts equal across ranks
            x = tokens[rows].long().to(device)
            with autocast() if autocast else _null():
                logits = model(input_ids=x[:, :-1]).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
            if b:
                nll += loss.double().cpu()
                count += x[:, 1:].numel()
    finally:
        model.train(was_training)
    both = _all_sum(torch.stack([nll, count]))
    if both[1] == 0:
        return {}
    mean = (both[0] / both[1]).item()
    return {"perplexity": math.exp(mean), "heldout_loss": mean}


def _cache_arg(model) -> str:
    # transformers 5.x renamed past_key_values to cache; accept either spelling.
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@torch.no_grad()
def greedy_generate(model, prompt: torch.Tensor, n: int, autocast: Callable | None = None) -> torch.Tensor:
    """n greedy tokens after prompt [B, P] (no EOS stop: the comparison needs exactly n)."""
    out = []
    arg = _cache_arg(model)
    with autocast() if autocast else _null():
        res = model(input_ids=prompt, use_cache=True)
        nxt = res.logits[:, -1].argmax(-1, keepdim=True)
        out.append(nxt)
        for _ in range(n - 1):
            res = model(input_ids=nxt, use_cache=True, **{arg: getattr(res, arg)})
            nxt = res.logits[:, -1].argmax(-1, keepdim=True)
            out.append(nxt)
    return torch.cat(out, dim=1)


@torch.no_grad()
def memorization(model, tokens: torch.Tensor, indices: Sequence[int], *, prompt_tokens: int = 32,
                 generate_tokens: int = 32, batch_size: int = 8, device: torch.device | str = "cpu",
                 rank: int = 0, world: int = 1, autocast: Callable | None = None) -> dict[str, float]:
    """Analysis360 memorization over training samples: token_match and full_match in [0, 1]."""
    if prompt_tokens + generate_tokens > tokens.shape[1]:
        raise ValueError(
            f"memorization needs promptTokens + generateTokens <= seqLength+1 ({tokens.shape[1]})")
    batches, _ = _share(indices, rank, world, batch_size)
    sums = torch.zeros(3, dtype=torch.float64)  # token_match sum, full_match sum, samples
    was_training = model.training
    model.eval()
    try:
        for b in batches:
            rows = b or [indices[0]]
            x = tokens[rows].long().to(device)
            prompt = x[:, :prompt_tokens]
            truth = x[:, prompt_tokens:prompt_tokens + generate_tokens]
            gen = greedy_generate(model, prompt, generate_tokens, autocast)
            eq = (gen == truth).double().cpu()
            if b:
                sums += torch.stack([eq.mean(1).sum(), eq.all(1).double().sum(), torch.tensor(float(len(b)))])
    finally:
        model.train(was_training)
    sums = _all_sum(sums)
    if sums[2] == 0:
        return {}
    return {"memorization_token_match": (sums[0] / sums[2]).item(),
            "memorization_full_match": (sums[1] / sums[2]).item(),
            "memorization_samples": sums[2].item()}


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False
