"""Builders shared by the operator unit tables: resources, contexts, configs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from glassbox_api.resource import Resource, parse_resource
from glassbox_operator.config import OperatorConfig, default_config
from glassbox_operator.context import Context, Plan

ROOT = Path(__file__).resolve().parents[3]
UID = "1234abcd-0000-4000-8000-000000000000"


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "examples" / name).read_text())


def config(*, allow_local: bool = True, **storage: Any) -> OperatorConfig:
    """The chart's defaults with a store endpoint; the tables exercise every backend, so the local
    backend is allowed unless allow_local=False (the chart's default: test_security.py)."""
    base = default_config()
    st = {"endpoint": "minio.storage:9000", "secure": False, **storage}
    security = base.security.model_copy(update={"allow_local_backend": allow_local})
    return base.model_copy(update={"storage": base.storage.model_copy(update=st), "security": security})


def resource(doc: dict[str, Any], *, name: str = "r", uid: str = UID, generation: int = 1, **spec_updates: Any) -> Resource:
    d = copy.deepcopy(doc)
    d["metadata"] = {"name": name, "namespace": "ns", "uid": uid, "generation": generation}
    for path, value in spec_updates.items():
        node = d["spec"]
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return parse_resource(d)


def ctx(res: Resource, cfg: OperatorConfig | None = None, plan: Plan | None = None, **kw: Any) -> Context:
    return Context(resource=res, config=cfg or config(), plan=plan or Plan(stage=_stage(res)), **kw)


def _stage(res: Resource) -> str:
    from glassbox_operator.status import plan_of

    return plan_of(res, {}).stage
