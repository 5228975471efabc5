"""bf16 parameters with an fp32 master copy (training.paramDtype bf16).

Under autocast the parameters stay fp32 and every matmul re-casts its weight to bf16, every step,
forward and backward. Keeping the parameters themselves in bf16 removes those casts and halves the
weight and gradient traffic; updating bf16 weights directly would lose small updates to rounding,
so the optimizer steps an fp32 master copy (a twin module, so its state is keyed by the same
parameter names as every other strategy's) and the rounded result is written back after each
step. Checkpoints publish the master, so a resumed run continues from fp32, not rounded, weights.
"""

from __future__ import annotations

import copy

import torch


class MasterCopy:
    """An fp32 twin of `model`; `model` itself is cast to bf16 in place."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.bfloat16):
        self.master = copy.deepcopy(model).float()
        for p in self.master.parameters():
            p.grad = None
        self.model = model.to(dtype)
        self._pairs = [(p, m) for p, m in zip(self.model.parameters(), self.master.parameters()) if p.requires_grad]

    def grads_to_master(self) -> None:
        """The model's bf16 gradients, in fp32, become the master's (clipping then sees fp32 grads)."""
        for p, m in self._pairs:
            m.grad = None if p.grad is None else p.grad.float()

    @torch.no_grad()
    def write_back(self) -> None:
        """Round the stepped master into the model's parameters; drop both sets of gradients."""
        for p, m in self._pairs:
            p.copy_(m)
            p.grad = None
            m.grad = None
