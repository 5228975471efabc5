"""The PretrainRun worker: prepare data, build or resume the model, train, publish every checkpoint.

Roles, as in torchtitan: `Trainer.run` drives steps and checkpoints; `train_step` runs one optimizer
step over the accumulation window; `forward_backward` does one micro-batch. Everything a worker
needs arrives in one `Resource` (the typed spec), the store and the RunContext; nothing reads
globals. PretrainWorkload supplies the parts; the run lifecycle (runtime.lifecycle) drives them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from glassbox_api.kinds.pretrainrun import PretrainRunSpec
from glassbox_api.manifest import (
    CheckpointEntry,
    DataRange,
    Manifest,
    RunRecord,
    checkpoint_dir,
    evals_dir,
    metrics_segment,
    read_manifest,
    spec_digest,
)
from glassbox_api.store import ArtifactStore

from ..runtime.context import RunContext
from ..runtime.lifecycle import OpenRun, Outcome, TrainingWorkload, run_training
from ..runtime.metrics import MetricsSink
from ..runtime.progress import Progress
from ..runtime.publisher import CheckpointPublisher, FaultHook
from ..runtime.spec import Resource
from . import analysis
from .config import TrainConfig
from .data import DataPlan, PreparedData, prepare
from .resume_state import load_optimizer, load_rng
from .loss import fused_cross_entropy, hidden_states_out, plain_cross_entropy
from .export import (
    TRAINER_STATE,
    build_config,
    build_model,
    download_checkpoint,
    hf_tokenizer,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from .strategy import DistInfo, Strategy, barrier, init_distributed, make_strategy

log = logging.getLogger("glassbox.pretrain")

# Dense bf16 peak FLOP/s by device name fragment (for MFU); RunContext.peak_tflops overrides.
PEAK_TFLOPS = {"H200": 989.5, "H100": 989.5, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}


@dataclass
class TrainHooks:
    """Test and operations seams: nothing here changes the maths, except cpu_bf16, which makes a
    CPU run take the bf16 paths (autocast, bf16 parameters, DeepSpeed's bf16) a GPU run takes."""

    on_step: Optional[Callable[[int, dict[str, Any]], None]] = None  # raise to interrupt a run
    fault_hook: Optional[FaultHook] = None  # publisher protocol faults
    staging_dir: Optional[Path] = None
    quiet: bool = False
    cpu_bf16: bool = False  # compute in bf16 on CPU too, so tests reach the bf16 paths without a GPU


@dataclass
class RunResult:
    run_uri: str
    manifest: Manifest
    steps: int
    resumed_from: Optional[int] = None
    final_loss: Optional[float] = None
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    already_complete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _deterministic(on: bool):
    """Deterministic kernels for the run only (the process may go on to do other work)."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def flops_per_token(model, seq_length: int) -> float:
    """6N + 12 L H T (PaLM appendix B): N counts every matmul weight, not the input embedding."""
    cfg = model.config
    n = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel()
    if not getattr(cfg, "tie_word_embeddings", False):
        n -= emb
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer")
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd")
    return 6.0 * n + 12.0 * layers * hidden * seq_length


def peak_flops(device: torch.device, override_tflops: Optional[float] = None) -> Optional[float]:
    """Peak dense FLOP/s of one device: the override (RunContext.peak_tflops), else by device name."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for frag, tf in PEAK_TFLOPS.items():
        if frag in name:
            return tf * 1e12
    return None


class Trainer:
    """One worker's training loop (every rank runs one; rank 0 also publishes)."""

    def __init__(self, cfg: TrainConfig, strategy: Strategy, data: PreparedData, plan: DataPlan,
                 dist: DistInfo, *, start_step: int = 0):
        self.cfg, self.strategy, self.data, self.plan, self.dist = cfg, strategy, data, plan, dist
        self.step = start_step
        self.schedule = cfg.schedule(plan.total_steps)
        self.loss_chunk = cfg.training.loss_chunk_tokens

    def forward_backward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        """Next-token cross-entropy on one micro-batch (inputs t[:-1], labels t[1:]); backward."""
        if self.loss_chunk:
            with self.strategy.autocast(), hidden_states_out(self.strategy.eval_model) as head:
                hidden = self.strategy.train_model(input_ids=x[:, :-1], use_cache=False).logits
            with self.strategy.autocast():
                loss = fused_cross_entropy(hidden, head.weight, x[:, 1:], self.loss_chunk)
        else:
            with self.strategy.autocast():
                logits = self.strategy.train_model(input_ids=x[:, :-1], use_cache=False).logits
            loss = plain_cross_entropy(logits, x[:, 1:])
        self.strategy.backward(loss / scale)
        self.strategy.after_backward()
        return loss.detach()

    def train_step(self, step_idx: int) -> dict[str, float]:
        """One optimizer step (0-based index step_idx) over this rank's share of the global batch."""
        cfg = self.cfg
        lr = self.schedule(step_idx + 1)
        self.strategy.set_lr(lr)
        rows = self.plan.rank_batch(step_idx, self.dist.rank, self.dist.world_size)
        mb, accum = cfg.micro_batch_size, cfg.grad_accum
        total = torch.zeros((), device=self.dist.device)
        for j in range(accum):
            x = self.data.tokens[rows[j * mb:(j + 1) * mb]].long().to(self.dist.device, non_blocking=True)
            with self.strategy.sync_context(last_micro=j == accum - 1):
                total += self.forward_backward(x, accum)
        norm = self.strategy.clip()
        self.strategy.step()
        loss = total / accum
        if self.dist.world_size > 1:
            import torch.distributed as tdist

            tdist.all_reduce(loss, op=tdist.ReduceOp.AVG if self.dist.device.type == "cuda" else tdist.ReduceOp.SUM)
            if self.dist.device.type != "cuda":
                loss = loss / self.dist.world_size  # gloo has no AVG
        # .item() is a device sync point: once per step, for the per-step loss curve LLM360 publishes.
        return {"loss": loss.item(), "lr": lr, "grad_norm": float(norm)}

    def evaluate(self, step: int, spec: PretrainRunSpec) -> dict[str, float]:
        """The spec's analysis on the current weights (every rank takes part; results on all)."""
        out: dict[str, float] = {}
        a = spec.analysis
        kw = dict(device=self.dist.device, rank=self.dist.rank, world=self.dist.world_size,
                  autocast=self.strategy.autocast if self.strategy.bf16 else None)
        model = self.strategy.eval_model
        if a.perplexity and self.plan.heldout_samples:
            out.update(analysis.perplexity(model, self.data.tokens, self.plan.heldout_samples,
                                           batch_size=self.cfg.micro_batch_size, **kw))
        m = a.memorization
        if m.enabled:
            epoch, k, _ = self.plan.locate(step - 1)  # the chunk this checkpoint just trained on
            rows = self.plan.chunk_order(k, epoch)[: m.samples]
            out.update(analysis.memorization(model, self.data.tokens, rows, prompt_tokens=m.prompt_tokens,
                                             generate_tokens=m.generate_tokens,
                                             batch_size=self.cfg.micro_batch_size, **kw))
        return out


def _load_data(run_store: ArtifactStore, spec: PretrainRunSpec, dist: DistInfo) -> PreparedData:
    """Rank 0 prepares (or reloads) and publishes data/; the others read what it published."""
    data = None
    if dist.is_main:
        data = PreparedData.load(run_store)
        if data is None:
            data = prepare(spec.data)
            data.save(run_store)
    barrier()
    if data is None:
        data = PreparedData.load(run_store)
        if data is None:
            raise RuntimeError("rank 0 did not publish data/")
    return data


def _environment() -> dict[str, str]:
    import transformers

    from importlib.metadata import PackageNotFoundError, version

    try:
        gv = version("glassbox")
    except PackageNotFoundError:  # running from a source tree
        gv = "unknown"
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "glassbox": gv, "platform": platform.platform()}


def run_pretrain(resource: Resource[PretrainRunSpec], store: ArtifactStore, *, dist: Optional[DistInfo] = None,
                 hooks: Optional[TrainHooks] = None, ctx: Optional[RunContext] = None) -> RunResult:
    """Run (or resume, or find complete) the PretrainRun `resource` publishing under `store`.

    ctx defaults to one read from this process's environment (what the entrypoint passes down).
    """
    hooks = hooks or TrainHooks()
    ctx = ctx or RunContext.from_env()
    if hooks.quiet:
        ctx = replace(ctx, quiet=True)
    with _deterministic(resource.spec.training.deterministic):
        dist = dist or init_distributed(ctx.torch, force_cpu=ctx.force_cpu)
        run_store = store.sub(resource.run_prefix)
        if dist.is_main:
            run_store.ensure()
        say = print_line if dist.is_main and not ctx.quiet else (lambda msg: None)
        say(f"glassbox: PretrainRun {resource.namespace}/{resource.name} -> {run_store.uri()}")
        workload = PretrainWorkload(resource, dist, hooks)
        # Rank 0 prepares data/ first: the manifest is read by every rank after that barrier.
        workload.data = _load_data(run_store, resource.spec, dist)
        run = OpenRun(run_store, read_manifest(run_store), dist.is_main, ctx, say)
        identity = {"kind": resource.kind, "name": resource.name, "namespace": resource.namespace, "uid": resource.uid}
        return run_training(workload, run, identity)


def print_line(msg: str) -> None:
    print(msg, flush=True)


class PretrainWorkload(TrainingWorkload[RunResult]):
    """PretrainRun's parts for the shared lifecycle (runtime.lifecycle.run_training)."""

    kind = "PretrainRun"

    def __init__(self, resource: Resource[PretrainRunSpec], dist: DistInfo, hooks: TrainHooks):
        self.resource, self.spec, self.dist, self.hooks = resource, resource.spec, dist, hooks
        self.data: Optional[PreparedData] = None
        self.tmp_root: Optional[Path] = None
        self.resume_dir: Optional[Path] = None
        self.trainer_state: dict[str, Any] = {}
        self.start = 0
        self.stage_seconds = 0.0  # training-thread time spent evaluating and snapshotting checkpoints

    def plan(self, run: OpenRun) -> int:
        assert self.data is not None
        self.run_store = run.store
        cfg = TrainConfig(self.spec, self.dist.world_size, self.dist.rank)
        self.tmp_root = Path(tempfile.mkdtemp(prefix="glassbox-", dir=self.hooks.staging_dir or run.ctx.staging_dir))
        if run.resume is not None:
            self.resume_dir = download_checkpoint(run.store, run.resume, self.tmp_root / "resume")
            self.trainer_state = json.loads((self.resume_dir / TRAINER_STATE).read_text())
            if self.trainer_state["global_batch"] != cfg.global_batch:
                cfg = replace(cfg, grad_accum_override=cfg.accum_for_global_batch(self.trainer_state["global_batch"]))
                run.say(f"world size {self.dist.world_size}: gradient accumulation {cfg.grad_accum} keeps the global batch")
        self.cfg = cfg
        self.data_plan = DataPlan(self.data.manifest, cfg.global_batch, self.spec.training.max_steps)
        self.total = self.data_plan.total_steps
        self.ckpt_steps = self.data_plan.checkpoint_steps(self.spec.checkpoint.every_steps)
        return self.total

    def build(self, run: OpenRun) -> int:
        spec, cfg = self.spec, self.cfg
        assert self.data is not None
        tok_meta = self.data.manifest["tokenizer"]
        if self.resume_dir is not None:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(self.resume_dir, dtype=torch.float32)
        else:
            config = build_config(spec.model, vocab_size=tok_meta["vocab_size"], eod_id=tok_meta["eod_id"],
                                  pad_id=tok_meta["pad_id"], seq_length=cfg.seq_length)
            model = build_model(config, spec.training.seed)
        if spec.training.activation_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        strategy = make_strategy(spec.training.strategy, model, spec.training, self.dist,
                                 micro_batch=cfg.micro_batch_size, grad_accum=cfg.grad_accum,
                                 cpu_bf16=self.hooks.cpu_bf16)
        if spec.training.compile:
            strategy.compile()
        if self.resume_dir is not None:
            strategy.load_optimizer_state(load_optimizer(self.resume_dir))  # no pickle: resume_state.py
            set_rng_state(load_rng(self.resume_dir))
            self.start = int(self.trainer_state["step"])
            assert run.resume is not None
            run.say(f"resuming from checkpoint step {self.start} ({run.store.uri(run.resume.path)})")
        else:
            torch.manual_seed(spec.training.seed + 1)  # the training RNG stream, apart from the init stream
        self.trainer = Trainer(cfg, strategy, self.data, self.data_plan, self.dist, start_step=self.start)
        self.hf_tok = hf_tokenizer(self.data.tokenizer, cfg.seq_length) if self.dist.is_main else None
        return self.start

    def record(self, run: OpenRun) -> RunRecord:
        r, spec = self.resource, self.spec
        assert self.data is not None
        env = _environment()
        return RunRecord(
            kind=r.kind, name=r.name, namespace=r.namespace, uid=r.uid,
            # The guard digest covers what cannot change mid-run (the CRD makes these immutable);
            # resources.workers, suspend and the checkpoint cadence may change between attempts.
            spec=r.raw_spec,
            spec_digest=spec_digest({k: r.raw_spec.get(k) for k in ("model", "data", "training")}),
            code_version=run.ctx.code_version or env["glassbox"], image=run.ctx.image,
            seeds={"data": spec.data.seed, "training": spec.training.seed},
            data_manifest_digest=self.data.digest, tokenizer_digest=self.data.manifest["tokenizer"]["digest"],
            world_size=self.dist.world_size, environment=env,
        )

    def publisher_options(self) -> dict[str, Any]:
        return {"keep_optimizer": self.spec.checkpoint.keep_optimizer, "fault_hook": self.hooks.fault_hook}

    def on_commit(self, progress: Progress, entry: CheckpointEntry, manifest: Manifest) -> None:
        ev = "  ".join(f"{k} {v:.4g}" for k, v in entry.evals.items() if not k.endswith("samples"))
        progress.note(f"published checkpoint step {entry.step} ({len(entry.files)} files, "
                      f"{entry.size / 1e6:.1f} MB) {ev} -> {self.run_store.uri(entry.path)}")

    def train(self, run: OpenRun, publisher: Optional[CheckpointPublisher], progress: Progress) -> None:
        metrics = MetricsSink(name=self.resource.name, enabled=self.dist.is_main, port=run.ctx.metrics_port)
        fpt = flops_per_token(self.trainer.strategy.eval_model, self.cfg.seq_length)
        peak = peak_flops(self.dist.device, run.ctx.peak_tflops)
        prev_digest = (run.resume.data.order_digest or "") if run.resume is not None else ""
        interval_start, losses = self.start, []
        for step_idx in range(self.start, self.total):
            stats = self._step(step_idx, fpt, peak)
            step = step_idx + 1
            losses.append(stats["loss"])
            if self.dist.is_main:
                metrics.record(step, {**stats, "tokens": self.data_plan.tokens_at(step)})
            progress.update(step, {"loss": stats["loss"], "lr": stats["lr"], "tokens_per_s": stats["tokens_per_s"]})
            if step in self.ckpt_steps:
                t_ck = time.perf_counter()
                assert self.tmp_root is not None
                prev_digest = _checkpoint(self.trainer, self.spec, run.store, publisher, metrics, self.hf_tok,
                                          self.tmp_root, step, interval_start, losses, prev_digest)
                interval_start, losses = step, []
                self.stage_seconds += time.perf_counter() - t_ck
            if self.hooks.on_step:
                self.hooks.on_step(step, stats)
            run.ctx.faults.after_step(step, drain=publisher.drain if publisher is not None else None)

    def _step(self, step_idx: int, fpt: float, peak: Optional[float]) -> dict[str, float]:
        """One optimizer step, timed: throughput (and MFU where the device's peak is known)."""
        t0 = time.perf_counter()
        stats = self.trainer.train_step(step_idx)
        stats["tokens_per_s"] = self.cfg.tokens_per_step / (time.perf_counter() - t0)
        if peak:
            stats["mfu"] = stats["tokens_per_s"] * fpt / (peak * self.dist.world_size)
        return stats

    def final(self, manifest: Manifest) -> dict[str, Any]:
        last = manifest.latest
        return {"steps": self.total, "tokens": self.data_plan.tokens_at(self.total),
                "loss": last.loss if last else None, **(last.evals if last else {})}

    def finish(self) -> None:
        barrier()

    def cleanup(self) -> None:
        if self.tmp_root is not None:
            shutil.rmtree(self.tmp_root, ignore_errors=True)

    def result(self, outcome: Outcome) -> RunResult:
        man = outcome.manifest
        if outcome.already_complete:
            assert man.latest is not None
            return RunResult(outcome.run_uri, man, man.latest.step, already_complete=True, final_loss=man.latest.loss)
        done, seconds = self.total - self.start, outcome.loop_seconds
        extra = {"loop_seconds": seconds, "checkpoint_seconds": self.stage_seconds}
        if outcome.publisher is not None:
            extra.update(publish_blocked_seconds=outcome.publisher.blocked_seconds,
                         upload_seconds=outcome.publisher.upload_seconds)
        return RunResult(outcome.run_uri, man, self.total, resumed_from=self.start or None,
                         final_loss=man.latest.loss if man.latest else None, seconds=outcome.seconds,
                         tokens_per_s=done * self.cfg.tokens_per_step / seconds if seconds > 0 and done else 0.0,
                         extra=extra)


def _checkpoint(trainer: Trainer, spec: PretrainRunSpec, run_store: ArtifactStore, publisher: Optional[CheckpointPublisher],
                metrics: MetricsSink, hf_tok, tmp_root: Path, step: int, interval_start: int,
                losses: list[float], prev_digest: str) -> str:
    """Evaluate, snapshot and hand one checkpoint to the publisher; returns the new order digest."""
    plan, cfg = trainer.plan, trainer.cfg
    evals = trainer.evaluate(step, spec)
    state = trainer.strategy.full_model_state()  # collective under FSDP: every rank calls it
    opt_state = trainer.strategy.full_optimizer_state()
    digest = plan.order_digest(interval_start, step, prev_digest)
    if publisher is None:
        return digest
    cur = plan.cursor(step)
    loss = sum(losses) / len(losses) if losses else None
    trainer_state = {
        "step": step, "tokens": plan.tokens_at(step), "loss": loss, "global_batch": cfg.global_batch,
        "micro_batch_size": cfg.micro_batch_size, "grad_accum": cfg.grad_accum, "world_size": cfg.world_size,
        "lr": trainer.schedule(step), "data_manifest_digest": plan.digest, "order_digest": digest,
        "cursor": cur.__dict__,
    }
    staging = tmp_root / f"ckpt-{step:08d}"
    write_checkpoint(staging / "files", model=trainer.strategy.eval_model, state_dict=state, tokenizer=hf_tok,
                     trainer_state=trainer_state, optimizer_state=opt_state, rng=rng_state())
    extras = {}
    if evals:
        p = staging / "results.json"
        p.write_text(json.dumps({"step": step, **evals}, indent=2, sort_keys=True) + "\n")
        extras[f"{evals_dir(step)}/results.json"] = p
    seg = metrics.segment()
    if seg:
        p = staging / "metrics.jsonl"
        p.write_bytes(seg)
        extras[metrics_segment(step)] = p
    entry = CheckpointEntry(
        step=step, tokens=plan.tokens_at(step), loss=loss, path=checkpoint_dir(step), evals=evals,
        evals_path=f"{evals_dir(step)}/results.json" if evals else None,
        metrics_path=metrics_segment(step) if seg else None,
        data=DataRange(samples_start=interval_start * cfg.global_batch, samples_end=cur.samples,
                       chunks_completed=cur.chunks_completed, chunk=cur.chunk, chunk_offset=cur.chunk_offset,
                       epoch=cur.epoch, order_digest=digest),
    )
    publisher.submit(staging / "files", entry, extras=extras, cleanup=True)
    return digest
