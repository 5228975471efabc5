"""One typed value that every renderer and the status function receive: no hidden inputs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from glassbox_api.resource import Resource

from .config import OperatorConfig
from .kinds import KindHome, home
from .kinds.base import PLACEHOLDER_UID, STAGE_RUN, STAGE_SERVE, STAGE_TRAIN, Plan

__all__ = ["Context", "PLACEHOLDER_UID", "Plan", "STAGE_RUN", "STAGE_SERVE", "STAGE_TRAIN"]


@dataclass(frozen=True)
class Context:
    """Everything a renderer may use: the resource, the operator config, the plan, resolved refs."""

    resource: Resource
    config: OperatorConfig
    plan: Plan = Plan()
    model_uri: Optional[str] = None
    """model.fromRun resolved to a checkpoint URI (None when the spec has no fromRun)."""
    serving_uri: Optional[str] = None
    """A service that retrains: the checkpoint its InferenceService keeps serving while the new
    model trains (rendered beside the training workload; KindHome.choose)."""
    inputs: Optional[dict[str, dict[str, Any]]] = None
    """KindHome.inputs resolved (status.lineage[key] of each), written into the spec the workload reads."""

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
    def run_id(self) -> str:
        """The id of the run this spec publishes to (KindHome.run_id; the uid for most kinds)."""
        return self.home.run_id(self.resource, self.uid)

    @property
    def spec(self) -> Any:
        return self.resource.spec

    def with_plan(self, plan: Plan) -> "Context":
        return replace(self, plan=plan)

    def kept(self) -> Optional["Context"]:
        """The serving stage that keeps running while a new model trains (None when nothing is kept)."""
        if not self.serving_uri or self.plan.stage == STAGE_SERVE or self.plan.teardown:
            return None
        return replace(self, plan=Plan(attempt=0, stage=STAGE_SERVE), model_uri=self.serving_uri, serving_uri=None)
