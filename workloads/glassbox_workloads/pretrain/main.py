"""The pretrainrun entry: load the resource, run (or resume) it, print where everything went."""

from __future__ import annotations

import sys

from glassbox_api.store import StoreError, open_store

from ..runtime.publisher import PublishError
from ..runtime.spec import load_or_report
from .train import RunResult, run_pretrain


def summary_lines(kind: str, name: str, result: RunResult) -> list[str]:
    """The end-of-run table, plain text so it reads the same in a terminal and in pod logs."""
    m = result.manifest
    head = "already complete" if result.already_complete else f"completed {result.steps} steps"
    out = [f"{kind} {m.namespace}/{name}: {head}"
           + (f" (resumed at step {result.resumed_from})" if result.resumed_from else "")
           + (f" in {result.seconds:.1f} s, {result.tokens_per_s:,.0f} tokens/s" if result.seconds else "")]
    out.append(f"{'step':>8} {'tokens':>12} {'loss':>8} {'perplexity':>11} {'mem.match':>9}  checkpoint")
    for c in m.checkpoints:
        ppl = c.evals.get("perplexity")
        mem = c.evals.get("memorization_token_match")
        out.append(f"{c.step:>8} {c.tokens:>12,} {_f(c.loss, 8)} {_f(ppl, 11)} {_f(mem, 9)}  {c.path}/")
    out.append(f"run:      {result.run_uri}")
    out.append(f"manifest: {result.run_uri.rstrip('/')}/manifest.json")
    return out


def _f(v, w: int) -> str:
    return f"{v:>{w}.4f}" if isinstance(v, (int, float)) else " " * (w - 1) + "-"


def main(args) -> int:
    resource = load_or_report(args.spec, "PretrainRun", run_id=args.run_id)
    if resource is None:
        return 2
    try:
        store = open_store(args.store)
        from .launch_ray import launch, ray_requested

        if ray_requested(resource):
            # On the Ray head: run the workers through Ray Train, then report from the manifest.
            import yaml

            from glassbox_api.manifest import read_manifest

            doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": resource.kind,
                   "metadata": {"name": resource.name, "namespace": resource.namespace},
                   "spec": resource.raw_spec}
            launch(resource, yaml.safe_dump(doc), store.uri())
            run = store.sub(resource.run_prefix)
            m = read_manifest(run)
            result = RunResult(run.uri(), m, m.latest.step if m and m.latest else 0,
                               final_loss=m.latest.loss if m and m.latest else None)
        else:
            from .train import TrainHooks

            result = run_pretrain(resource, store, hooks=TrainHooks(quiet=args.quiet))
    except (StoreError, PublishError, ValueError, RuntimeError) as exc:
        print(f"error: PretrainRun {resource.name} failed: {exc}", file=sys.stderr)
        return 1
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        if not args.quiet:
            print("\n".join(summary_lines(resource.kind, resource.name, result)), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
