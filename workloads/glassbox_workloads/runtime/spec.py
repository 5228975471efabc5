"""Loading the resource a workload runs: the YAML/JSON the operator mounted or `glassbox run` wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Optional, TypeVar

import yaml

from glassbox_api.kinds import kind_info
from glassbox_api.kinds.base import Block
from glassbox_api.manifest import run_prefix
from glassbox_api.podcontract import run_id as contract_run_id

SpecT = TypeVar("SpecT", bound=Block)


@dataclass(frozen=True)
class Resource(Generic[SpecT]):
    """A typed spec plus the identity that names its run directory (Resource[PretrainRunSpec]...)."""

    kind: str
    name: str
    namespace: str
    uid: str
    spec: SpecT
    raw_spec: dict[str, Any]  # the spec as applied (camelCase), recorded in run.json

    @property
    def run_prefix(self) -> str:
        return run_prefix(self.namespace, self.kind, self.name, self.uid)


def load_resource(path: str | Path, expected_kind: str, *, run_id: Optional[str] = None) -> Resource:
    """Read and validate a whole resource (apiVersion/kind/metadata/spec), or a bare spec.

    Validation is the API's own (glassbox_api.resource): the same messages as `glassbox validate`.
    """
    from glassbox_api.constants import API_VERSION

    text = Path(path).read_text()
    try:
        # What the operator writes (resource.json, the ConfigMap's resource.yaml) is JSON: read it as
        # JSON, since YAML 1.1 takes JSON's 1e-06 (a CRD default such as rmsNormEps) for a string.
        docs = [d for d in [json.loads(text)] if d]
    except ValueError:
        docs = [d for d in yaml.safe_load_all(text) if d]
    info = kind_info(expected_kind)
    doc = next((d for d in docs if isinstance(d, dict) and d.get("kind") == info.kind), None)
    if doc is None:
        if len(docs) == 1 and isinstance(docs[0], dict) and "kind" not in docs[0]:
            doc = {"apiVersion": API_VERSION, "kind": info.kind, "metadata": {"name": Path(path).stem},
                   "spec": docs[0]}
        else:
            raise ValueError(f"{path}: no {info.kind} resource in the file")
    return load_resource_doc(doc, expected_kind, run_id=run_id, source=str(path))


def load_resource_doc(doc: dict[str, Any], expected_kind: str, *, run_id: Optional[str] = None,
                      source: str = "resource") -> Resource:
    """Validate one resource document (a dict) into a Resource."""
    from glassbox_api.resource import parse_resource

    parsed = parse_resource(doc, source=source)
    if parsed.info.kind != kind_info(expected_kind).kind:
        raise ValueError(f"{source}: a {parsed.info.kind}, not a {expected_kind}")
    meta = parsed.metadata
    raw = parsed.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    name, namespace = parsed.name, parsed.namespace
    # Without a Kubernetes uid (a file run locally) the spec names the run (podcontract.run_id), so
    # running the same file again resumes it instead of starting over.
    uid = contract_run_id(parsed.info.kind, name, namespace, parsed.spec.wire(), run_id or meta.get("uid"))
    return Resource(parsed.info.kind, name, namespace, uid, parsed.spec, raw)


def load_or_report(path: str | Path, expected_kind: str, *, run_id: Optional[str] = None) -> Optional[Resource]:
    """load_resource for an entrypoint: a bad or unreadable spec is reported on stderr, returning None
    (the caller exits 2)."""
    import sys

    from glassbox_api.resource import InvalidResource

    try:
        return load_resource(path, expected_kind, run_id=run_id)
    except InvalidResource as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
    return None
