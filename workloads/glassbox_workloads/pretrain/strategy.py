"""Data-parallel strategies behind one small interface: single process, DDP, FSDP2, DeepSpeed ZeRO.

A strategy owns the wrapped model and the optimizer and knows how to sync gradients, step, and
produce/consume full (unsharded) state dicts on rank 0 for publishing and resuming.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch

from glassbox_api.kinds.pretrainrun import Optimizer, PretrainTraining

from ..runtime.context import TorchProcess
from .precision import MasterCopy

@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(proc: TorchProcess, *, force_cpu: bool = False) -> DistInfo:
    """Join the process group torchrun/Ray Train described (RunContext.torch; none for one process)."""
    import torch.distributed as dist

    world, rank, local = proc.world_size, proc.rank, proc.local_rank
    cuda = torch.cuda.is_available() and not force_cpu
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank, world, local, device)


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def param_groups(model, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices, not norms and biases (the usual LLaMA/GPT recipe)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model, opt: Optimizer) -> torch.optim.Optimizer:
    # The fused CUDA kernel where every parameter is a plain CUDA tensor; multi-tensor foreach otherwise
    # (FSDP's DTensor parameters and CPU runs).
    params = list(model.parameters())
    fused = all(p.is_cuda and type(p.data) is torch.Tensor for p in params)
    kw = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(param_groups(model, opt.weight_decay), lr=0.0, betas=(opt.beta1, opt.beta2),
                             eps=opt.eps, **kw)


class Strategy:
    """One process, no wrapping. Subclasses add the parallelism."""

    name = "single"
    master: Optional[MasterCopy] = None

    def __init__(self, model, training: PretrainTraining, dist: DistInfo, *, cpu_bf16: bool = False):
        self.model = self._place(model, training, dist, cpu_bf16)
        self.optimizer: torch.optim.Optimizer = make_optimizer(self.opt_model, training.optimizer)

    def _place(self, model, training: PretrainTraining, dist: DistInfo, cpu_bf16: bool):
        """Move the model to the device and settle its precision (bf16 parameters get an fp32 master).

        CPU runs compute in fp32 unless cpu_bf16 (tests of the bf16 paths on machines without GPUs)."""
        self.dist, self.training = dist, training
        self.bf16 = training.precision == "bf16" and (dist.device.type == "cuda" or cpu_bf16)
        model = model.to(dist.device)
        if self.bf16 and getattr(training, "param_dtype", "fp32") == "bf16":
            self.master = MasterCopy(model)
        return model

    @property
    def eval_model(self):
        return self.model

    @property
    def opt_model(self):
        """The module whose parameters the optimizer steps and checkpoints publish: the fp32 master
        where parameters are bf16, else the model itself."""
        return self.master.master if self.master is not None else self.eval_model

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.dist.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sync_context(self, last_micro: bool):
        return contextlib.nullcontext()

    _compiled = None

    @property
    def train_model(self):
        """What the training step calls: the wrapped model, or its torch.compile'd form. Everything
        else (state dicts, no_sync, evaluation) keeps using the eager module and its names."""
        return self._compiled if self._compiled is not None else self.model

    def compile(self) -> None:
        self._compiled = torch.compile(self.model)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def after_backward(self) -> None:
        """Called after each micro-batch's backward (DeepSpeed steps its engine here)."""

    def set_lr(self, lr: float) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def clip(self) -> torch.Tensor:
        c = self.training.grad_clip
        if self.master is not None:
            self.master.grads_to_master()
        params = [p for p in self.opt_model.parameters() if p.grad is not None]
        # max_norm=inf still returns the norm, so it is logged even when clipping is off.
        return torch.nn.utils.clip_grad_norm_(params, c if c > 0 else float("inf"))

    def step(self) -> None:
        self.optimizer.step()
        if self.master is not None:
            self.master.write_back()
        else:
            self.optimizer.zero_grad(set_to_none=True)

    # ---- state -------------------------------------------------------------------------------
    def full_model_state(self) -> Optional[dict[str, torch.Tensor]]:
        return {k: v.detach().cpu() for k, v in self.opt_model.state_dict().items()}

    # Optimizer state is saved keyed by parameter names (torch.distributed.checkpoint's full form),
    # the same for every strategy, so a run checkpointed under FSDP resumes under DDP and back.
    def _opts(self, **kw):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True, **kw)

    def full_optimizer_state(self) -> Optional[dict[str, Any]]:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(self.opt_model, self.optimizer, options=self._opts())

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(self.opt_model, self.optimizer, optim_state_dict=state,
                                 options=self._opts(broadcast_from_rank0=False))


class DDPStrategy(Strategy):
    name = "ddp"

    def __init__(self, model, training: PretrainTraining, dist: DistInfo, *, cpu_bf16: bool = False):
        from torch.nn.parallel import DistributedDataParallel as DDP

        self.inner = self._place(model, training, dist, cpu_bf16)
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        self.model = DDP(self.inner, device_ids=ids)
        self.optimizer = make_optimizer(self.opt_model, training.optimizer)

    @property
    def eval_model(self):
        return self.inner

    def sync_context(self, last_micro: bool):
        # Gradient all-reduce only on the last micro-batch of an accumulation window.
        return contextlib.nullcontext() if last_micro else self.model.no_sync()

    def full_model_state(self):
        return {k: v.detach().cpu() for k, v in self.opt_model.state_dict().items()} if self.dist.is_main else None

    def full_optimizer_state(self):
        return super().full_optimizer_state() if self.dist.is_main else None


class FSDPStrategy(Strategy):
    """FSDP2 (fully_shard) per decoder layer and at the root; full state dicts gathered to rank 0."""

    name = "fsdp"

    def __init__(self, model, training: PretrainTraining, dist: DistInfo, *, cpu_bf16: bool = False):
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        model = self._place(model, training, dist, cpu_bf16)  # paramDtype bf16 is ddp-only (CEL)
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if self.bf16 else MixedPrecisionPolicy()
        for layer in _decoder_layers(model):
            fully_shard(layer, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        self.model = model
        self.optimizer = make_optimizer(model, training.optimizer)

    def autocast(self):
        return contextlib.nullcontext()  # the mixed-precision policy casts parameters itself

    def sync_context(self, last_micro: bool):
        self.model.set_requires_gradient_sync(last_micro)
        return contextlib.nullcontext()

    def clip(self) -> torch.Tensor:
        c = self.training.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(list(self.model.parameters()), c if c > 0 else float("inf"))
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def full_model_state(self):
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        sd = get_model_state_dict(self.model, options=self._opts())
        return sd if self.dist.is_main else None

    def full_optimizer_state(self):
        sd = super().full_optimizer_state()  # a collective: every rank takes part
        return sd if self.dist.is_main else None


class DeepSpeedStrategy(Strategy):
    """DeepSpeed ZeRO 1/2/3 (the `deepspeed` extra). Resume state is saved in the same full, name-keyed
    form as the other strategies (torch.distributed.checkpoint's), gathered from the ZeRO partitions,
    so a ZeRO run resumes under any world size, and under DDP or FSDP, and back."""

    name = "deepspeed"
    STATE_KEYS = ("exp_avg", "exp_avg_sq")

    def __init__(self, model, training: PretrainTraining, dist: DistInfo, micro_batch: int, grad_accum: int, *,
                 cpu_bf16: bool = False):
        try:
            import deepspeed
        except ImportError as exc:
            raise RuntimeError("spec.training.strategy deepspeed needs the deepspeed package in the image "
                               "(pip install 'glassbox[deepspeed]'), or pick strategy ddp or fsdp") from exc
        import torch.distributed as tdist

        os.environ.setdefault("LOCAL_RANK", str(dist.local_rank))  # the engine insists on it
        if not tdist.is_initialized():
            # DeepSpeed always talks through a process group; one process gets a group of one.
            tdist.init_process_group("nccl" if dist.device.type == "cuda" else "gloo", store=tdist.HashStore(),
                                     rank=0, world_size=1)
        self.dist = dist
        self.training = training
        self.bf16 = training.precision == "bf16" and (dist.device.type == "cuda" or cpu_bf16)
        self.stage = training.zero_stage or 2
        o = training.optimizer
        cfg = {
            "train_micro_batch_size_per_gpu": micro_batch,
            "gradient_accumulation_steps": grad_accum,
            "gradient_clipping": training.grad_clip,
            "zero_optimization": {"stage": self.stage},
            "bf16": {"enabled": self.bf16},
            "steps_per_print": 1 << 30,
        }
        model = model.to(dist.device)
        # The engine casts the module to bf16 and builds its fp32 master from the rounded copy; keep
        # the true fp32 weights (a fresh init or a resumed checkpoint's master) to put back.
        exact = {n: p.detach().cpu().clone() for n, p in model.named_parameters()} if self.bf16 else None
        opt = torch.optim.AdamW(param_groups(model, o.weight_decay), lr=0.0, betas=(o.beta1, o.beta2), eps=o.eps,
                                foreach=True)
        self.model, self.optimizer, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=cfg)
        if exact is not None:
            self._set_master(exact)

    def _set_master(self, weights: dict[str, torch.Tensor]) -> None:
        """Make ZeRO's fp32 master copy `weights` exactly (every rank calls; each keeps its partition)."""
        from deepspeed.utils import safe_set_full_fp32_param

        for n, p in self.eval_model.named_parameters():
            safe_set_full_fp32_param(p, weights[n].to(self.dist.device, torch.float32))

    @property
    def eval_model(self):
        return self.model.module

    def compile(self) -> None:
        self.model.compile()  # the engine compiles its module in place and stays the engine

    def autocast(self):
        return contextlib.nullcontext()

    def backward(self, loss):
        # The engine scales by 1/grad_accum itself; our loss is already scaled, so undo that.
        self.model.backward(loss * self.model.gradient_accumulation_steps())

    def clip(self):
        return torch.tensor(float(self.model.get_global_grad_norm() or 0.0))

    def after_backward(self):
        self.model.step()  # the engine counts micro-steps; only the last one applies the update

    def step(self):
        pass

    def set_lr(self, lr: float) -> None:
        for g in self._base.param_groups:
            g["lr"] = lr

    @property
    def _base(self) -> torch.optim.Optimizer:
        """The torch AdamW that ZeRO runs on its flat fp32 partitions."""
        return self.optimizer.optimizer

    def _flats(self) -> list[torch.Tensor]:
        """This rank's flat fp32 partitions, the tensors the torch optimizer keys its state by. ZeRO-3
        hands them to the optimizer's param_groups only for the duration of a step."""
        if self.stage == 3:
            return list(self.optimizer.fp32_partitioned_groups_flat)
        return [flat for g in self._base.param_groups for flat in g["params"]]

    def _lp_groups(self) -> list[list[torch.nn.Parameter]]:
        """The model's parameters per optimizer group, in the order they were handed to the optimizer."""
        groups = getattr(self.optimizer, "bit16_groups", None)  # ZeRO 1/2
        if groups is None:
            groups = self.optimizer.fp16_groups  # ZeRO 3
        return [list(g) for g in groups]

    def full_model_state(self):
        """The fp32 master weights, gathered from the ZeRO partitions (a collective: every rank calls).

        Under bf16 the module holds bf16 copies; publishing those would make a resumed run start
        from rounded weights. Buffers come from the module as they are."""
        from deepspeed.utils import safe_get_full_fp32_param

        module = self.eval_model
        params = dict(module.named_parameters(remove_duplicate=False))
        full: dict[int, torch.Tensor] = {}
        for p in params.values():
            if id(p) not in full:
                full[id(p)] = safe_get_full_fp32_param(p).detach().float().cpu()
        if not self.dist.is_main:
            return None
        buffers = dict(module.named_buffers())
        return {k: full[id(params[k])] if k in params else buffers[k].detach().cpu()
                for k in module.state_dict() if k in params or k in buffers}

    def _link_state(self) -> None:
        """Point ZeRO 1/2's per-parameter views at the optimizer's moments. DeepSpeed links them once,
        after the first group's first step, when the other groups have no moments yet (we have two
        groups: decay and no decay); linking again once every group has them is idempotent."""
        if hasattr(self.optimizer, "_lazy_init_hp_params_optimizer_state"):
            self.optimizer._hp_optimizer_states_linked = False
            self.optimizer._lazy_init_hp_params_optimizer_state()

    def full_optimizer_state(self):
        """Every rank takes part (each gathers a parameter's pieces from all partitions)."""
        from deepspeed.utils import safe_get_full_optimizer_state

        self._link_state()
        names = {id(p): n for n, p in self.eval_model.named_parameters()}
        # Every partition steps together; under ZeRO-3 a rank's group may hold no partition at all.
        step = next((float(st["step"]) for flat in self._flats() if (st := self._base.state.get(flat))), 0.0)
        state: dict[str, Any] = {}
        groups = []
        for hp, lp in zip(self._base.param_groups, self._lp_groups()):
            for p in lp:
                entry = {k: safe_get_full_optimizer_state(p, k) for k in self.STATE_KEYS}
                if any(v is None for v in entry.values()):
                    continue  # no step taken yet: nothing to save, as torch saves none
                state[names[id(p)]] = {"step": torch.tensor(step), **{k: v.detach().cpu() for k, v in entry.items()}}
            groups.append({**{k: v for k, v in hp.items() if k != "params"}, "params": [names[id(p)] for p in lp]})
        return {"state": state, "param_groups": groups} if self.dist.is_main else None

    def load_optimizer_state(self, state):
        from deepspeed.utils import safe_set_full_optimizer_state

        saved = state.get("state", {})
        if not saved:
            return
        steps = {float(v["step"]) for v in saved.values()}
        if len(steps) != 1:
            raise ValueError(f"optimizer state holds parameters at different steps {sorted(steps)}: not a checkpoint of one run")
        (step,) = steps
        # Torch creates Adam's moments lazily on the first step; create them (zeros at the saved step)
        # so ZeRO links each parameter's fragment to them, then fill in the saved values.
        for flat in self._flats():
            st = self._base.state[flat]
            if not st:
                st["step"] = torch.tensor(step, dtype=torch.float32)
                for k in self.STATE_KEYS:
                    st[k] = torch.zeros_like(flat, memory_format=torch.preserve_format)
        self._link_state()
        names = {n: p for n, p in self.eval_model.named_parameters()}
        missing = sorted(set(names) - set(saved))
        if missing:
            raise ValueError(f"optimizer state has no entry for {missing[:3]}: saved from a different model")
        for n, p in names.items():
            for k in self.STATE_KEYS:
                safe_set_full_optimizer_state(p, saved[n][k].to(self.dist.device), k)


def make_strategy(name: str, model, training: PretrainTraining, dist: DistInfo, *, micro_batch: int, grad_accum: int,
                  cpu_bf16: bool = False) -> Strategy:
    if name == "deepspeed":
        return DeepSpeedStrategy(model, training, dist, micro_batch, grad_accum, cpu_bf16=cpu_bf16)
    if dist.world_size == 1:
        return Strategy(model, training, dist, cpu_bf16=cpu_bf16)  # the same maths without a process group
    if name == "fsdp":
        return FSDPStrategy(model, training, dist, cpu_bf16=cpu_bf16)
    return DDPStrategy(model, training, dist, cpu_bf16=cpu_bf16)


def _decoder_layers(model) -> list[torch.nn.Module]:
    for path in ("model.layers", "transformer.h"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return list(obj)
        except AttributeError:
            continue
    return []


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
