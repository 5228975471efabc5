"""The metriceval entry: `python -m glassbox_workloads metriceval --spec FILE --store URI`."""

from __future__ import annotations

from glassbox_api.podcontract import ExitCode
from glassbox_api.store import open_store

from ..runtime.context import RunContext
from ..runtime.errors import report_failure
from ..runtime.spec import load_or_report
from .program import EvalResult, run


def summary_lines(name: str, res: EvalResult) -> list[str]:
    """What `glassbox run` prints at the end: the results, then the run and manifest lines."""
    head = "already complete" if res.already_complete else f"scored {res.examples} examples"
    if res.resumed_chunks and not res.already_complete:
        head += f" (resumed after {res.resumed_chunks} published chunks)"
    out = [f"MetricEval {name}: {head}"]
    for metric, value in res.results.items():
        out.append(f"  {metric:<14} {value:.6g}" if isinstance(value, (int, float)) else f"  {metric:<14} -")
    c = res.curve or {}
    if c.get("points") and isinstance(c.get("latest"), (int, float)) and isinstance(c.get("best"), (int, float)):
        out.append(f"curve: {c['points']} checkpoints; latest {c.get('checkpoint')} {c['metric']} {c['latest']:.6g}; "
                   f"best {c.get('bestCheckpoint')} {c['best']:.6g}")
    for name_, entry in sorted(res.outputs.items()):
        out.append(f"{name_ + ':':<9} {res.run_uri.rstrip('/')}/{entry['path']}")
    out.append(f"run:      {res.run_uri}")
    out.append(f"manifest: {res.run_uri.rstrip('/')}/manifest.json")
    return out


def main(ctx: RunContext) -> int:
    assert ctx.spec_file is not None and ctx.store is not None
    resource = load_or_report(ctx.spec_file, "MetricEval", run_id=ctx.run_id)
    if resource is None:
        return ExitCode.INVALID_SPEC
    say = (lambda m: None) if ctx.quiet else (lambda m: print(m, flush=True))
    try:
        res = run(resource, open_store(ctx.store), ctx, say)
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return report_failure(resource.kind, resource.name, exc)
    if not ctx.quiet:
        print("\n".join(summary_lines(resource.name, res)), flush=True)
    return ExitCode.OK
