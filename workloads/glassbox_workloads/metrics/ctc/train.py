"""Training the D and R aligners on weakly labelled examples (CTC train/finetune.py).

The defaults are the authors': AdamW lr 1e-5, batch 1 x accumulation 16, linear warmup over 10 % of
the steps then linear decay, weight decay 0.01, eps 1e-8, 1 epoch, the best checkpoint by validation
F1 of the hallucinated class (D) or by validation MSE (R). Tiny tests raise lr and epochs.

Public:
- TrainConfig(lr, batch_size, accumulation, warmup, weight_decay, eps, epochs, seed, evals_per_epoch).
- evaluate_discriminative(aligner, examples) -> dict: token-level loss, accuracy, F1 and ROC-AUC of
  the hallucinated class (scored by 1 - P(aligned)); words the tokenizer drops are left out.
- train_discriminative(aligner, train, val, config) -> (aligner with the best weights, eval dict).
- regression_targets(examples, how="mean", remove_stopwords=False) -> list[float]: the aggregated
  alignment label, aggregate(1 - label) (CTC's convert_constructed_data_to_bleurt_format).
- train_regression(aligner, train, val, config, how, remove_stopwords) -> (aligner, eval dict).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .aligner import Aggregation, Alignment, aggregate
from .discriminative import DiscriminativeAligner
from .regression import RegressionAligner
from .weak import WeakExample


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule of aligner training (defaults: CTC's finetune.py)."""

    lr: float = 1e-5
    batch_size: int = 1
    accumulation: int = 16
    warmup: float = 0.1
    """Fraction of the optimizer steps spent warming up linearly."""
    weight_decay: float = 0.01
    eps: float = 1e-8
    epochs: int = 1
    seed: int = 0
    evals_per_epoch: int = 1
    """Validation passes per epoch; the best one's weights are kept."""


def _token_stats(pairs: list[tuple[list[int], torch.Tensor]], examples: Sequence[WeakExample]) -> tuple[list[int], torch.Tensor]:
    labels, logits = [], []
    for (kept, lg), ex in zip(pairs, examples):
        labels.extend(ex.labels[k] for k in kept)
        logits.append(lg)
    return labels, torch.cat(logits) if logits else torch.zeros((0, 2))


@torch.no_grad()
def evaluate_discriminative(aligner: DiscriminativeAligner, examples: Sequence[WeakExample]) -> dict[str, float]:
    """Token-level loss, accuracy, F1 and ROC-AUC (hallucinated = class 1) on labelled examples."""
    from sklearn.metrics import f1_score, roc_auc_score

    aligner.model.eval()
    labels: list[int] = []
    logits = []
    for i in range(0, len(examples), aligner.batch_size):
        batch = examples[i:i + aligner.batch_size]
        y, lg = _token_stats(aligner.word_logits([e.input_text for e in batch], [e.context for e in batch]), batch)
        labels.extend(y), logits.append(lg.float().cpu())
    lg = torch.cat(logits)
    target = torch.tensor(labels, dtype=torch.long)
    p_hallu = torch.softmax(lg, -1)[:, 1].numpy()
    pred = lg.argmax(-1)
    out = {"loss": float(torch.nn.functional.cross_entropy(lg, target)), "tokens": float(len(labels)),
           "accuracy": float((pred == target).float().mean()),
           "f1": float(f1_score(labels, pred.numpy(), zero_division=0))}
    out["roc_auc"] = float(roc_auc_score(labels, p_hallu)) if 0 < sum(labels) < len(labels) else math.nan
    return out


def _optimizer(model: Any, config: TrainConfig, total_steps: int):
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias") and "LayerNorm" not in n]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and (n.endswith("bias") or "LayerNorm" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=config.lr, eps=config.eps)
    warm = max(1, int(config.warmup * total_steps))

    def factor(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _fit(model: Any, train: Sequence[Any], config: TrainConfig, loss_fn: Callable[[Sequence[Any]], torch.Tensor],
         evaluate: Callable[[], dict[str, float]], better: Callable[[dict, dict], bool]) -> dict[str, float]:
    """The shared loop: shuffled batches, gradient accumulation, periodic validation keeping the best
    weights in `model`; returns the best validation result."""
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    batches_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = max(1, math.ceil(batches_per_epoch * config.epochs / config.accumulation))
    opt, sched = _optimizer(model, config, total_steps)
    eval_at = {round(batches_per_epoch * (k + 1) / config.evals_per_epoch) - 1 for k in range(config.evals_per_epoch)}
    best, best_state, done = None, None, 0
    for _ in range(config.epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for b in range(batches_per_epoch):
            model.train()
            batch = [train[i] for i in order[b * config.batch_size:(b + 1) * config.batch_size]]
            (loss_fn(batch) / config.accumulation).backward()
            done += 1
            if done % config.accumulation == 0 or done == batches_per_epoch * config.epochs:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step(), sched.step(), opt.zero_grad()
            if b in eval_at:
                result = evaluate()
                if best is None or better(result, best):
                    best, best_state = result, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return best or evaluate()


def train_discriminative(aligner: DiscriminativeAligner, train: Sequence[WeakExample], val: Sequence[WeakExample],
                         config: TrainConfig = TrainConfig()) -> tuple[DiscriminativeAligner, dict[str, float]]:
    """Cross-entropy on word labels; keeps the weights with the best validation F1."""
    if not train or not val:
        raise ValueError(f"D training needs training and validation examples ({len(train)} and {len(val)})")

    def loss_fn(batch: Sequence[WeakExample]) -> torch.Tensor:
        pairs = aligner.word_logits([e.input_text for e in batch], [e.context for e in batch])
        labels, logits = _token_stats(pairs, batch)
        return torch.nn.functional.cross_entropy(logits, torch.tensor(labels, dtype=torch.long, device=logits.device))

    result = _fit(aligner.model, train, config, loss_fn, lambda: evaluate_discriminative(aligner, val),
                  lambda new, old: new["f1"] > old["f1"] or (new["f1"] == old["f1"] and new["loss"] < old["loss"]))
    return aligner, result


def regression_targets(examples: Sequence[WeakExample], how: Aggregation = "mean",
                       remove_stopwords: bool = False) -> list[float]:
    """The aggregated alignment label of each example: aggregate(1 - label) over its words."""
    return [aggregate(Alignment(e.input_text.split(), [1.0 - y for y in e.labels]), how, remove_stopwords)
            for e in examples]


@torch.no_grad()
def _regression_eval(aligner: RegressionAligner, examples: Sequence[WeakExample], targets: list[float]) -> dict[str, float]:
    aligner.model.eval()
    preds = torch.cat([aligner.predict([e.input_text for e in examples[i:i + aligner.batch_size]],
                                       [e.context for e in examples[i:i + aligner.batch_size]])
                       for i in range(0, len(examples), aligner.batch_size)]).float().cpu()
    t = torch.tensor(targets, dtype=preds.dtype)
    corr = float(torch.corrcoef(torch.stack([preds, t]))[0, 1]) if len(t) > 1 else math.nan
    return {"mse": float(((preds - t) ** 2).mean()), "pearson": corr}


def train_regression(aligner: RegressionAligner, train: Sequence[WeakExample], val: Sequence[WeakExample],
                     config: TrainConfig = TrainConfig(), how: Aggregation = "mean",
                     remove_stopwords: bool = False) -> tuple[RegressionAligner, dict[str, float]]:
    """MSE on the aggregated alignment label; keeps the weights with the lowest validation MSE."""
    if not train or not val:
        raise ValueError(f"R training needs training and validation examples ({len(train)} and {len(val)})")
    t_train = dict(zip(map(id, train), regression_targets(train, how, remove_stopwords)))
    t_val = regression_targets(val, how, remove_stopwords)

    def loss_fn(batch: Sequence[WeakExample]) -> torch.Tensor:
        preds = aligner.predict([e.input_text for e in batch], [e.context for e in batch])
        target = torch.tensor([t_train[id(e)] for e in batch], dtype=preds.dtype, device=preds.device)
        return torch.nn.functional.mse_loss(preds, target)

    result = _fit(aligner.model, train, config, loss_fn, lambda: _regression_eval(aligner, val, t_val),
                  lambda new, old: new["mse"] < old["mse"])
    return aligner, result
