"""Checking request bodies: every refusal is a 400 whose message names the field (`instances[2].response:
must be text`), raised as KServe's InvalidInput so its handler answers and the server goes on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_items: int = 4096
    """Instances, candidates or prompts per request."""
    max_chars: int = 100_000
    """Characters of one text field."""


def invalid(field: str, problem: str) -> Exception:
    from kserve.errors import InvalidInput

    return InvalidInput(f"{field}: {problem}")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise invalid("body", f"not JSON ({exc})") from exc


def obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def text(value: Any, field: str, limits: Limits, *, allow_empty: bool = True) -> str:
    if value is None:
        raise invalid(field, "is required")
    if not isinstance(value, str):
        raise invalid(field, f"must be text, got {type(value).__name__}")
    if len(value) > limits.max_chars:
        raise invalid(field, f"is {len(value)} characters long; at most {limits.max_chars} are accepted")
    if not allow_empty and not value.strip():
        raise invalid(field, "must not be empty")
    return value


def items(value: Any, field: str, limits: Limits) -> list[Any]:
    if value is None:
        raise invalid(field, "is required")
    if not isinstance(value, list):
        raise invalid(field, f"must be a list, got {type(value).__name__}")
    if not value:
        raise invalid(field, "must not be empty")
    if len(value) > limits.max_items:
        raise invalid(field, f"has {len(value)} entries; at most {limits.max_items} per request")
    return value
