"""`python -m glassbox_workloads <kind> --spec FILE [--store URI] [--run-id ID]`: one entrypoint for
every backend (DESIGN.md section 5). Exit codes are the pod contract's (glassbox_api.podcontract.
ExitCode): 0 done, 1 failed (transient: retried), 2 invalid spec or usage, 3 a kind this image cannot
run, 4 bad input (permanent: a data source that does not exist, a model without the needed head)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Callable, Optional

from glassbox_api.podcontract import STAGES, Env, ExitCode

from .runtime.context import RunContext

# kind (lower case) -> "module:function" taking the RunContext and returning an exit code.
# Imported lazily: a JAX kind must not pull torch in, and the other way round.
RUNNERS: dict[str, Optional[str]] = {
    "pretrainrun": "glassbox_workloads.pretrain.main:main",
    "shardedfinetune": "glassbox_workloads.finetune.main:main",
    "scorerservice": "glassbox_workloads.scorer.main:main",
    "kgharvest": "glassbox_workloads.kgharvest.main:main",
    "metriceval": "glassbox_workloads.metriceval.main:main",
    "dialogbot": "glassbox_workloads.dialogbot.main:main",
}

# Display names, for messages a person reads.
KIND_NAMES = {k.lower(): k for k in ("PretrainRun", "ShardedFinetune", "ScorerService", "KGHarvest", "MetricEval", "DialogBot")}


def runnable() -> list[str]:
    """The kinds this installation can run."""
    return [KIND_NAMES[k] for k, target in RUNNERS.items() if target is not None]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m glassbox_workloads", description=__doc__)
    p.add_argument("kind", help=f"resource kind: {', '.join(RUNNERS)}")
    p.add_argument("--spec", required=True, help="the resource YAML/JSON (or a bare spec) to run")
    p.add_argument("--store", help=f"artifact store root: a path, file:///path or s3://bucket/prefix (env {Env.STORE})")
    p.add_argument("--run-id", help="run id naming the run directory (env "
                   f"{Env.RUN_ID}; default: metadata.uid, else a digest of the spec)")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress output")
    p.add_argument("--log-level", help=f"Python log level (env {Env.LOG_LEVEL}; default WARNING)")
    p.add_argument("--stage", choices=STAGES, help="service kinds: run only this stage (default: train, then serve)")
    p.add_argument("--host", help="service kinds: address the model server binds (default 127.0.0.1; 0.0.0.0 in a pod)")
    p.add_argument("--port", type=int, help="service kinds: port of the model server (default 8080; 0 picks a free one)")
    return p


def resolve(kind: str) -> Callable[[RunContext], int]:
    target = RUNNERS[kind]
    assert target is not None
    mod, _, fn = target.partition(":")
    return getattr(importlib.import_module(mod), fn)


def context(argv: list[str]) -> RunContext:
    """The command line over the environment, read once (argparse exits 2 on bad usage)."""
    args = parser().parse_args(argv)
    return RunContext.from_env(kind=args.kind.lower(), spec_file=Path(args.spec), store=args.store,
                               run_id=args.run_id, quiet=args.quiet, log_level=args.log_level,
                               stage=args.stage, host=args.host, port=args.port)


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "plan":  # `glassbox plan FILE` execs this: a sharding plan needs jax, the operator must not
        from .plan_cli import main as plan_main

        return plan_main(argv[1:])
    try:
        ctx = context(argv)
    except ValueError as exc:  # a malformed GLASSBOX_* value
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INVALID_SPEC
    logging.basicConfig(level=ctx.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if ctx.kind not in RUNNERS:
        print(f"error: unknown kind {ctx.kind!r}; known: {', '.join(RUNNERS)}", file=sys.stderr)
        return ExitCode.NOT_RUNNABLE
    if RUNNERS[ctx.kind] is None:
        print(
            f"error: glassbox cannot run {KIND_NAMES[ctx.kind]} resources yet (the resource itself may be "
            f"valid: check it with `glassbox validate`); it runs {' and '.join(runnable())}",
            file=sys.stderr,
        )
        return ExitCode.NOT_RUNNABLE
    if not ctx.store:
        print(f"error: no artifact store: pass --store URI or set {Env.STORE}", file=sys.stderr)
        return ExitCode.INVALID_SPEC
    try:
        run = resolve(ctx.kind)
    except ImportError as exc:
        print(f"error: the {KIND_NAMES[ctx.kind]} workload cannot start here: {exc} "
              "(install glassbox with the extra for this kind)", file=sys.stderr)
        return ExitCode.NOT_RUNNABLE
    return int(run(ctx) or 0)


if __name__ == "__main__":
    sys.exit(main())
