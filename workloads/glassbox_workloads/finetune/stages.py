"""The progressive recipe in one run: len(stages) + 1 models trained in order, then chained.

Stage k's checkpoints go under `stages/<k>/checkpoints/<its step>` of the run (each with the stage
vocabularies, vocab.json, among its sha256-listed files). The manifest lists them with the run's
step, (k - 1) * steps + the stage's step (every stage plans the same steps: one pair per example),
and their StagePosition. A rerun resumes from the latest resumable checkpoint: that stage at that
step, or the next stage from scratch when it was its stage's last, so no stage is trained twice.
After the last stage, the eval examples go through the chain (condition -> stage 1 text -> ... ->
text) with spec.generation; every stage's text is published (chain/predictions.json, its digest
and the chain's BLEU in manifest.final).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from glassbox_api.manifest import CheckpointEntry, Manifest, StagePosition, checkpoint_dir, evals_dir, read_manifest
from glassbox_api.store import ArtifactStore

from ..runtime.lifecycle import OpenRun
from ..runtime.progress import Progress
from ..runtime.publisher import CheckpointPublisher
from .workload import FinetuneWorkload

CHAIN_PREDICTIONS = "chain/predictions.json"
VOCAB_FILE = "vocab.json"
LETTER_RETRIES = 4
"""Resamples of a sampled stage text without a letter (greedy and beam outputs are not resampled)."""


def stage_prefix(stage: int) -> str:
    return f"stages/{stage}"


def resume_point(resume: Optional[CheckpointEntry], n_stages: int, steps: int) -> tuple[int, Optional[CheckpointEntry]]:
    """(stage to train, checkpoint to restore it from): the latest checkpoint's stage restored, or
    the next stage from the model source when that checkpoint was its stage's last (the last
    stage's last is restored: the run only has the chain left to do)."""
    if resume is None:
        return 1, None
    pos = resume.stage or StagePosition(index=1, count=n_stages, step=resume.step, steps=steps)
    if pos.step >= pos.steps and pos.index < n_stages:
        return pos.index + 1, None
    return pos.index, resume


class StagedWorkload(FinetuneWorkload):
    """ShardedFinetune with recipe progressive: one bart model per stage, trained in order."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stage = 1
        self.final_params: dict[int, Any] = {}
        self.chain: dict[str, Any] = {}

    @property
    def n_stages(self) -> int:
        return self.spec.recipe.progressive.n_stages

    # ---- plan and build ------------------------------------------------------------------------
    def _make_recipe(self, build_recipe: Any) -> Any:
        from .setup import progressive_vocabs

        self.vocabs = progressive_vocabs(self.spec, self.cfg, self.train_examples)
        return self._recipe_of(1)

    def _recipe_of(self, stage: int) -> Any:
        from .setup import progressive_recipe

        return progressive_recipe(self.spec, self.model, self.cfg, self.tok, self.vocabs, stage)

    def plan(self, run: OpenRun) -> int:
        per = super().plan(run)  # one stage's steps (and its learning-rate schedule)
        self.stage_total, self.total = per, per * self.n_stages
        return self.total

    def build(self, run: OpenRun) -> int:
        stage, restore = resume_point(run.resume, self.n_stages, self.stage_total)
        if run.resume is not None:
            self.resumed_from = run.resume.step
        self._enter(stage, run.store, restore)
        return self.offset + self.trainer.step

    def _enter(self, stage: int, store: ArtifactStore, restore: Optional[CheckpointEntry]) -> None:
        """Make `stage` the model in training (a fresh Trainer; the previous stage's is released)."""
        self.stage, self.offset = stage, (stage - 1) * self.stage_total
        if stage > 1:
            self.recipe = self._recipe_of(stage)
        self.trainer = self.predictor = None
        self._build_model(store, restore)

    # ---- train -----------------------------------------------------------------------------
    def train(self, run: OpenRun, publisher: Optional[CheckpointPublisher], progress: Progress) -> None:
        self.run_store, self.publisher, self.progress, self.lead = run.store, publisher, progress, run.lead
        self.faults = run.ctx.faults
        while True:
            progress.note(f"stage {self.stage}/{self.n_stages}: {self._describe(self.stage)}, "
                          f"steps {self.offset + self.trainer.step}..{self.offset + self.stage_total} of {self.total}")
            self.fit = self._fit(self.trainer)
            if self.stage >= self.n_stages:
                break
            self._enter(self.stage + 1, run.store, None)
        self.chain = self._chain()

    def _describe(self, stage: int) -> str:
        from ..recipes.progressive import stage_descriptions

        return stage_descriptions(self.spec.recipe.progressive.stages)[stage - 1]

    def _progress_stats(self, step: int) -> dict[str, Any]:
        return {"stage": f"{self.stage}/{self.n_stages}"}

    def _checkpoint_dir(self, step: int) -> str:
        return f"{stage_prefix(self.stage)}/{checkpoint_dir(step)}"

    def _evals_dir(self, step: int) -> str:
        return f"{stage_prefix(self.stage)}/{evals_dir(step)}"

    def _entry_fields(self, step: int) -> dict[str, Any]:
        return {"stage": StagePosition(index=self.stage, count=self.n_stages, step=step, steps=self.stage_total)}

    def _final_params(self, host_params: Any) -> None:
        self.final_params[self.stage] = host_params

    def _stage_extra(self, staging: Path) -> None:
        p = self.spec.recipe.progressive
        doc = {"stage": self.stage, "minDf": p.vocab.min_df,
               "vocabularies": [{"rate": r, "words": v} for r, v in zip(p.stages, self.vocabs)]}
        (staging / VOCAB_FILE).write_text(json.dumps(doc, indent=1), encoding="utf-8")

    # ---- the chain -------------------------------------------------------------------------
    def _stage_params(self, stage: int) -> Any:
        """A trained stage's weights: kept from this attempt, else its last published checkpoint."""
        if stage in self.final_params:
            return self.final_params[stage]
        from ..flax_models.hf import load_pretrained

        manifest = read_manifest(self.run_store) or Manifest()
        last = max((c for c in manifest.checkpoints if c.stage is not None and c.stage.index == stage),
                   key=lambda c: c.step)
        return load_pretrained(self.run_store, last.path)[1]

    def _chain(self) -> dict[str, Any]:
        """Generate every stage's text for the eval examples, chained; the lead publishes them."""
        import jax

        from ..recipes import progressive as pg
        from ..recipes import seq2seq
        from ..redco import Predictor
        from .setup import generation_settings

        evals = self.eval_examples
        if not evals:
            return {}
        spec, d = self.spec, self.spec.data
        gen = generation_settings(spec)
        src = seq2seq.make(self.model, self.tok, d.max_source_length, d.max_target_length, self.cfg.start_token_id,
                           generation=gen)
        predictor = Predictor(self.deployer, src.pred_collate_fn, src.pred_fn, src.output_fn,
                              params_specs=self.trainer.params_specs)
        ebs, rng = spec.training.per_device_batch_size, self.deployer.gen_rng()

        def stage_generator(stage: int) -> pg.Generate:
            params = self.deployer.shard_params(self._stage_params(stage), self.trainer.params_specs)

            def generate(sources: list[str], attempt: int) -> list[str]:
                out = predictor.predict([{"source": s} for s in sources], ebs, params,
                                        rng=jax.random.fold_in(rng, 1000 * stage + attempt))
                return [o[0] if isinstance(o, list) else o for o in out]

            return generate

        retries = LETTER_RETRIES if gen.do_sample else 0
        texts = pg.chain([ex["condition"] for ex in evals], [stage_generator(k) for k in range(1, self.n_stages + 1)],
                         retries)
        return self._publish_chain(evals, texts)

    def _publish_chain(self, evals: list[dict], texts: list[list[str]]) -> dict[str, Any]:
        """chain/predictions.json (every stage's text beside its gold one) and the BLEU-4 of each
        stage's generated text against the gold stage text (the last: the reference)."""
        from ..metrics.standard import corpus_bleu
        from ..recipes import progressive as pg

        gold = [[pg.stage_examples([ex], self.vocabs, k)[0]["target"] for k in range(1, self.n_stages + 1)]
                for ex in evals]
        rows = [{"condition": ex["condition"], "stages": t, "gold": g} for ex, t, g in zip(evals, texts, gold)]
        out: dict[str, Any] = {"path": CHAIN_PREDICTIONS, "examples": len(rows)}
        for k in range(self.n_stages):
            hyps, refs = [t[k] for t in texts], [g[k] for g in gold]
            out[f"stage{k + 1}Bleu4"] = round(corpus_bleu(hyps, refs).corpus / 100, 4)
        body = json.dumps(rows, indent=1).encode("utf-8")
        out["sha256"] = hashlib.sha256(body).hexdigest()
        if self.lead:
            self.run_store.put_bytes(CHAIN_PREDICTIONS, body)
        self.progress.note("chain: " + " ".join(f"{k}={v}" for k, v in out.items() if k.endswith("Bleu4")))
        return out

    # ---- end -------------------------------------------------------------------------------
    def final(self, manifest: Manifest) -> dict[str, Any]:
        last = {}
        for c in manifest.checkpoints:
            if c.stage is not None:
                last[c.stage.index] = c.path
        return {**super().final(manifest), "stages": [{"stage": k, "checkpoint": last[k]} for k in sorted(last)],
                **({"chain": self.chain} if self.chain else {})}


__all__ = ["CHAIN_PREDICTIONS", "StagedWorkload", "VOCAB_FILE", "resume_point", "stage_prefix"]
