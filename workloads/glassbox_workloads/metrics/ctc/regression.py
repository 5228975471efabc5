"""R aligner: one regressed alignment score per (input, context) pair (CTC's BLEURT aligner).

The model is an encoder with a one-output regression head (transformers'
*ForSequenceClassification with num_labels=1) over the pair `(input, context)`, truncating the
context; it is trained on the aggregated weak label (train.regression_targets). Its output is the
score as it is: no per-token aggregation.

Public:
- RegressionAligner(model, tokenizer, batch_size=16, device="cpu", clean=True):
  predict(inputs, contexts) -> torch.Tensor [n] (grad-enabled; training uses it);
  align_many(inputs, contexts) -> list[Alignment(tokens=None, scores=[s])].
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..text import ctc_clean
from .aligner import Aligner, Alignment
from .embedding import model_max_length


class RegressionAligner(Aligner):
    """Sequence-level alignment regression (R)."""

    kind = "regression"

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, device: str = "cpu", clean: bool = True):
        if getattr(model.config, "num_labels", None) != 1:
            raise TypeError("an R aligner needs a sequence regression model with num_labels=1")
        self.model, self.tokenizer = model.to(device), tokenizer
        self.batch_size, self.device, self.clean = batch_size, device, clean
        self.max_length = model_max_length(model, tokenizer)

    def predict(self, inputs: Sequence[str], contexts: Sequence[str]) -> torch.Tensor:
        """The regressed score of each pair (inputs already cleaned)."""
        enc = self.tokenizer(list(inputs), list(contexts), truncation="only_second", max_length=self.max_length,
                             padding=True, return_tensors="pt").to(self.device)
        return self.model(**enc).logits[:, 0]

    @torch.no_grad()
    def align_many(self, inputs: Sequence[str], contexts: Sequence[str]) -> list[Alignment]:
        """One score per pair, as a sequence-level Alignment."""
        self.model.eval()
        if self.clean:
            inputs, contexts = [ctc_clean(x) for x in inputs], [ctc_clean(c) for c in contexts]
        out: list[Alignment] = []
        for i in range(0, len(inputs), self.batch_size):
            scores = self.predict(inputs[i:i + self.batch_size], contexts[i:i + self.batch_size]).tolist()
            out.extend(Alignment(None, [float(s)]) for s in scores)
        return out
