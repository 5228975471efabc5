"""Pure renderers: a resource (in a Context) -> the children the operator applies. One module per
backend, each with render(ctx) and observe(child) -> ChildState; no I/O, no clock, no environment."""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..context import Context
from . import job, jobset, local, ray, serving
from .common import MISSING, ChildState, RenderError, artifacts, backend, spec_configmap

MODULES = {"job": job, "jobset": jobset, "ray": ray, "serving": serving, "local": local}


def render(ctx: Context) -> list[dict[str, Any]]:
    """Every child of this pass (none on teardown): the spec ConfigMap, then the backend's objects;
    while a service retrains, its serving children (on the kept checkpoint) before the training
    workload, which stays last (workload())."""
    if ctx.plan.teardown:
        return []
    kept = ctx.kept()
    children = (MODULES[backend(kept)].render(kept) if kept else []) + MODULES[backend(ctx)].render(ctx)
    if all(c["kind"] == "LocalProcess" for c in children):
        return children
    return [spec_configmap(ctx), *children]


def workload(children: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The child whose status tells how the work goes (the last one rendered)."""
    return children[-1] if children else None


def observer(ctx: Context) -> Callable[[Optional[dict[str, Any]]], ChildState]:
    b = backend(ctx)
    if b == "local":
        return lambda obj: MISSING if obj is None else obj  # type: ignore[return-value]
    return MODULES[b].observe


def ref(obj: dict[str, Any]) -> dict[str, str]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"]}


__all__ = ["MODULES", "ChildState", "RenderError", "artifacts", "backend", "observer", "ref", "render", "workload"]
