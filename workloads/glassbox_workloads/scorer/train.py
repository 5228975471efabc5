"""Adaptation, one attempt of the shared run lifecycle (runtime.lifecycle): build Cappy's pairs from
the task data (the generator fills in missing samples), train the scorer with AdamW under linear
warm-up then decay with gradient accumulation, evaluate its picks on the eval data, and publish the
adapted checkpoint (HF layout), its eval and the built pairs through the run manifest.

The run is short, so it publishes once, at the end; a retried attempt starts over (the pairs and
the initial weights are functions of the seed, so it makes the same checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.scorerservice import ScorerServiceSpec
from glassbox_api.manifest import CheckpointEntry, DataRange, Manifest, RunRecord, checkpoint_dir, evals_dir, spec_digest
from glassbox_api.store import ArtifactStore

from ..runtime.errors import BadInput
from ..runtime.lifecycle import OpenRun, Outcome, RunIdentity, TrainingResult, TrainingWorkload
from ..runtime.progress import Progress
from ..runtime.publisher import CheckpointPublisher
from .boost import EvalResult, evaluate
from .data import Example, Pair, build_pairs, read_records, to_examples
from .generator import Generator
from .model import Scorer, load_scorer
from .select import linear_lr, steps_per_epoch, warmup_steps

KIND = "ScorerService"
PAIRS_FILE = "data/pairs.jsonl"


def load_task(spec: ScorerServiceSpec, which: str, base_dir: Optional[Path],
              generator: Optional[Generator]) -> list[Example]:
    """The adaptation (`data`) or eval (`evalData`) examples, missing samples made by the generator."""
    a = spec.adaptation
    assert a is not None
    ref = a.data if which == "data" else a.eval_data
    assert ref is not None
    field_ = f"spec.adaptation.{which}"
    examples = to_examples(read_records(ref, field_, base_dir), field_, instruction=a.instruction_field,
                           references=a.references_field, samples=a.samples_field)
    missing = [i for i, ex in enumerate(examples) if not ex.samples]
    if missing and generator is not None and a.generate_samples:
        made = generator.generate([examples[i].instruction for i in missing])
        for i, cands in zip(missing, made):
            ex = examples[i]
            examples[i] = Example(ex.instruction, ex.references, tuple(c.text for c in cands))
    return examples


def pairs_digest(pairs: list[Pair]) -> tuple[bytes, str]:
    blob = "".join(json.dumps({"instruction": p.instruction, "response": p.response, "label": p.label},
                              sort_keys=True) + "\n" for p in pairs).encode()
    return blob, hashlib.sha256(blob).hexdigest()


def train_scorer(scorer: Scorer, pairs: list[Pair], spec: ScorerServiceSpec, total: int, progress: Progress) -> list[float]:
    """AdamW, linear warm-up then decay to 0, batchSize x gradientAccumulation pairs per step.
    Epoch 0 reads the pairs in their built (shuffled) order; later epochs reshuffle under the seed."""
    import torch

    a = spec.adaptation
    assert a is not None
    model = scorer.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.learning_rate, weight_decay=a.weight_decay)
    warm = warmup_steps(total, a.warmup_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: linear_lr(s, total, warm, 1.0))
    per_epoch = steps_per_epoch(len(pairs), a.batch_size, a.gradient_accumulation)
    losses: list[float] = []
    order: list[Pair] = pairs
    for step in range(total):
        epoch, k = divmod(step, per_epoch)
        if k == 0 and epoch > 0:
            order = list(pairs)
            random.Random(a.seed + epoch).shuffle(order)
        start = k * a.batch_size * a.gradient_accumulation
        step_loss = 0.0
        for m in range(a.gradient_accumulation):
            chunk = order[start + m * a.batch_size:start + (m + 1) * a.batch_size]
            logits = scorer.logits([p.instruction for p in chunk], [p.response for p in chunk])
            labels = torch.tensor([p.label for p in chunk], dtype=logits.dtype, device=logits.device)
            loss = torch.mean((logits - labels) ** 2)
            (loss / a.gradient_accumulation).backward()
            step_loss += float(loss.detach()) / a.gradient_accumulation
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(step_loss)
        progress.update(step + 1, {"loss": step_loss, "lr": lr})
    model.eval()
    return losses


class AdaptationWorkload(TrainingWorkload[TrainingResult]):
    """ScorerService's adaptation stage for the shared lifecycle."""

    kind = KIND
    progress_label = "adapting"

    def __init__(self, spec: ScorerServiceSpec, who: RunIdentity, raw_spec: dict[str, Any], root: Optional[ArtifactStore],
                 base_dir: Optional[Path], generator: Optional[Generator] = None, force_cpu: bool = False):
        self.spec, self.who, self.raw_spec, self.root, self.base_dir = spec, who, raw_spec, root, base_dir
        self.generator, self.force_cpu = generator, force_cpu
        self.losses: list[float] = []
        self.evals: dict[str, float] = {}

    def plan(self, run: OpenRun) -> int:
        a = self.spec.adaptation
        assert a is not None
        m = run.manifest
        if m is not None and m.state == "completed" and m.latest is not None and m.total_steps:
            return m.total_steps  # done before: nothing to build (is_complete stops here)
        self.examples = load_task(self.spec, "data", self.base_dir, self.generator)
        self.pairs = build_pairs(self.examples, a.size, a.seed)
        per_epoch = steps_per_epoch(len(self.pairs), a.batch_size, a.gradient_accumulation)
        if per_epoch == 0:
            raise BadInput("spec.adaptation.size", f"{a.size} pairs make no optimizer step of {a.batch_size} x "
                           f"{a.gradient_accumulation} pairs", "raise size, or lower batchSize or gradientAccumulation")
        self.total = a.epochs * per_epoch
        run.say(f"adaptation: {len(self.examples)} examples -> {len(self.pairs)} pairs, {self.total} steps")
        return self.total

    def is_complete(self, manifest: Optional[Manifest], total: int) -> bool:
        return manifest is not None and manifest.state == "completed" and manifest.latest is not None

    def build(self, run: OpenRun) -> int:
        texts = [t for ex in self.examples for t in (ex.instruction, *ex.references, *ex.samples)]
        self.scorer = load_scorer(self.spec.model, max_length=self.spec.max_length, store=self.root,
                                  namespace=self.who.namespace, base_dir=self.base_dir, texts=texts,
                                  seed=self.spec.adaptation.seed if self.spec.adaptation else 0, need_head=False,
                                  force_cpu=self.force_cpu)
        return 0

    def record(self, run: OpenRun) -> RunRecord:
        import torch
        import transformers

        self.pairs_blob, digest = pairs_digest(self.pairs)
        a = self.spec.adaptation
        who = self.who
        return RunRecord(kind=KIND, name=who.name, namespace=who.namespace, uid=who.uid, spec=self.raw_spec,
                         spec_digest=spec_digest(self.raw_spec), seeds={"seed": a.seed if a else 0},
                         data_manifest_digest=digest, world_size=1,
                         environment={"torch": torch.__version__, "transformers": transformers.__version__,
                                      "python": sys.version.split()[0]})

    def publisher_options(self) -> dict[str, Any]:
        return {"verify": "size"}

    def train(self, run: OpenRun, publisher: Optional[CheckpointPublisher], progress: Progress) -> None:
        if run.lead:
            run.store.put_bytes(PAIRS_FILE, self.pairs_blob)
        self.losses = train_scorer(self.scorer, self.pairs, self.spec, self.total, progress)
        result = self._evaluate(run)
        if publisher is None:
            return
        staging = Path(tempfile.mkdtemp(prefix="glassbox-scorer-"))
        self.scorer.save(staging)
        a = self.spec.adaptation
        assert a is not None
        seen = self.total * a.batch_size * a.gradient_accumulation
        publisher.submit(staging, CheckpointEntry(
            step=self.total, tokens=seen, loss=self.losses[-1] if self.losses else None, path=checkpoint_dir(self.total),
            data=DataRange(samples_end=seen, epoch=a.epochs), evals=self.evals,
            evals_path=evals_dir(self.total) if result else None, resumable=False))

    def _evaluate(self, run: OpenRun) -> Optional[EvalResult]:
        a = self.spec.adaptation
        if a is None or a.eval_data is None:
            return None
        examples = load_task(self.spec, "evalData", self.base_dir, self.generator)
        res = evaluate(examples, lambda pairs: self.scorer.score(list(pairs), self.spec.batch_size), self.generator)
        self.evals = res.metrics()
        if run.lead:
            run.store.write_json(f"{evals_dir(self.total)}/results.json", {"step": self.total, **self.evals})
            rows = "".join(json.dumps(r, sort_keys=True) + "\n" for r in res.rows).encode()
            run.store.put_bytes(f"{evals_dir(self.total)}/picks.jsonl", rows)
        run.say("eval: " + " ".join(f"{k}={v:.4g}" for k, v in self.evals.items()))
        return res

    def final(self, manifest: Manifest) -> dict[str, Any]:
        return {"loss": self.losses[-1] if self.losses else None, **self.evals}

    def result(self, outcome: Outcome) -> TrainingResult:
        m = outcome.manifest
        latest = m.latest if m is not None else None
        return TrainingResult(run_uri=outcome.run_uri, manifest=m, steps=latest.step if latest else 0,
                           loss=latest.loss if latest else None, evals=dict(latest.evals) if latest else {},
                           already_complete=outcome.already_complete, seconds=outcome.seconds)
