"""`python -m glassbox_workloads plan --spec FILE [--json]`: the sharding plan of a ShardedFinetune.

Parameter path, shape, spec and bytes per device, with totals and the `modelShards` choice and its
reason. Shapes come from jax.eval_shape, so nothing is allocated: a 7B plan prints in seconds.
(`glassbox plan FILE` execs this: the operator package never imports jax.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec
from glassbox_api.podcontract import Env

GiB = 1024**3


def _fmt_bytes(b: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if b >= size:
            return f"{b / size:.2f} {unit}"
    return f"{b} B"


def compute_plan(spec: ShardedFinetuneSpec, store: Optional[Any] = None, namespace: str = "default",
                 local_devices: Optional[int] = None) -> dict[str, Any]:
    """The plan as a JSON-ready dict (rows, totals, devices, shard choice)."""
    from .finetune.setup import place, planned_devices, pool_info, shapes_for
    from .flax_models import count_params
    from .redco.sharding import MP, bytes_per_device, plan_params, rows_as_dicts, state_bytes_per_device

    cfg, _, shapes, source = shapes_for(spec, store, namespace)
    local = spec.resources.backend == "local"
    pool = pool_info(None if local else spec.resources.accelerator)
    if local_devices is None and (local or pool.name == "cpu"):
        import jax

        local_devices = jax.local_device_count()
    n_dev = planned_devices(spec, pool, local_devices)
    placement = place(spec, shapes, n_dev, pool)
    n = placement.n_model_shards
    rows = plan_params(shapes, n)
    copies = 1 if spec.recipe.name == "soft-q" else 0
    state = state_bytes_per_device(shapes, n, 2, copies)
    return {
        **_stages(spec),
        "model": {"architecture": cfg.architecture, "source": source.description, "parameters": count_params(shapes)},
        "devices": n_dev,
        "pool": pool.name,
        "deviceMemoryBytes": pool.device_memory if pool.name != "cpu" else pool.device_memory // max(1, n_dev),
        "mesh": {"dp": n_dev // n, "mp": n},
        "modelShards": n,
        "reason": placement.reason,
        "params": rows_as_dicts(rows),
        "totals": {
            "paramBytes": sum(r.bytes_total for r in rows),
            "paramBytesPerDevice": state["params"],
            "gradBytesPerDevice": state["grads"],
            "optimizerBytesPerDevice": state["optimizer"],
            "targetNetworkBytesPerDevice": state["extra"],
            "stateBytesPerDevice": state["total"],
            "shardedTensors": sum(1 for r in rows if r.sharded),
            "replicatedTensors": sum(1 for r in rows if not r.sharded),
            "adamBytesPerParamDevice": sum(2 * bytes_per_device(r.shape, r.spec, 4, {MP: n}) for r in rows),
        },
    }


def _stages(spec: ShardedFinetuneSpec) -> dict[str, Any]:
    """Recipes that train one model per stage (progressive): the stages, each trained in turn with
    the parameters, shards and memory planned here (one model in memory at a time)."""
    if spec.recipe.name != "progressive":
        return {}
    from .recipes.progressive import stage_descriptions

    return {"stages": [{"stage": k + 1, "maps": d, "checkpoints": f"stages/{k + 1}/checkpoints/"}
                       for k, d in enumerate(stage_descriptions(spec.recipe.progressive.stages))]}


def render_table(plan: dict[str, Any]) -> str:
    rows = plan["params"]
    w = max([len("parameter")] + [len(r["path"]) for r in rows])
    sw = max([len("shape")] + [len(str(tuple(r["shape"]))) for r in rows])
    pw = max([len("spec")] + [len(r["spec"]) for r in rows])
    out = [f"{'parameter':<{w}}  {'shape':<{sw}}  {'spec':<{pw}}  {'bytes/device':>12}"]
    out.append("-" * len(out[0]))
    for r in rows:
        out.append(f"{r['path']:<{w}}  {str(tuple(r['shape'])):<{sw}}  {r['spec']:<{pw}}  {_fmt_bytes(r['bytesPerDevice']):>12}")
    t = plan["totals"]
    m = plan["model"]
    out.append("-" * len(out[0]))
    out.append(f"model:        {m['architecture']}, {m['parameters']:,} parameters ({_fmt_bytes(t['paramBytes'])}), from {m['source']}")
    out.append(f"devices:      {plan['devices']} ({plan['pool']}, {_fmt_bytes(plan['deviceMemoryBytes'])} each); "
               f"mesh dp={plan['mesh']['dp']} x mp={plan['mesh']['mp']}")
    out.append(f"tensors:      {t['shardedTensors']} sharded on mp, {t['replicatedTensors']} replicated")
    out.append(f"per device:   params {_fmt_bytes(t['paramBytesPerDevice'])} + grads {_fmt_bytes(t['gradBytesPerDevice'])}"
               f" + optimizer {_fmt_bytes(t['optimizerBytesPerDevice'])}"
               + (f" + target net {_fmt_bytes(t['targetNetworkBytesPerDevice'])}" if t["targetNetworkBytesPerDevice"] else "")
               + f" = {_fmt_bytes(t['stateBytesPerDevice'])}")
    out.append(f"modelShards:  {plan['modelShards']}  ({plan['reason']})")
    stages = plan.get("stages") or []
    if stages:
        out.append(f"stages:       {len(stages)} models like this one, trained in order in one run (one in memory at a time):")
        out += [f"  {s['stage']}. {s['maps']:<40} -> {s['checkpoints']}" for s in stages]
    return "\n".join(out)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m glassbox_workloads plan", description=__doc__)
    p.add_argument("--spec", required=True, help="ShardedFinetune YAML (or a bare spec)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--store", help=f"artifact store root, to read config.json of model.fromRun sources (env {Env.STORE})")
    p.add_argument("--devices", type=int, default=None, help="local devices per worker (default: jax's count)")
    args = p.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # planning needs no accelerator
    from glassbox_api.resource import InvalidResource

    from .runtime.context import RunContext
    from .runtime.spec import load_resource

    args.store = args.store or RunContext.from_env().store

    try:
        resource = load_resource(args.spec, "ShardedFinetune")
    except InvalidResource as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.spec}: {exc}", file=sys.stderr)
        return 2
    store = None
    if args.store:
        from glassbox_api.store import open_store

        store = open_store(args.store)
    try:
        plan = compute_plan(resource.spec, store, resource.namespace, args.devices)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"error: cannot plan {resource.name}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(plan, indent=2) if args.json else render_table(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
