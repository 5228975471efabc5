"""One typed value that every renderer and the status function receive: no hidden inputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from glassbox_api.resource import Resource

from .config import OperatorConfig

# render placeholders when a resource has not been created yet (`glassbox render`).
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"

STAGE_TRAIN = "train"
STAGE_SERVE = "serve"
STAGE_RUN = "run"


@dataclass(frozen=True)
class Plan:
    """Which children a pass wants: the attempt, the stage (DialogBot trains, then serves), or none."""

    attempt: int = 0
    stage: str = STAGE_RUN
    teardown: bool = False


@dataclass(frozen=True)
class Context:
    """Everything a renderer may use: the resource, the operator config, the plan, resolved refs."""

    resource: Resource
    config: OperatorConfig
    plan: Plan = Plan()
    model_uri: Optional[str] = None
    """model.fromRun resolved to a checkpoint URI (None when the spec has no fromRun)."""
    serve_uri: Optional[str] = None
    """For DialogBot after training: the checkpoint the service loads."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.resource.info.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def namespace(self) -> str:
        return self.resource.namespace

    @property
    def uid(self) -> str:
        return self.resource.metadata.get("uid") or PLACEHOLDER_UID

    @property
    def spec(self) -> Any:
        return self.resource.spec

    def with_plan(self, plan: Plan) -> "Context":
        return replace(self, plan=plan)
