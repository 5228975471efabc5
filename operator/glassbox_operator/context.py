"""One typed value that every renderer and the status function receive: no hidden inputs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from glassbox_api.resource import Resource

from .config import OperatorConfig
from .kinds import KindHome, home
from .kinds.base import STAGE_RUN, STAGE_SERVE, STAGE_TRAIN, Plan

__all__ = ["Context", "PLACEHOLDER_UID", "Plan", "STAGE_RUN", "STAGE_SERVE", "STAGE_TRAIN"]

# render placeholders when a resource has not been created yet (`glassbox render`).
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Context:
    """Everything a renderer may use: the resource, the operator config, the plan, resolved refs."""

    resource: Resource
    config: OperatorConfig
    plan: Plan = Plan()
    model_uri: Optional[str] = None
    """model.fromRun resolved to a checkpoint URI (None when the spec has no fromRun)."""

    @property
    def kind(self) -> str:
        return self.resource.info.kind

    @property
    def home(self) -> KindHome:
        """Everything specific to this resource's kind."""
        return home(self.kind)

    @property
    def stage_resources(self) -> Any:
        """The spec's Resources block of the current stage."""
        return self.home.resources(self.spec, self.plan.stage)

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
