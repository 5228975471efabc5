"""The kgharvest entry: `python -m glassbox_workloads kgharvest --spec FILE --store URI`."""

from __future__ import annotations

from glassbox_api.podcontract import ExitCode

from ..runtime.context import RunContext
from ..runtime.errors import report_failure
from ..runtime.spec import load_or_report
from .workload import HarvestResult, run


def summary_lines(name: str, res: HarvestResult) -> list[str]:
    state = "complete" if res.complete else "relations of this pod done (others still running)"
    out = [f"KGHarvest {name}: {state} in {res.seconds:.1f} s (model {res.model}"
           + (f", pretrain loss {res.pretrain_loss:.3f}" if res.pretrain_loss is not None else "") + ")",
           f"{'relation':<24} {'tuples':>6} {'prompts':>7}  top tuples"]
    for r in res.relations:
        top = "; ".join(f"{' | '.join(e)} ({s:.2f})" for e, s in r.top[:3]) or ("(published before)" if r.skipped else "-")
        out.append(f"{r.name:<24} {r.tuples:>6} {r.prompts:>7}  {top}")
    out.append(f"run:      {res.run_uri}")
    out.append(f"manifest: {res.run_uri.rstrip('/')}/manifest.json")
    if res.complete:
        out.append(f"kg:       {res.run_uri.rstrip('/')}/kg.jsonl")
    return out


def main(ctx: RunContext) -> int:
    assert ctx.spec_file is not None and ctx.store is not None
    resource = load_or_report(ctx.spec_file, "KGHarvest", run_id=ctx.run_id)
    if resource is None:
        return ExitCode.INVALID_SPEC
    try:
        res = run(resource, ctx, base_dir=ctx.spec_file.resolve().parent)
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return report_failure(resource.kind, resource.name, exc)
    if not ctx.quiet:
        print("\n".join(summary_lines(resource.name, res)), flush=True)
    return ExitCode.OK
