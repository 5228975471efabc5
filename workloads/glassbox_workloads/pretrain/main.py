"""The pretrainrun entry: load the resource, run (or resume) it, print where everything went."""

from __future__ import annotations

from typing import Optional

from glassbox_api.kinds.pretrainrun import PretrainRunSpec
from glassbox_api.podcontract import ExitCode
from glassbox_api.store import ArtifactStore, open_store

from ..runtime.context import RunContext
from ..runtime.errors import report_failure
from ..runtime.spec import Resource, load_or_report
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


def _f(v: Optional[float], w: int) -> str:
    return f"{v:>{w}.4f}" if isinstance(v, (int, float)) else " " * (w - 1) + "-"


def _on_ray(resource: Resource[PretrainRunSpec], store: ArtifactStore, ctx: RunContext) -> RunResult:
    """On the Ray head: run the workers through Ray Train, then report from the manifest."""
    import yaml

    from glassbox_api.manifest import read_manifest

    from .launch_ray import launch

    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": resource.kind,
           "metadata": {"name": resource.name, "namespace": resource.namespace}, "spec": resource.raw_spec}
    launch(resource, yaml.safe_dump(doc), store.uri(), ctx)
    run = store.sub(resource.run_prefix)
    m = read_manifest(run)
    if m is None:
        raise RuntimeError(f"the Ray workers published no manifest under {run.uri()}")
    return RunResult(run.uri(), m, m.latest.step if m.latest else 0, final_loss=m.latest.loss if m.latest else None)


def main(ctx: RunContext) -> int:
    assert ctx.spec_file is not None and ctx.store is not None
    resource = load_or_report(ctx.spec_file, "PretrainRun", run_id=ctx.run_id)
    if resource is None:
        return ExitCode.INVALID_SPEC
    try:
        store = open_store(ctx.store)
        from .launch_ray import ray_requested

        if ray_requested(resource, ctx):
            result = _on_ray(resource, store, ctx)
        else:
            result = run_pretrain(resource, store, ctx=ctx)
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return report_failure(resource.kind, resource.name, exc)
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        if not ctx.quiet:
            print("\n".join(summary_lines(resource.kind, resource.name, result)), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return ExitCode.OK
