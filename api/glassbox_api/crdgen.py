"""Generate CustomResourceDefinitions from the pydantic types, as controller-gen does from Go types.

The output is a structural OpenAPI v3 schema: $refs inlined, no titles, nullable branches dropped
(an unset field is simply absent), int-or-string unions marked, defaults in their wire form, and
each type's cross-field Rules turned into x-kubernetes-validations.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .constants import CATEGORY, GROUP, VERSION
from .kinds import KINDS, KindInfo
from .kinds.base import Block

def _model_classes(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from `root`'s fields, by class name (the $defs key)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if found.get(tp.__name__) is tp:
                return
            if tp.__name__ in found:
                raise ValueError(f"two API types are named {tp.__name__}: rename one (CRD $defs are keyed by name)")
            found[tp.__name__] = tp
            for f in tp.model_fields.values():
                visit(f.annotation)
            return
        for arg in typing.get_args(tp):
            visit(arg)

    visit(root)
    return found


def _wire_default(value: Any) -> Any:
    """A Python default as it should appear in the schema, or None for 'no default'."""
    if value is PydanticUndefined:
        return None
    if isinstance(value, BaseModel):
        # Fully expanded: the apiserver checks a default against the CEL rules as it stands,
        # without filling in the nested defaults first.
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        return [v.model_dump(by_alias=True, exclude_none=True, mode="json") for v in value]
    if value is None or value == [] or value == {}:
        return None
    return value


class _Converter:
    def __init__(self, root: type[BaseModel], with_defaults: bool):
        self.root = root
        self.schema = root.model_json_schema(by_alias=True, mode="validation")
        self.defs = self.schema.get("$defs", {})
        self.classes = _model_classes(root)
        self.with_defaults = with_defaults

    def run(self) -> dict[str, Any]:
        return self.convert(self.schema, self.root)

    def _object(self, node: dict[str, Any], cls: type[BaseModel] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if "description" in node:
            out["description"] = node["description"]
        props: dict[str, Any] = {}
        by_alias = {}
        if cls is not None:
            by_alias = {(f.alias or n): (n, f) for n, f in cls.model_fields.items()}
        for name, sub in node.get("properties", {}).items():
            prop = self.convert(sub)
            # Defaults come from the Python field in wire form (nested blocks as the user would
            # write them, so their own defaults and rules apply), never from pydantic's dump.
            prop.pop("default", None)
            if self.with_defaults and name in by_alias:
                d = _wire_default(by_alias[name][1].default)
                if d is not None:
                    prop["default"] = d
            props[name] = prop
        if props:
            out["properties"] = props
        if node.get("required"):
            out["required"] = list(node["required"])
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = self.convert(node["additionalProperties"], None)
        for key in ("maxProperties", "minProperties"):
            if key in node:
                out[key] = node[key]
        rules = []
        if cls is not None and issubclass(cls, Block):
            rules = [r.as_validation() for r in cls.rules]
        if rules:
            out["x-kubernetes-validations"] = rules
        return out

    def convert(self, node: dict[str, Any], cls: type[BaseModel] | None = None) -> dict[str, Any]:
        node = dict(node)
        extra_rules = node.pop("x-kubernetes-validations", [])
        if "$ref" in node:
            name = node.pop("$ref").split("/")[-1]
            target = self.convert(self.defs[name], self.classes.get(name))
            merged = {**target, **{k: v for k, v in node.items() if k in ("description", "default")}}
            if extra_rules:
                merged["x-kubernetes-validations"] = merged.get("x-kubernetes-validations", []) + extra_rules
            for key in ("x-kubernetes-list-type", "x-kubernetes-list-map-keys"):
                if key in node:
                    merged[key] = node[key]
            return self._finish(merged)
        if "anyOf" in node:
            branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
            if len(branches) == 1:
                inner = self.convert(branches[0])
                for k, v in node.items():
                    if k in ("description", "default") and v is not None:
                        inner[k] = v
                if extra_rules:
                    inner["x-kubernetes-validations"] = inner.get("x-kubernetes-validations", []) + extra_rules
                return self._finish(inner)
            kinds = sorted(self.convert(b).get("type") for b in branches)
            if kinds == ["integer", "string"]:
                # The one union a structural schema allows: the branches carry only their types,
                # value validations sit beside them (pattern/maxLength apply to strings only,
                # minimum/maximum to integers only).
                out: dict[str, Any] = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
                for b in branches:
                    c = self.convert(b)
                    if "enum" in c:
                        c["pattern"] = "^(" + "|".join(c.pop("enum")) + ")$"
                    for k, v in c.items():
                        if k not in ("type", "description", "default"):
                            out[k] = v
                for k in ("description", "default"):
                    if k in node:
                        out[k] = node[k]
                if extra_rules:
                    out["x-kubernetes-validations"] = extra_rules
                return self._finish(out)
            raise ValueError(f"unsupported union in API type: {branches}")
        if "allOf" in node and len(node["allOf"]) == 1:
            inner = node.pop("allOf")[0]
            return self.convert({**inner, **node, **({"x-kubernetes-validations": extra_rules} if extra_rules else {})})
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if node.get("type") == "object" or "properties" in node:
            out = self._object(node, cls)
        else:
            out = {k: v for k, v in node.items() if k not in ("title",)}
            if "items" in out:
                out["items"] = self.convert(out["items"])
            if "enum" in out and "type" not in out:
                vals = out["enum"]
                out["type"] = "integer" if all(isinstance(v, int) for v in vals) else "string"
        if extra_rules:
            out["x-kubernetes-validations"] = out.get("x-kubernetes-validations", []) + extra_rules
        return self._finish(out)

    def _finish(self, out: dict[str, Any]) -> dict[str, Any]:
        out.pop("title", None)
        # JSON Schema 2020 writes exclusive bounds as numbers; OpenAPI v3.0 (CRDs) as booleans.
        for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if isinstance(out.get(flag), (int, float)) and not isinstance(out[flag], bool):
                out[bound] = out.pop(flag)
                out[flag] = True
        if isinstance(out.get("description"), str):
            # Docstrings wrap lines; kubectl explain re-wraps text itself.
            out["description"] = " ".join(out["description"].split())
        if not self.with_defaults:
            out.pop("default", None)
        return out


def openapi_schema(model: type[BaseModel], with_defaults: bool = True) -> dict[str, Any]:
    """The structural schema of one API type."""
    return _Converter(model, with_defaults).run()


def crd(info: KindInfo) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec = openapi_schema(info.spec)
    spec["description"] = f"Desired state of the {info.kind}."
    status = openapi_schema(info.status, with_defaults=False)
    status["description"] = f"Observed state of the {info.kind}, written by the operator."
    subresources: dict[str, Any] = {"status": {}}
    if info.scale is not None:
        subresources["scale"] = {
            "specReplicasPath": info.scale.spec_replicas,
            "statusReplicasPath": info.scale.status_replicas,
            "labelSelectorPath": info.scale.label_selector,
        }
    columns = []
    for c in info.columns:
        col: dict[str, Any] = {"name": c.name, "type": c.type, "jsonPath": c.json_path}
        if c.description:
            col["description"] = c.description
        if c.priority:
            col["priority"] = c.priority
        columns.append(col)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "glassbox", "app.kubernetes.io/part-of": "glassbox"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": [info.short],
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": info.description,
                            "properties": {
                                "apiVersion": {"type": "string", "description": "APIVersion: glassbox.dev/v1alpha1."},
                                "kind": {"type": "string", "description": f"Kind: {info.kind}."},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD for every kind."""
    return {f"{GROUP}_{info.plural}.yaml": crd(info) for info in KINDS.values()}


__all__ = ["openapi_schema", "crd", "all_crds"]
