"""The ShardedFinetune workload: `run(spec, store)`, one attempt of the shared run lifecycle.

Plan: resolve the starting weights (uri, fromRun or random), build the recipe, load the data, pick
the shard count. Build: the parameters, the Redco Trainer and Predictor, restored from the latest
published checkpoint (params, optimizer state, recipe state such as a target network, RNG and data
cursor). Train: Trainer.fit, evaluating and publishing sharded checkpoints through the run manifest
(the single commit point).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.shardedfinetune import FinetuneTraining, ShardedFinetuneSpec
from glassbox_api.manifest import (
    CheckpointEntry,
    DataRange,
    Manifest,
    RunRecord,
    checkpoint_dir,
    evals_dir,
    read_manifest,
    spec_digest,
)
from glassbox_api.store import ArtifactStore, ChecksumMismatch, NotFound, open_store

from ..runtime.context import RunContext
from ..runtime.errors import BadInput
from ..runtime.lifecycle import OpenRun, Outcome, TrainingWorkload, run_training
from ..runtime.progress import Progress
from ..runtime.publisher import CheckpointPublisher

log = logging.getLogger("glassbox.finetune")

KIND = "ShardedFinetune"


@dataclass
class FinetuneResult:
    steps: int = 0
    resumed_from: Optional[int] = None
    n_model_shards: int = 1
    shard_reason: str = ""
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    manifest: Optional[Manifest] = None
    run_uri: str = ""
    seconds: float = 0.0
    already_complete: bool = False


@dataclass(frozen=True)
class Identity:
    """Who the run is: the manifest's and run.json's kind, name, namespace and uid."""

    name: str = "finetune"
    namespace: str = "default"
    uid: str = "local"

    def fields(self) -> dict[str, str]:
        return {"kind": KIND, "name": self.name, "namespace": self.namespace, "uid": self.uid}


def _optimizer(t: FinetuneTraining, schedule: Any) -> Any:
    import optax

    return optax.adamw(schedule, weight_decay=t.weight_decay)


def run(spec: ShardedFinetuneSpec, store: ArtifactStore, *, root: Optional[ArtifactStore] = None,
        name: str = "finetune", namespace: str = "default", uid: str = "local", raw_spec: Optional[dict] = None,
        quiet: bool = True, base_dir: Optional[Path] = None, ctx: Optional[RunContext] = None) -> FinetuneResult:
    """Run (or resume) one ShardedFinetune whose run directory is `store` (already the run prefix).

    `root` is the store root that holds other runs (for model.fromRun); `base_dir` resolves relative
    dataset paths that do not exist relative to the working directory; ctx defaults to one read from
    this process's environment (what the entrypoint passes down).
    """
    from ..redco.mesh import initialize_distributed

    ctx = replace(ctx or RunContext.from_env(), quiet=quiet)
    if spec.resources.backend == "jobset" and spec.resources.workers > 1:
        initialize_distributed(ctx.jax, num_processes=spec.resources.workers)
    import jax

    who = Identity(name, namespace, uid)
    cls = FinetuneWorkload
    if spec.recipe.name == "progressive":  # one model per stage, in one run
        from .stages import StagedWorkload as cls  # type: ignore[assignment]
    workload = cls(spec, who, raw_spec or {}, root, base_dir)
    opened = OpenRun(store, read_manifest(store), jax.process_index() == 0, ctx)
    return run_training(workload, opened, who.fields())


class FinetuneWorkload(TrainingWorkload[FinetuneResult]):
    """ShardedFinetune's parts for the shared lifecycle (runtime.lifecycle.run_training)."""

    kind = KIND
    commit_on_failure = False  # a failed attempt aborts its pending uploads; the next resumes from the manifest

    def __init__(self, spec: ShardedFinetuneSpec, who: Identity, raw_spec: dict[str, Any],
                 root: Optional[ArtifactStore], base_dir: Optional[Path]):
        self.spec, self.who, self.raw_spec, self.root, self.base_dir = spec, who, raw_spec, root, base_dir
        self.progress_label = f"finetune {who.name}"
        self.pending_evals: dict[int, dict] = {}
        self.resumed_from: Optional[int] = None
        self.fit: Any = None
        self.offset = 0
        """Steps of the run before the model in training (multi-stage recipes; 0 otherwise)."""

    def plan(self, run: OpenRun) -> int:
        import jax

        from ..flax_models import build_model
        from ..redco import Deployer
        from .setup import build_recipe, load_examples, place, planned_devices, shapes_for

        spec, t = self.spec, self.spec.training
        self.cfg, self.tok, shapes, self.source = shapes_for(spec, self.root, self.who.namespace)
        self.model = build_model(self.cfg)
        self.train_examples = load_examples(spec.data.train, self.base_dir, "spec.data.train")
        self.recipe = self._make_recipe(build_recipe)
        self.eval_examples = load_examples(spec.data.eval, self.base_dir, "spec.data.eval") if spec.data.eval else []
        if self.recipe.expand_fn is not None:  # aspect-summarization: one example per aspect of each pair
            self.train_examples = self.recipe.expand_fn(self.train_examples, "train")
            self.eval_examples = self.recipe.expand_fn(self.eval_examples, "eval") if self.eval_examples else []
        pool = run_pool(spec.resources, jax)
        n_dev = jax.device_count()
        if spec.resources.backend != "local" and n_dev != planned_devices(spec, pool, jax.local_device_count()):
            log.warning("running on %d devices, the spec plans %d", n_dev, planned_devices(spec, pool, jax.local_device_count()))
        self.placement = place(spec, shapes, n_dev, pool)
        self.deployer = Deployer(n_model_shards=self.placement.n_model_shards, seed=t.seed)
        self.gbs = self.deployer.global_batch_size(t.per_device_batch_size * t.gradient_accumulation_steps)
        self.per_epoch = len(self.train_examples) // self.gbs
        if self.per_epoch == 0:
            raise BadInput("spec.data.train", f"{len(self.train_examples)} training examples make no global batch of "
                           f"{self.gbs} ({t.per_device_batch_size} per device x {self.deployer.dp_size} data-parallel x "
                           f"{t.gradient_accumulation_steps} accumulation)",
                           "add examples, or lower training.perDeviceBatchSize or gradientAccumulationSteps")
        self.total = t.epochs * self.per_epoch if not t.max_steps else min(t.max_steps, t.epochs * self.per_epoch)
        self.stage_total = self.total
        """Steps of the model in training (the run's total for one-model recipes)."""
        self.schedule = self.deployer.get_lr_schedule(t.learning_rate, self.total, t.schedule, t.warmup_steps)
        return self.total

    def _make_recipe(self, build_recipe: Any) -> Any:
        """The recipe of the (first) model; multi-stage workloads build one per stage."""
        from .aspects import RecipeInputs

        return build_recipe(self.spec, self.model, self.cfg, self.tok, self.train_examples,
                            RecipeInputs(self.root, self.who.namespace, self.base_dir))

    def is_complete(self, manifest: Optional[Manifest], total: int) -> bool:
        return manifest is not None and manifest.state == "completed" and manifest.latest is not None

    def build(self, run: OpenRun) -> int:
        self._build_model(run.store, run.resume)
        if run.resume is not None:
            self.resumed_from = run.resume.step
        return self.trainer.step

    def _build_model(self, store: ArtifactStore, resume: Optional[CheckpointEntry]) -> None:
        """Trainer and Predictor of self.recipe's model, restored from `resume` when given."""
        import jax

        from ..redco import Predictor, Trainer

        t, recipe, deployer = self.spec.training, self.recipe, self.deployer
        params = self._initial_params(jax)
        self.trainer = Trainer(deployer, recipe.collate_fn, recipe.loss_fn, params, _optimizer(t, self.schedule),
                               self.schedule, accumulate_grad_batches=t.gradient_accumulation_steps,
                               init_extra=recipe.init_extra, update_extra=recipe.update_extra,
                               augment_fn=recipe.augment_fn)
        del params
        self.predictor = Predictor(deployer, recipe.pred_collate_fn or recipe.collate_fn, recipe.pred_fn,
                                   recipe.output_fn, params_specs=self.trainer.params_specs)
        if resume is not None:
            from ..redco import checkpoints as ckpt

            _restore(self.trainer, deployer, store, resume, ckpt)

    def _initial_params(self, jax: Any) -> Any:
        """The starting weights: loaded from the model source, or initialised at random (sharded)."""
        params = self._model_params(jax)
        if self.recipe.add_params is not None:  # e.g. the multiple-choice head of keyword-summarization
            params = self.recipe.add_params(params, jax.random.key(self.spec.training.seed + 1))
        return params

    def _model_params(self, jax: Any) -> Any:
        from ..flax_models import init_params
        from ..flax_models.hf import CheckpointMismatch, load_pretrained

        src = self.source
        if src.store is None:
            return self.deployer.init_sharded(lambda r: init_params(self.cfg, r), jax.random.key(self.spec.training.seed))
        try:
            _, params = load_pretrained(src.store, src.prefix)
        except (CheckpointMismatch, ChecksumMismatch, FileNotFoundError, NotFound) as exc:
            raise BadInput(src.field, f"the model at {src.store.uri(src.prefix)} ({src.description}) cannot be "
                           f"loaded: {exc}", "start from a checkpoint of the architecture its config.json names, "
                           "with every tensor the model needs (its LM head included)") from exc
        return params

    def record(self, run: OpenRun) -> RunRecord:
        import jax

        who = self.who
        return RunRecord(kind=KIND, name=who.name, namespace=who.namespace, uid=who.uid, spec=self.raw_spec,
                         spec_digest=spec_digest(self.raw_spec), seeds={"seed": self.spec.training.seed},
                         world_size=jax.process_count(),
                         environment={"jax": jax.__version__, "python": sys.version.split()[0]},
                         **({"recipe": self.recipe.facts} if self.recipe.facts else {}))

    def publisher_options(self) -> dict[str, Any]:
        return {"verify": "size"}

    def train(self, run: OpenRun, publisher: Optional[CheckpointPublisher], progress: Progress) -> None:
        t, trainer = self.spec.training, self.trainer
        self.run_store, self.publisher, self.progress, self.lead = run.store, publisher, progress, run.lead
        self.faults = run.ctx.faults
        self.fit = self._fit(trainer)

    def _fit(self, trainer: Any) -> Any:
        """Trainer.fit of the model in training, with the progress bar and the fault hook around its
        steps (without the Trainer knowing)."""
        t, progress = self.spec.training, self.progress
        orig_step = trainer.train_step
        save_every = t.checkpoint_every or self.per_epoch

        def stepping(hb: Any) -> dict[str, Any]:
            m = orig_step(hb)
            progress.update(self.offset + trainer.step, {**self._progress_stats(trainer.step), "loss": m.get("loss"),
                                                         "lr": m.get("lr")})
            if trainer.step % save_every and trainer.step < self.stage_total:  # else after its checkpoint
                self.faults.after_step(self.offset + trainer.step, drain=self.publisher.drain if self.publisher else None)
            return m

        trainer.train_step = stepping
        return trainer.fit(self.train_examples, t.per_device_batch_size, t.epochs, max_steps=self.stage_total,
                           eval_fn=self._evaluate, eval_every=t.eval_every or self.per_epoch, save_every=save_every,
                           save_fn=self._save, log_every=0, seed=t.seed)

    def _progress_stats(self, step: int) -> dict[str, Any]:
        """What the progress line shows before the loss (the stage, for multi-stage recipes)."""
        return {}

    def _checkpoint_dir(self, step: int) -> str:
        """Where the checkpoint of the model in training at its step `step` goes in the run."""
        return checkpoint_dir(step)

    def _evals_dir(self, step: int) -> str:
        return evals_dir(step)

    def _entry_fields(self, step: int) -> dict[str, Any]:
        """Extra CheckpointEntry fields (a multi-stage run's stage)."""
        return {}

    def _evaluate(self, tr: Any) -> dict[str, Any]:
        """Eval loss (and the recipe's metrics over predictions) on the eval set; written by the lead."""
        out: dict[str, Any] = {}
        evals = self.eval_examples
        if not evals:
            return out
        ebs = self.spec.training.per_device_batch_size
        out["eval_loss"] = tr.eval_loss(evals, ebs)  # soft-q: the off-policy part of its loss
        if self.recipe.eval_metric_fn is not None:
            preds = self.predictor.predict(evals, ebs, tr.params, rng=self.deployer.gen_rng())
            out.update({k: float(v) for k, v in self.recipe.eval_metric_fn(evals, preds).items()})
            if self.lead:
                self.run_store.write_json(f"{self._evals_dir(tr.step)}/predictions.json",
                                          [{"example": e, "prediction": p} for e, p in zip(evals[:200], preds[:200])])
        if self.lead:
            self.run_store.write_json(f"{self._evals_dir(tr.step)}/results.json", {"step": tr.step, **out})
        self.pending_evals[self.offset + tr.step] = out
        self.progress.note(f"eval step {self.offset + tr.step}: " + " ".join(f"{k}={v:.4g}" for k, v in out.items()))
        return out

    def _save(self, tr: Any, last: dict[str, float]) -> None:
        """Write this host's shards (and, at the end, the HF-layout weights); the lead commits."""
        import jax

        step, publisher = tr.step, self.publisher
        run_step = self.offset + step
        if any(c.step == run_step for c in (publisher.manifest.checkpoints if publisher else [])):
            return
        staging, files = self._stage(tr, step)
        if not self.lead:  # other hosts upload their shards themselves, before the barrier below
            for f in files:
                self.run_store.put_file(f"{self._checkpoint_dir(step)}/sharded/{f}", staging / "sharded" / f)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            # host 0 commits the manifest only once every host's shards are in the store
            multihost_utils.sync_global_devices(f"glassbox-checkpoint-{step}")
        if publisher is not None:
            ev = self.pending_evals.get(run_step, {})
            gbs = self.gbs
            entry = CheckpointEntry(step=run_step, tokens=run_step * gbs, loss=last.get("loss"),
                                    path=self._checkpoint_dir(step),
                                    data=DataRange(samples_end=step * gbs, epoch=tr.cursor.epoch,
                                                   chunk_offset=tr.cursor.batch * gbs),
                                    evals={k: v for k, v in ev.items() if isinstance(v, (int, float))},
                                    evals_path=self._evals_dir(step) if ev else None, **self._entry_fields(step))
            publisher.submit(staging, entry)
        self.faults.after_step(run_step, drain=publisher.drain if publisher is not None else None)

    def _stage(self, tr: Any, step: int) -> tuple[Path, list[str]]:
        """This host's checkpoint files in a local folder: shards, and the final weights in HF layout."""
        import jax
        import numpy as np

        from ..flax_models.hf import save_pretrained
        from ..redco import checkpoints as ckpt

        staging = Path(tempfile.mkdtemp(prefix=f"glassbox-sft-{step}-"))
        tree = {"params": tr.state.params, "opt_state": tr.state.opt_state}
        if tr.state.extra is not None:
            tree["extra"] = tr.state.extra
        meta = {"step": step, "epoch": tr.cursor.epoch, "batch": tr.cursor.batch,
                "rng": self.deployer.rng_state().tolist(), "n_model_shards": self.deployer.mp_size}
        files = ckpt.write_local(staging / "sharded", tree, meta)
        if step >= self.stage_total:  # the final weights also in HF layout, for from_pretrained and fromRun
            host_params = _gather(tr.state.params)  # a collective: every host takes part
            self._final_params(jax.tree_util.tree_map(np.asarray, host_params))
            if self.lead:
                save_pretrained(open_store(staging), "", self.cfg, jax.tree_util.tree_map(np.asarray, host_params),
                                self.tok.to_json())
        self._stage_extra(staging)
        return staging, files

    def _final_params(self, host_params: Any) -> None:
        """The trained weights of the model in training, on the host (multi-stage runs chain them)."""

    def _stage_extra(self, staging: Path) -> None:
        """Files a recipe adds to each of its checkpoints (the progressive stage vocabularies)."""

    def final(self, manifest: Manifest) -> dict[str, Any]:
        fit = self.fit
        return {"loss": fit.history[-1]["loss"] if fit.history else None, "modelShards": self.deployer.mp_size,
                **{k: v for k, v in (fit.evals[-1] if fit.evals else {}).items() if k != "step"},
                **({"recipe": self.recipe.facts} if self.recipe.facts else {})}

    def result(self, outcome: Outcome) -> FinetuneResult:
        res = FinetuneResult(run_uri=outcome.run_uri, n_model_shards=self.placement.n_model_shards,
                             shard_reason=self.placement.reason)
        if outcome.already_complete:
            assert outcome.manifest.latest is not None
            res.already_complete, res.manifest, res.steps = True, outcome.manifest, outcome.manifest.latest.step
            return res
        res.history, res.evals, res.steps = self.fit.history, self.fit.evals, self.offset + self.trainer.step
        res.resumed_from, res.seconds = self.resumed_from, outcome.seconds
        res.manifest = outcome.manifest if outcome.publisher is not None else None
        return res


def run_pool(resources: Any, jax: Any) -> Any:
    """The pool a run plans for. A pool name is the operator's (its nodePools table): one that names
    an accelerator (h100, tpu-v5e-16) plans by that hardware; any other name (a CPU pool, such as the
    test cluster's `real`) is planned from the devices this process has, as the local backend is."""
    from ..redco.autoshard import pool_info

    if resources.backend == "local":
        return _local_pool(jax)
    try:
        return pool_info(resources.accelerator)
    except ValueError:
        return _local_pool(jax)


def _local_pool(jax: Any) -> Any:
    """The local backend's devices: an accelerator's own memory limit, else host memory (cpu)."""
    from ..redco.autoshard import Pool, pool_info

    dev = jax.devices()[0]
    if dev.platform != "cpu":
        try:
            limit = (dev.memory_stats() or {}).get("bytes_limit")
        except Exception:  # noqa: BLE001 - some backends have no memory stats
            limit = None
        if limit:
            return Pool(f"local-{dev.platform}", int(limit), jax.local_device_count())
    return pool_info(None)


def _gather(tree: Any) -> Any:
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _restore(trainer: Any, deployer: Any, store: ArtifactStore, entry: CheckpointEntry, ckpt: Any) -> None:
    """Put a published checkpoint back into the trainer: state, RNG and data cursor."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ..redco.trainer import Cursor, TrainState

    digests = {f.path.removeprefix("sharded/"): f.sha256 for f in entry.files if f.path.startswith("sharded/")}
    reader = ckpt.store_reader(store, f"{entry.path}/sharded", digests)
    s = trainer.state
    target = {"params": s.params, "opt_state": s.opt_state}
    sh = {"params": trainer.state_shardings.params, "opt_state": trainer.state_shardings.opt_state}
    if s.extra is not None:
        target["extra"], sh["extra"] = s.extra, trainer.state_shardings.extra
    tree = ckpt.restore(reader, jax.eval_shape(lambda: target), sh)
    meta = ckpt.read_index(reader)["meta"]
    step = jax.device_put(jnp.asarray(meta["step"], jnp.int32), deployer.replicated)
    trainer.state = TrainState(step, tree["params"], tree["opt_state"], tree.get("extra"))
    trainer.cursor = Cursor(int(meta["epoch"]), int(meta["batch"]))
    deployer.set_rng_state(np.asarray(meta["rng"], np.uint32))
