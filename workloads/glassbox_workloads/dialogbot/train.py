"""DialogBot's training stage, one attempt of the shared run lifecycle (runtime.lifecycle): read and
split the consultations, train with AdamW under linear warm-up and decay (label smoothing, the
optional masked-token loss), evaluate the dev loss after every epoch and keep the best weights,
then compute the test-split metrics with them and publish that checkpoint (HF layout), its
evals (`evals/<step>/test.json`, `test.jsonl`) and the split through the run manifest.

The run is short, so it publishes once, at the end; a retried attempt starts over (split, initial
weights and batch order are functions of the seeds, so it makes the same checkpoint).
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.dialogbot import DialogBotSpec, DialogTraining
from glassbox_api.manifest import CheckpointEntry, DataRange, Manifest, RunRecord, checkpoint_dir, evals_dir, spec_digest
from glassbox_api.store import ArtifactStore

from ..runtime.errors import BadInput
from ..runtime.lifecycle import OpenRun, Outcome, RunIdentity, TrainingResult, TrainingWorkload
from ..runtime.progress import Progress
from ..runtime.publisher import CheckpointPublisher
from . import data as dialog_data
from .evaluate import metrics, held_out_examples
from .model import load_model, objective_of
from .steps import dev_loss, epoch_order, gen_loss, mlm_loss, optimizer, prepare, steps_per_epoch

KIND = "DialogBot"
SPLIT_FILE = "data/split.json"


def split_record(parts: dict[str, list[dialog_data.Dialogue]]) -> bytes:
    """The split as JSON (which consultation went where), for the record and its digest."""
    return json.dumps({k: [{"description": d.description, "turns": [[t.speaker, t.text] for t in d.turns]}
                           for d in v] for k, v in parts.items()}, sort_keys=True).encode()


class DialogTrainingWorkload(TrainingWorkload[TrainingResult]):
    """DialogBot's training stage for the shared lifecycle."""

    kind = KIND

    def __init__(self, spec: DialogBotSpec, who: RunIdentity, raw_spec: dict[str, Any], root: Optional[ArtifactStore],
                 base_dir: Optional[Path], force_cpu: bool = False):
        assert spec.training is not None
        self.spec, self.t, self.who, self.raw_spec = spec, spec.training, who, raw_spec
        self.root, self.base_dir, self.force_cpu = root, base_dir, force_cpu
        self.losses: list[float] = []
        self.evals: dict[str, float] = {}
        self.best_step = 0

    def plan(self, run: OpenRun) -> int:
        m = run.manifest
        if m is not None and m.state == "completed" and m.latest is not None and m.total_steps:
            return m.total_steps
        t: DialogTraining = self.t
        dialogues = dialog_data.load(t.data, "spec.training.data", self.base_dir)
        self.train_set, self.dev_set, self.test_set = dialog_data.split(dialogues, t.split_seed)
        if not self.train_set:
            raise BadInput("spec.training.data", f"{len(dialogues)} consultations leave none for training after "
                           "the 80/10/10 split", "give at least 2 consultations")
        self.dm = load_model(self.spec, store=self.root, namespace=self.who.namespace, base_dir=self.base_dir,
                             dialogues=self.train_set, seed=t.split_seed, force_cpu=self.force_cpu)
        self.prepared = prepare(self.dm, self.train_set, t)
        self.dev = prepare(self.dm, self.dev_set, t).examples
        if not self.prepared.examples:
            raise BadInput("spec.training.data", "the training consultations have no doctor turn after a patient turn",
                           "give consultations that alternate Patient: and Doctor: turns")
        self.per_epoch = steps_per_epoch(len(self.prepared.examples), t.batch_size)
        self.total = t.epochs * self.per_epoch
        run.say(f"dialogbot: {len(dialogues)} consultations -> {len(self.train_set)}/{len(self.dev_set)}/"
                f"{len(self.test_set)} train/dev/test, {len(self.prepared.examples)} {self.dm.objective} examples, "
                f"{self.total} steps")
        return self.total

    def is_complete(self, manifest: Optional[Manifest], total: int) -> bool:
        return manifest is not None and manifest.state == "completed" and manifest.latest is not None

    def build(self, run: OpenRun) -> int:
        return 0

    def record(self, run: OpenRun) -> RunRecord:
        import torch
        import transformers

        self.split_blob = split_record({"train": self.train_set, "dev": self.dev_set, "test": self.test_set})
        who = self.who
        return RunRecord(kind=KIND, name=who.name, namespace=who.namespace, uid=who.uid, spec=self.raw_spec,
                         spec_digest=spec_digest(self.raw_spec), seeds={"splitSeed": self.t.split_seed},
                         data_manifest_digest=hashlib.sha256(self.split_blob).hexdigest(), world_size=1,
                         environment={"torch": torch.__version__, "transformers": transformers.__version__,
                                      "python": sys.version.split()[0]})

    def publisher_options(self) -> dict[str, Any]:
        return {"verify": "size"}

    def _epoch(self, epoch: int, opt: Any, sched: Any, progress: Progress, gen: Any) -> None:
        t, dm, p = self.t, self.dm, self.prepared
        order = epoch_order(len(p.examples), t.split_seed, epoch)
        aux = t.auxiliary_masked_loss
        for k in range(self.per_epoch):
            idx = order[k * t.batch_size:(k + 1) * t.batch_size]
            loss = gen_loss(dm, [p.examples[i] for i in idx], t.label_smoothing)
            if aux is not None:
                loss = loss + aux.weight * mlm_loss(dm, [p.mlm_texts[i] for i in idx], aux, 512, gen)
            lr = sched.get_last_lr()[0]
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            self.losses.append(float(loss.detach()))
            progress.update(epoch * self.per_epoch + k + 1, {"loss": self.losses[-1], "lr": lr})

    def train(self, run: OpenRun, publisher: Optional[CheckpointPublisher], progress: Progress) -> None:
        import torch

        t = self.t
        if run.lead:
            run.store.put_bytes(SPLIT_FILE, self.split_blob)
        opt, sched = optimizer(self.dm.model, t, self.total)
        gen = torch.Generator().manual_seed(t.split_seed)
        self.dm.model.train()
        best: Optional[float] = None
        best_state: Any = None
        for epoch in range(t.epochs):
            self._epoch(epoch, opt, sched, progress, gen)
            dl = dev_loss(self.dm, self.dev, t.batch_size)
            if best_state is None or (dl is not None and (best is None or dl < best)):
                best, best_state = dl, copy.deepcopy(self.dm.model.state_dict())
                self.best_step = (epoch + 1) * self.per_epoch
            progress.note(f"epoch {epoch + 1}: dev loss {dl:.4f}" if dl is not None else f"epoch {epoch + 1}: no dev split")
        if self.dev:  # without a dev split the last epoch is kept (there is nothing to select by)
            self.dm.model.load_state_dict(best_state)
        self.dm.model.eval()
        self._evaluate(run, best)
        if publisher is None:
            return
        staging = Path(tempfile.mkdtemp(prefix="glassbox-dialogbot-"))
        self.dm.save(staging)
        step = self.best_step if self.dev else self.total
        seen = step * t.batch_size
        publisher.submit(staging, CheckpointEntry(
            step=step, tokens=seen, loss=self.losses[step - 1] if self.losses else None, path=checkpoint_dir(step),
            data=DataRange(samples_end=seen, epoch=step // self.per_epoch), evals=self.evals,
            evals_path=evals_dir(step), resumable=False))

    def _evaluate(self, run: OpenRun, best: Optional[float]) -> None:
        t = self.t
        ex = held_out_examples(self.test_set, self.dm.objective, t.include_description)
        values, rows = metrics(self.dm, ex, self.spec.decoding, t.max_source_length + t.max_target_length)
        self.evals = dict(values)
        if best is not None:
            self.evals["devLoss"] = best
        step = self.best_step if self.dev else self.total
        if run.lead:
            run.store.write_json(f"{evals_dir(step)}/test.json", {"step": step, "examples": len(ex), **self.evals})
            run.store.put_bytes(f"{evals_dir(step)}/test.jsonl",
                                "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())
        run.say("test: " + " ".join(f"{k}={v:.4g}" for k, v in self.evals.items()))

    def final(self, manifest: Manifest) -> dict[str, Any]:
        return {"loss": self.losses[-1] if self.losses else None, "bestStep": self.best_step,
                "objective": objective_of(self.spec, self.dm.model.config), **self.evals}

    def result(self, outcome: Outcome) -> TrainingResult:
        m = outcome.manifest
        latest = m.latest if m is not None else None
        return TrainingResult(run_uri=outcome.run_uri, manifest=m, steps=latest.step if latest else 0,
                           loss=latest.loss if latest else None, evals=dict(latest.evals) if latest else {},
                           already_complete=outcome.already_complete, seconds=outcome.seconds)

