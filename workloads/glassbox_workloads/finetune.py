"""The ShardedFinetune workload: `run(spec, store)` and the `python -m glassbox_workloads` entry.

One pass: resolve the starting weights (uri, fromRun or random), build the recipe, pick the shard
count, train with the Redco Trainer, evaluate, and publish sharded checkpoints through the run
manifest (the single commit point). A rerun of the same resource resumes from the latest
published checkpoint: params, optimizer state, recipe state (target network), RNG and data cursor.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from glassbox_api.manifest import CheckpointEntry, DataRange, Manifest, RunRecord, checkpoint_dir, evals_dir, read_manifest, spec_digest
from glassbox_api.store import ArtifactStore, open_store

log = logging.getLogger("glassbox.finetune")


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


def _optimizer(t: Any, schedule: Any):
    import optax

    return optax.adamw(schedule, weight_decay=t.weight_decay)


def run(spec: Any, store: ArtifactStore, *, root: Optional[ArtifactStore] = None, name: str = "finetune",
        namespace: str = "default", uid: str = "local", raw_spec: Optional[dict] = None, quiet: bool = True,
        base_dir: Optional[Path] = None) -> FinetuneResult:
    """Run (or resume) one ShardedFinetune whose run directory is `store` (already the run prefix).

    `root` is the store root that holds other runs (for model.fromRun); `base_dir` resolves relative
    dataset paths that do not exist relative to the working directory.
    """
    from .redco.mesh import initialize_distributed

    if spec.resources.backend == "jobset" and spec.resources.workers > 1:
        initialize_distributed(num_processes=spec.resources.workers)

    import jax
    import numpy as np

    from .finetune_setup import build_recipe, load_examples, place, planned_devices, pool_info, shapes_for
    from .flax_models import build_model, init_params
    from .flax_models.hf import load_pretrained, save_pretrained
    from .redco import Deployer, Predictor, Trainer
    from .redco import checkpoints as ckpt
    from .runtime.progress import Progress
    from .runtime.publisher import CheckpointPublisher, ensure_run_record

    t0 = time.perf_counter()
    res = FinetuneResult(run_uri=store.uri())
    cfg, tok, shapes, source = shapes_for(spec, root, namespace)
    model = build_model(cfg)
    recipe = build_recipe(spec, model, cfg, tok)
    train = load_examples(spec.data.train, base_dir)
    evals = load_examples(spec.data.eval, base_dir) if spec.data.eval else []

    pool = pool_info(spec.resources.accelerator) if spec.resources.backend != "local" else _local_pool(jax)
    n_dev = jax.device_count()
    if spec.resources.backend != "local" and n_dev != planned_devices(spec, pool, jax.local_device_count()):
        log.warning("running on %d devices, the spec plans %d", n_dev, planned_devices(spec, pool, jax.local_device_count()))
    placement = place(spec, shapes, n_dev, pool)
    res.n_model_shards, res.shard_reason = placement.n_model_shards, placement.reason
    t = spec.training
    deployer = Deployer(n_model_shards=placement.n_model_shards, seed=t.seed)
    gbs = deployer.global_batch_size(t.per_device_batch_size * t.gradient_accumulation_steps)
    per_epoch = len(train) // gbs
    if per_epoch == 0:
        raise ValueError(f"{len(train)} training examples make no global batch of {gbs} "
                         f"({t.per_device_batch_size} per device x {deployer.dp_size} data-parallel x "
                         f"{t.gradient_accumulation_steps} accumulation)")
    total = t.epochs * per_epoch if not t.max_steps else min(t.max_steps, t.epochs * per_epoch)
    schedule = deployer.get_lr_schedule(t.learning_rate, total, t.schedule, t.warmup_steps)

    if source.store is not None:
        _, params = load_pretrained(source.store, source.prefix)
    else:
        params = deployer.init_sharded(lambda r: init_params(cfg, r), jax.random.key(t.seed))
    trainer = Trainer(deployer, recipe.collate_fn, recipe.loss_fn, params, _optimizer(t, schedule), schedule,
                      accumulate_grad_batches=t.gradient_accumulation_steps, init_extra=recipe.init_extra,
                      update_extra=recipe.update_extra, augment_fn=recipe.augment_fn)
    del params
    predictor = Predictor(deployer, recipe.pred_collate_fn or recipe.collate_fn, recipe.pred_fn, recipe.output_fn,
                          params_specs=trainer.params_specs)

    lead = jax.process_index() == 0
    manifest = read_manifest(store) or Manifest(kind="ShardedFinetune", name=name, namespace=namespace, uid=uid)
    if manifest.state == "completed" and manifest.latest is not None:
        res.already_complete, res.manifest, res.steps = True, manifest, manifest.latest.step
        return res
    if lead:
        ensure_run_record(store, RunRecord(
            kind="ShardedFinetune", name=name, namespace=namespace, uid=uid, spec=raw_spec or {},
            spec_digest=spec_digest(raw_spec or {}), seeds={"seed": t.seed}, world_size=jax.process_count(),
            environment={"jax": jax.__version__, "python": sys.version.split()[0]}))
    resume = manifest.latest_resumable
    if resume is not None:
        _restore(trainer, deployer, store, resume, ckpt)
        res.resumed_from = resume.step
    manifest = manifest.model_copy(update={"total_steps": total, "kind": "ShardedFinetune", "name": name,
                                           "namespace": namespace, "uid": uid, "state": "running"})
    publisher = CheckpointPublisher(store, manifest=manifest, verify="size") if lead else None

    progress = Progress(total, trainer.step, description=f"finetune {name}", enabled=not quiet)
    pending_evals: dict[int, dict] = {}

    def eval_fn(tr: Trainer) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not evals:
            return out
        ebs = t.per_device_batch_size
        out["eval_loss"] = tr.eval_loss(evals, ebs)  # soft-q: the off-policy part of its loss
        if recipe.eval_metric_fn is not None:
            preds = predictor.predict(evals, ebs, tr.params, rng=deployer.gen_rng())
            out.update({k: float(v) for k, v in recipe.eval_metric_fn(evals, preds).items()})
            if lead:
                store.write_json(f"{evals_dir(tr.step)}/predictions.json",
                                 [{"example": e, "prediction": p} for e, p in zip(evals[:200], preds[:200])])
        if lead:
            store.write_json(f"{evals_dir(tr.step)}/results.json", {"step": tr.step, **out})
        pending_evals[tr.step] = out
        progress.note(f"eval step {tr.step}: " + " ".join(f"{k}={v:.4g}" for k, v in out.items()))
        return out

    def save_fn(tr: Trainer, last: dict[str, float]) -> None:
        step = tr.step
        if any(c.step == step for c in (publisher.manifest.checkpoints if publisher else [])):
            return
        staging = Path(tempfile.mkdtemp(prefix=f"glassbox-sft-{step}-"))
        tree = {"params": tr.state.params, "opt_state": tr.state.opt_state}
        if tr.state.extra is not None:
            tree["extra"] = tr.state.extra
        meta = {"step": step, "epoch": tr.cursor.epoch, "batch": tr.cursor.batch,
                "rng": deployer.rng_state().tolist(), "n_model_shards": deployer.mp_size}
        files = ckpt.write_local(staging / "sharded", tree, meta)
        if step >= total:  # the final weights also in HF layout, for from_pretrained and fromRun
            host_params = _gather(tr.state.params)  # a collective: every host takes part
            if lead:
                save_pretrained(open_store(staging), "", cfg, jax.tree_util.tree_map(np.asarray, host_params),
                                tok.to_json())
        if not lead:  # other hosts upload their shards themselves, before the barrier below
            for f in files:
                store.put_file(f"{checkpoint_dir(step)}/sharded/{f}", staging / "sharded" / f)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            # host 0 commits the manifest only once every host's shards are in the store
            multihost_utils.sync_global_devices(f"glassbox-checkpoint-{step}")
        if not lead:
            return
        ev = pending_evals.get(step, {})
        entry = CheckpointEntry(step=step, tokens=step * gbs, loss=last.get("loss"), path=checkpoint_dir(step),
                                data=DataRange(samples_end=step * gbs, epoch=tr.cursor.epoch,
                                               chunk_offset=tr.cursor.batch * gbs),
                                evals={k: v for k, v in ev.items() if isinstance(v, (int, float))},
                                evals_path=evals_dir(step) if ev else None)
        publisher.submit(staging, entry)

    every = t.checkpoint_every or per_epoch
    eval_every = t.eval_every or per_epoch
    orig_step = trainer.train_step

    def stepping(hb):  # progress bar around the step, without the Trainer knowing about it
        m = orig_step(hb)
        progress.update(trainer.step, {"loss": m.get("loss"), "lr": m.get("lr")})
        return m

    trainer.train_step = stepping
    try:
        fit = trainer.fit(train, t.per_device_batch_size, t.epochs, max_steps=total, eval_fn=eval_fn,
                          eval_every=eval_every, save_every=every, save_fn=save_fn, log_every=0, seed=t.seed)
        res.history, res.evals, res.steps = fit.history, fit.evals, trainer.step
        if publisher is not None:
            final = {"loss": fit.history[-1]["loss"] if fit.history else None, "model_shards": deployer.mp_size,
                     **{k: v for k, v in (fit.evals[-1] if fit.evals else {}).items() if k != "step"}}
            publisher.update(lambda m: m.model_copy(update={"state": "completed", "final": final}))
            publisher.close()
            res.manifest = publisher.manifest
    except BaseException:
        if publisher is not None:
            publisher.abort()
        raise
    finally:
        progress.close()
    res.seconds = time.perf_counter() - t0
    return res


def _local_pool(jax: Any) -> Any:
    """The local backend's devices: an accelerator's own memory limit, else host memory (cpu)."""
    from .redco.autoshard import Pool, pool_info

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

    from .redco.trainer import Cursor, TrainState

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


def summary_lines(name: str, res: FinetuneResult) -> list[str]:
    head = "already complete" if res.already_complete else f"completed {res.steps} steps in {res.seconds:.1f} s"
    out = [f"ShardedFinetune {name}: {head}" + (f" (resumed at step {res.resumed_from})" if res.resumed_from else ""),
           f"model shards: {res.n_model_shards} ({res.shard_reason})"]
    if res.manifest is not None:
        out.append(f"{'step':>8} {'loss':>8}  evals  checkpoint")
        for c in res.manifest.checkpoints:
            ev = " ".join(f"{k}={v:.4g}" for k, v in sorted(c.evals.items()))
            loss = f"{c.loss:>8.4f}" if c.loss is not None else " " * 8
            out.append(f"{c.step:>8} {loss}  {ev or '-'}  {c.path}/")
    out.append(f"run:      {res.run_uri}")
    out.append(f"manifest: {res.run_uri.rstrip('/')}/manifest.json")
    return out


def main(args: Any) -> int:
    """`python -m glassbox_workloads shardedfinetune --spec FILE --store URI`."""
    from glassbox_api.store import StoreError

    from .runtime.publisher import PublishError
    from .runtime.spec import load_or_report

    resource = load_or_report(args.spec, "ShardedFinetune", run_id=args.run_id)
    if resource is None:
        return 2
    try:
        root = open_store(args.store)
        run_store = root.sub(resource.run_prefix)
        res = run(resource.spec, run_store, root=root, name=resource.name, namespace=resource.namespace, uid=resource.uid,
                  raw_spec=resource.raw_spec, quiet=args.quiet, base_dir=Path(args.spec).resolve().parent)
    except (StoreError, PublishError, ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: ShardedFinetune {resource.name} failed: {exc}", file=sys.stderr)
        return 1
    import jax

    if jax.process_index() == 0 and not args.quiet:
        print("\n".join(summary_lines(resource.name, res)), flush=True)
    return 0
