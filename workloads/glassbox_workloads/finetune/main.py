"""The shardedfinetune entry: `python -m glassbox_workloads shardedfinetune --spec FILE --store URI`."""

from __future__ import annotations

from glassbox_api.podcontract import ExitCode
from glassbox_api.store import open_store

from ..runtime.context import RunContext
from ..runtime.errors import report_failure
from ..runtime.spec import load_or_report
from .workload import FinetuneResult, run


def summary_lines(name: str, res: FinetuneResult) -> list[str]:
    head = "already complete" if res.already_complete else f"completed {res.steps} steps in {res.seconds:.1f} s"
    out = [f"ShardedFinetune {name}: {head}" + (f" (resumed at step {res.resumed_from})" if res.resumed_from else ""),
           f"model shards: {res.n_model_shards} ({res.shard_reason})"]
    if res.manifest is not None:
        staged = any(c.stage is not None for c in res.manifest.checkpoints)
        out.append(f"{'step':>8} " + (f"{'stage':>5} " if staged else "") + f"{'loss':>8}  evals  checkpoint")
        for c in res.manifest.checkpoints:
            ev = " ".join(f"{k}={v:.4g}" for k, v in sorted(c.evals.items()))
            loss = f"{c.loss:>8.4f}" if c.loss is not None else " " * 8
            stage = f"{c.stage.index}/{c.stage.count}".rjust(5) + " " if c.stage is not None else ""
            out.append(f"{c.step:>8} {stage}{loss}  {ev or '-'}  {c.path}/")
        chain = res.manifest.final.get("chain")
        if isinstance(chain, dict):
            bleu = " ".join(f"{k}={v}" for k, v in chain.items() if k.endswith("Bleu4"))
            out.append(f"chain:    {chain.get('path')} ({chain.get('examples')} examples, every stage's text) {bleu}")
    out.append(f"run:      {res.run_uri}")
    out.append(f"manifest: {res.run_uri.rstrip('/')}/manifest.json")
    return out


def main(ctx: RunContext) -> int:
    assert ctx.spec_file is not None and ctx.store is not None
    resource = load_or_report(ctx.spec_file, "ShardedFinetune", run_id=ctx.run_id)
    if resource is None:
        return ExitCode.INVALID_SPEC
    try:
        root = open_store(ctx.store)
        res = run(resource.spec, root.sub(resource.run_prefix), root=root, name=resource.name,
                  namespace=resource.namespace, uid=resource.uid, raw_spec=resource.raw_spec, quiet=ctx.quiet,
                  base_dir=ctx.spec_file.resolve().parent, ctx=ctx)
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return report_failure(resource.kind, resource.name, exc)
    import jax

    if jax.process_index() == 0 and not ctx.quiet:
        print("\n".join(summary_lines(resource.name, res)), flush=True)
    return ExitCode.OK
