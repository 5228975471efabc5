"""`python -m glassbox_workloads <kind> --spec FILE [--store URI] [--run-id ID]`: one entrypoint for
every backend (DESIGN.md section 5). Exit codes: 0 done, 1 the run failed, 2 bad usage or bad spec,
3 a kind this installation cannot run yet."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Callable, Optional

# kind (lower case) -> "module:function" taking the parsed args and returning an exit code.
# Imported lazily: a JAX kind must not pull torch in, and the other way round.
RUNNERS: dict[str, Optional[str]] = {
    "pretrainrun": "glassbox_workloads.pretrain.main:main",
    "shardedfinetune": "glassbox_workloads.finetune:main",
    "scorerservice": None,
    "kgharvest": None,
    "metriceval": None,
    "dialogbot": None,
}

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNABLE = 1, 2, 3

# Display names, for messages a person reads.
KIND_NAMES = {k.lower(): k for k in ("PretrainRun", "ShardedFinetune", "ScorerService", "KGHarvest", "MetricEval", "DialogBot")}


def runnable() -> list[str]:
    """The kinds this installation can run."""
    return [KIND_NAMES[k] for k, target in RUNNERS.items() if target is not None]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m glassbox_workloads", description=__doc__)
    p.add_argument("kind", help=f"resource kind: {', '.join(RUNNERS)}")
    p.add_argument("--spec", required=True, help="the resource YAML/JSON (or a bare spec) to run")
    p.add_argument("--store", default=os.environ.get("GLASSBOX_STORE"),
                   help="artifact store root: a path, file:///path or s3://bucket/prefix (env GLASSBOX_STORE)")
    p.add_argument("--run-id", default=os.environ.get("GLASSBOX_RUN_ID"),
                   help="run id naming the run directory (default: metadata.uid, else a digest of the spec)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--log-level", default=os.environ.get("GLASSBOX_LOG_LEVEL", "WARNING"))
    return p


def resolve(kind: str) -> Callable:
    target = RUNNERS[kind]
    assert target is not None
    mod, _, fn = target.partition(":")
    return getattr(importlib.import_module(mod), fn)


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "plan":  # `glassbox plan FILE` execs this: a sharding plan needs jax, the operator must not
        from .plan_cli import main as plan_main

        return plan_main(argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kind = args.kind.lower()
    if kind not in RUNNERS:
        print(f"error: unknown kind {args.kind!r}; known: {', '.join(RUNNERS)}", file=sys.stderr)
        return EXIT_USAGE
    if RUNNERS[kind] is None:
        print(
            f"error: glassbox cannot run {KIND_NAMES[kind]} resources yet (the resource itself may be "
            f"valid: check it with `glassbox validate`); it runs {' and '.join(runnable())}",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNABLE
    if not args.store:
        print("error: no artifact store: pass --store URI or set GLASSBOX_STORE", file=sys.stderr)
        return EXIT_USAGE
    try:
        run = resolve(kind)
    except ImportError as exc:
        print(f"error: the {args.kind} workload cannot start here: {exc} "
              "(install glassbox with the extra for this kind)", file=sys.stderr)
        return EXIT_USAGE
    return int(run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
