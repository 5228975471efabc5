"""The base type of every API block, and cross-field rules that hold in two places at once.

A `Rule` is written once, beside the type it constrains: its CEL expression goes into the CRD
(x-kubernetes-validations, checked by the apiserver) and its Python predicate runs when the same
YAML is validated locally (`glassbox run`, `glassbox validate`), so both refuse the same resources
with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Rule:
    """A cross-field constraint: a CEL rule for the apiserver and the same check in Python."""

    cel: str
    message: str
    check: Callable[[Any], bool]
    # JSONPath-like path of the field the message is about, relative to the object (e.g. ".minLr").
    field_path: str | None = None

    def as_validation(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


def immutable(what: str) -> dict[str, Any]:
    """json_schema_extra for a field that must not change once the resource exists."""
    return {
        "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": f"{what} is immutable: create a new resource instead"}
        ]
    }


class Block(BaseModel):
    """Base of all API blocks: camelCase on the wire, unknown fields refused, docs from docstrings."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        # No silent coercion ("8" is not 8): local validation refuses what the apiserver refuses.
        strict=True,
        use_attribute_docstrings=True,
        validate_default=False,
    )

    # Cross-field rules of this block (see Rule); collected into the CRD by crdgen.
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> "Block":
        for rule in type(self).rules:
            if not rule.check(self):
                # The field path travels in the error context, so the report names the field.
                raise PydanticCustomError("glassbox_rule", rule.message, {"field_path": rule.field_path or ""})
        return self

    def wire(self) -> dict[str, Any]:
        """The block as the apiserver stores it: camelCase keys, defaults filled in, unset fields
        and empty lists left out (the CRDs default no empty lists; an empty block stays, so that
        immutability rules see it)."""
        return prune_empty(self.model_dump(by_alias=True, exclude_none=True, mode="json"))


def prune_empty(value: Any) -> Any:
    """Drop empty lists from a JSON-like value, recursively."""
    if isinstance(value, dict):
        pruned = {k: prune_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v != []}
    if isinstance(value, list):
        return [prune_empty(v) for v in value]
    return value


def set_fields(obj: BaseModel, *names: str) -> int:
    """How many of the named fields are present (not None); for one-of rules."""
    return sum(getattr(obj, n) is not None for n in names)
