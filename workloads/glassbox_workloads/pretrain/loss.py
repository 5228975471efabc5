"""Next-token cross-entropy, plain or fused with the output projection chunk by chunk.

The plain loss materialises fp32 logits of tokens x vocabulary (for a ~1B LLaMA at 8 x 2048 tokens
and 32000 words: 2 GiB, plus its softmax and gradient), the largest tensor of the step. The fused
form (Liger's FusedLinearCrossEntropy, done in plain torch) runs the output projection over
`chunk` tokens at a time and takes the gradients with respect to the hidden states and the weight
right there in the forward pass, so only one chunk's logits live at a time and the backward pass
is a scaling of tensors already computed. Same maths; the sum runs in another order, so results
agree to rounding.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F


def plain_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position, in fp32 whatever the logits' dtype."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1))


class _FusedLinearCrossEntropy(torch.autograd.Function):
    """mean_t CE(h_t W^T, y_t): gradients of h and W computed per chunk in forward, scaled in backward."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk: int):
        n = hidden.shape[0]
        # The matmuls run in the compute dtype (bf16 under autocast, as lm_head would), the
        # softmax in fp32, as the plain path's logits.float() does.
        dtype = torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type) else hidden.dtype
        h_all, w = hidden.to(dtype), weight.to(dtype)
        grad_h = torch.empty_like(hidden)
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for s in range(0, n, chunk):
            h, y = h_all[s:s + chunk], labels[s:s + chunk]
            logits = (h @ w.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, y[:, None]).squeeze(1)).sum()
            # d(sum CE)/d logits = softmax - onehot; the 1/n of the mean is applied once below.
            g = torch.softmax(logits, dim=-1)
            g[torch.arange(len(y), device=y.device), y] -= 1.0
            g = g.to(dtype)
            grad_h[s:s + chunk] = (g @ w).to(hidden.dtype)
            grad_w += (g.t() @ h).float()  # accumulated in fp32 over the chunks
        ctx.save_for_backward(grad_h, grad_w)
        ctx.n, ctx.w_dtype = n, weight.dtype
        return total / n

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        scale = grad_out / ctx.n
        return (grad_h * scale.to(grad_h.dtype)), (grad_w * scale).to(ctx.w_dtype), None, None


def fused_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk: int) -> torch.Tensor:
    """Mean cross-entropy of (hidden @ weight.T) against labels, `chunk` positions at a time.

    hidden (..., H), weight (V, H), labels (...); gradients flow to hidden and weight.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    h = hidden.reshape(-1, hidden.shape[-1])
    return _FusedLinearCrossEntropy.apply(h, weight, labels.reshape(-1), chunk)


def output_layer(model) -> torch.nn.Module:
    """The model's output projection (lm_head for LLaMA and GPT-2), bias-free as the fused loss needs."""
    head = model.get_output_embeddings()
    if head is None or not isinstance(head, torch.nn.Linear) or head.bias is not None:
        raise ValueError(f"training.lossChunkTokens needs a bias-free linear output layer; {type(model).__name__} has {head!r}")
    return head


def _identity(hidden: torch.Tensor) -> torch.Tensor:
    return hidden


@contextlib.contextmanager
def hidden_states_out(model) -> Iterator[torch.nn.Linear]:
    """While open, the model's forward returns the final hidden states in place of logits.

    The forward still goes through every wrapper (DDP, FSDP, the DeepSpeed engine, torch.compile),
    so their hooks run as usual; only the output layer's own matmul is skipped, to be done chunk by
    chunk by fused_cross_entropy with the weight this yields.
    """
    head = output_layer(model)
    head.forward = _identity  # an instance attribute: Module.__call__ finds it before the class's
    try:
        yield head
    finally:
        del head.forward
