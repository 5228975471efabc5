"""Parse and validate a glassbox resource document locally, with errors that name the field and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .constants import API_VERSION
from .kinds import KINDS, KindInfo
from .kinds.base import Block
from .kinds.common import DNS_SUBDOMAIN


@dataclass(frozen=True)
class FieldError:
    """One problem in a resource: where, what, and how to fix it."""

    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        tail = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.path}: {self.message}{tail}"


class InvalidResource(ValueError):
    """A resource document that the API would refuse."""

    def __init__(self, name: str, errors: list[FieldError]):
        self.name = name
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"{name} is invalid:\n{lines}")


@dataclass(frozen=True)
class Resource:
    """A validated resource: its kind, metadata and typed spec."""

    info: KindInfo
    metadata: dict[str, Any]
    spec: Block

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def namespace(self) -> str:
        return self.metadata.get("namespace", "default")

    def wire(self) -> dict[str, Any]:
        """The document as it would be applied, defaults filled in."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.info.kind,
            "metadata": dict(self.metadata),
            "spec": self.spec.wire(),
        }


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("int", "str", "literal['auto']") or str(part).startswith(("constrained-", "function-")):
            continue  # pydantic's union-branch markers are not fields
        else:
            out += f".{part}" if out else str(part)
    return out


def _fix(err: dict[str, Any], model_fields: list[str]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "remove it; it is not a field of this block" + (f" (fields: {', '.join(model_fields)})" if model_fields else "")
    if kind == "missing":
        return "add this required field"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "use a value inside the allowed range"
    if kind == "literal_error":
        return "use one of the listed values"
    if kind == "string_pattern_mismatch":
        return "use the documented format"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "use the documented type"
    return ""


def _errors_from(exc: ValidationError, prefix: str) -> list[FieldError]:
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        path = _path((prefix, *err["loc"])) if err["loc"] else prefix
        if err["type"] == "glassbox_rule":
            path += err.get("ctx", {}).get("field_path", "")
        msg = err["msg"].removeprefix("Value error, ")
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        out.append(FieldError(path, msg, _fix(err, [])))
    return out


def parse_resource(doc: Any, source: str = "resource") -> Resource:
    """Validate one document (a dict from YAML) as a glassbox resource."""
    if not isinstance(doc, dict):
        raise InvalidResource(source, [FieldError("(document)", "not a mapping", "write a Kubernetes object with apiVersion, kind, metadata and spec")])
    errors: list[FieldError] = []
    api_version = doc.get("apiVersion")
    if api_version != API_VERSION:
        errors.append(FieldError("apiVersion", f"is {api_version!r}", f"use {API_VERSION}"))
    kind = doc.get("kind")
    info = KINDS.get(kind) if isinstance(kind, str) else None
    if info is None:
        errors.append(FieldError("kind", f"{kind!r} is not a glassbox kind", f"use one of {', '.join(KINDS)}"))
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        errors.append(FieldError("metadata.name", "is required", "give the resource a name"))
        metadata = metadata if isinstance(metadata, dict) else {}
    elif not (isinstance(metadata["name"], str) and len(metadata["name"]) <= 253 and re.match(DNS_SUBDOMAIN, metadata["name"])):
        errors.append(FieldError("metadata.name", f"{metadata['name']!r} is not a valid name", "use lower-case letters, digits, '-' and '.'"))
    for key in doc:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            errors.append(FieldError(key, "unknown top-level field", "remove it"))
    spec_doc = doc.get("spec")
    spec = None
    if not isinstance(spec_doc, dict):
        errors.append(FieldError("spec", "is required and must be a mapping", "add a spec"))
    elif info is not None:
        try:
            spec = info.spec.model_validate(spec_doc)
        except ValidationError as exc:
            errors.extend(_errors_from(exc, "spec"))
    name = f"{kind}/{metadata.get('name', '?')}" if isinstance(kind, str) else source
    if errors or spec is None or info is None:
        raise InvalidResource(name, errors)
    return Resource(info=info, metadata=metadata, spec=spec)
